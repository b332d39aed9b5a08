"""SLA deadlines in business time, the clock paused while waiting on the customer, breach
warnings once, and escalation once when a deadline passes (complaints included)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core import jobs
from core.notifications.tables import Notification
from tests.conftest import connected
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.routing_helpers import (
    agent,
    calendar,
    get_case,
    insert_case,
    policy,
    queue,
    rule,
)

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)


def paris(*args):
    return datetime(*args, tzinfo=PARIS)


def collect_events(rapport) -> list:
    seen: list = []

    async def listen(event):
        seen.append(event)

    rapport.event_listeners.append(listen)
    return seen


async def test_targets_count_business_minutes_of_the_policy_calendar(service_rapport):
    from plugins.service import sla

    async with connected(service_rapport):
        office = await calendar(timezone="Europe/Paris", holidays=[date(2026, 11, 25)])
        high = await policy("high", first_response=60, resolution=8 * 60, calendar_id=office)
        got = await sla.targets(service_rapport, {"priority": "high"}, paris(2026, 11, 24, 16, 30))
        assert got["sla_policy"] == high
        assert got["first_response_due"] == paris(2026, 11, 26, 9, 30)  # Wednesday is a holiday
        assert got["resolution_due"] == paris(2026, 11, 26, 16, 30)
        # No policy for this priority: no deadlines.
        assert await sla.targets(service_rapport, {"priority": "low"}, TUESDAY_10) == {
            "sla_policy": None, "first_response_due": None, "resolution_due": None}


async def test_inactive_policy_sets_no_deadlines(service_rapport):
    from plugins.service import sla
    from plugins.service.tables import SlaPolicy

    async with connected(service_rapport):
        pid = await policy("normal", 60, 600)
        await SlaPolicy.update({SlaPolicy.active: False}).where(SlaPolicy.id == pid).run()
        got = await sla.targets(service_rapport, {"priority": "normal"}, TUESDAY_10)
        assert got["sla_policy"] is None


async def test_waiting_on_customer_pauses_the_resolution_clock(service_rapport):
    from plugins.service import sla

    async with connected(service_rapport):
        office = await calendar(timezone="Europe/Paris")
        pid = await policy("normal", 60, 4 * 60, calendar_id=office)
        case = {"priority": "normal", "sla_policy": pid, "resolution_due": paris(2026, 11, 24, 14, 0),
                "paused_minutes": 0}
        start = paris(2026, 11, 24, 11, 0)
        changes = await sla.on_status_change(service_rapport, case, "open", "waiting", start)
        assert changes == {"waiting_since": start}
        case.update(changes)
        # The customer answers on Wednesday at 10:00: 6 h Tuesday + 1 h Wednesday waited.
        back = await sla.on_status_change(service_rapport, case, "waiting", "open",
                                          paris(2026, 11, 25, 10, 0))
        assert back["waiting_since"] is None
        assert back["paused_minutes"] == 7 * 60
        # 14:00 Tuesday + 7 business hours = 13:00 Wednesday.
        assert back["resolution_due"] == paris(2026, 11, 25, 13, 0)


async def test_resolving_late_marks_breaches(service_rapport):
    from plugins.service import sla

    async with connected(service_rapport):
        case = {"first_response_due": TUESDAY_10, "resolution_due": TUESDAY_10 + timedelta(hours=4),
                "first_responded_at": TUESDAY_10 + timedelta(minutes=5), "sla_policy": None}
        late = await sla.on_status_change(service_rapport, case, "open", "resolved",
                                          TUESDAY_10 + timedelta(hours=5))
        assert late["first_response_breached"] is True
        assert late["resolution_breached"] is True
        on_time = await sla.on_status_change(
            service_rapport, {**case, "first_responded_at": TUESDAY_10}, "open", "resolved",
            TUESDAY_10 + timedelta(hours=1))
        assert "resolution_breached" not in on_time
        assert "first_response_breached" not in on_time
        # Closing it days later does not turn a timely resolution into a breach.
        closed = await sla.on_status_change(
            service_rapport, {**case, "first_responded_at": TUESDAY_10}, "resolved", "closed",
            TUESDAY_10 + timedelta(days=3))
        assert "resolution_breached" not in closed


async def test_reopened_case_does_not_count_time_spent_resolved(service_rapport):
    from plugins.service import sla

    async with connected(service_rapport):
        case = {"resolution_due": TUESDAY_10 + timedelta(hours=2), "sla_policy": None,
                "resolved_at": TUESDAY_10, "paused_minutes": 0}
        changes = await sla.on_status_change(service_rapport, case, "resolved", "open",
                                             TUESDAY_10 + timedelta(hours=3))
        assert changes["resolution_due"] == TUESDAY_10 + timedelta(hours=5)


async def test_sweep_warns_once_before_the_deadline(service_rapport):
    from plugins.service import sla
    from plugins.service.tables import CaseEvent

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        support = await queue("Support", "named", named_assignee=ann)
        await rule(support)
        await policy("normal", first_response=120, resolution=600, warn=30)
        opened = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        case = await insert_case(service_rapport, await new_customer(), now=opened)
        events = collect_events(service_rapport)

        early = await sla.sweep(service_rapport, opened + timedelta(minutes=60))
        assert early.warned == [] and early.breached == []
        first = await sla.sweep(service_rapport, opened + timedelta(minutes=95))
        assert first.warned == [case["id"]]
        again = await sla.sweep(service_rapport, opened + timedelta(minutes=100))
        assert again.warned == []
        assert [e.name for e in events] == ["service.case.sla_warning"]
        assert events[0].payload["owner_id"] == ann
        assert events[0].payload["target"] == "first_response"
        stored = await get_case(case["id"])
        assert stored["warned_at"] is not None and stored["escalated_at"] is None
        kinds = await CaseEvent.select(CaseEvent.kind).where(CaseEvent.case == case["id"]).run()
        assert [k["kind"] for k in kinds] == ["warned"]


async def test_answered_case_is_warned_again_before_its_resolution_deadline(service_rapport):
    from plugins.service import sla
    from plugins.service.tables import Case

    async with connected(service_rapport):
        await policy("normal", first_response=60, resolution=600, warn=30)
        opened = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        case = await insert_case(service_rapport, await new_customer(), now=opened)
        assert (await sla.sweep(service_rapport, opened + timedelta(minutes=40))).warned
        await Case.update({Case.first_responded_at: opened + timedelta(minutes=45),
                           Case.status: "open"}).where(Case.id == case["id"]).run()
        assert not (await sla.sweep(service_rapport, opened + timedelta(minutes=300))).warned
        later = await sla.sweep(service_rapport, opened + timedelta(minutes=580))
        assert later.warned == [case["id"]]


async def test_complaint_escalates_when_its_sla_breaches(service_rapport):
    """Acceptance: a complaint routed by rule misses its first-response target; the sweep
    marks the breach, moves it to the escalation queue once, and tells the manager."""
    from core.audit import AuditEntry
    from plugins.service import notifications, sla
    from plugins.service.tables import Case, CaseEvent

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        manager = await agent("manager@example.test")
        senior = await agent("senior@example.test")
        seniors = await queue("Senior complaints", "round_robin", members=[senior])
        complaints = await queue("Complaints", "round_robin", members=[ann], manager=manager,
                                 escalation_queue=seniors)
        general = await queue("General", "none")
        await rule(complaints, position=1, case_type="complaint")
        await rule(general, position=2)
        office = await calendar(timezone="Europe/Paris")
        await policy("high", first_response=60, resolution=480, warn=15, calendar_id=office)
        await policy("normal", first_response=240, resolution=960, calendar_id=office)
        customer = await new_customer()
        complaint = await insert_case(service_rapport, customer, now=TUESDAY_10,
                                      case_type="complaint", priority="high")
        request = await insert_case(service_rapport, customer, now=TUESDAY_10)
        assert complaint["owner"] == ann and complaint["queue"] == complaints
        assert complaint["first_response_due"] == TUESDAY_10 + timedelta(hours=1)
        events = collect_events(service_rapport)

        result = await sla.sweep(service_rapport, TUESDAY_10 + timedelta(minutes=61))
        assert result.breached == [(complaint["id"], "first_response")]
        assert result.escalated == [complaint["id"]]
        stored = await get_case(complaint["id"])
        assert stored["first_response_breached"] is True
        assert stored["escalated_at"] is not None
        assert stored["queue"] == seniors and stored["owner"] == senior
        assert (await get_case(request["id"]))["escalated_at"] is None

        breach = next(e for e in events if e.name == "service.case.sla_breached")
        assert breach.payload["manager_id"] == manager
        pushed = await notifications.push_messages(service_rapport, breach)
        assert {m.user_id for m in pushed} == {ann, manager}  # the new owner: "assigned"
        assert all(m.topic == "service.case.sla_breached" for m in pushed)
        assert any(e.name == "service.case.assigned" and e.payload["owner_id"] == senior
                   for e in events)
        kinds = [r["kind"] for r in await CaseEvent.select(CaseEvent.kind).where(
            CaseEvent.case == complaint["id"]).order_by(CaseEvent.id).run()]
        assert kinds == ["breached", "escalated", "assigned"]
        assert await AuditEntry.exists().where(
            (AuditEntry.record_type == "service_case")
            & (AuditEntry.record_id == str(complaint["id"]))).run()

        # Later sweeps never escalate twice, even when the resolution target is missed too.
        await Case.update({Case.first_responded_at: TUESDAY_10 + timedelta(hours=2)}).where(
            Case.id == complaint["id"]).run()
        later = await sla.sweep(service_rapport, TUESDAY_10 + timedelta(days=3))
        assert (complaint["id"], "resolution") in later.breached
        assert complaint["id"] not in later.escalated
        assert (await get_case(complaint["id"]))["queue"] == seniors
        kinds = [r["kind"] for r in await CaseEvent.select(CaseEvent.kind).where(
            CaseEvent.case == complaint["id"]).order_by(CaseEvent.id).run()]
        assert kinds.count("escalated") == 1


async def test_waiting_cases_do_not_breach_resolution(service_rapport):
    from plugins.service import sla
    from plugins.service.tables import Case

    async with connected(service_rapport):
        await policy("normal", first_response=60, resolution=120)
        opened = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        case = await insert_case(service_rapport, await new_customer(), now=opened)
        await Case.update({Case.status: "waiting", Case.first_responded_at: opened,
                           Case.waiting_since: opened}).where(Case.id == case["id"]).run()
        result = await sla.sweep(service_rapport, opened + timedelta(hours=5))
        assert result.breached == [] and result.warned == []


async def test_closed_cases_are_left_alone(service_rapport):
    from plugins.service import sla
    from plugins.service.tables import Case

    async with connected(service_rapport):
        await policy("normal", first_response=60, resolution=120)
        opened = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        case = await insert_case(service_rapport, await new_customer(), now=opened)
        await Case.update({Case.status: "closed", Case.is_open: False}).where(
            Case.id == case["id"]).run()
        assert (await sla.sweep(service_rapport, opened + timedelta(hours=5))).breached == []


async def test_two_workers_sweeping_at_once_escalate_each_case_once(service_rapport):
    from plugins.service import sla
    from plugins.service.tables import CaseEvent

    async with connected(service_rapport):
        manager = await agent("manager@example.test")
        target = await queue("Escalations", "none")
        source = await queue("Support", "none", manager=manager, escalation_queue=target)
        await rule(source)
        await policy("normal", first_response=30, resolution=60)
        opened = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        customer = await new_customer()
        cases = [await insert_case(service_rapport, customer, now=opened) for _ in range(6)]
        events = collect_events(service_rapport)
        later = opened + timedelta(hours=2)

        async def worker():
            for attempt in range(30):
                try:
                    return await sla.sweep(service_rapport, later)
                except Exception as exc:  # SQLite: a writer in the race waits its turn
                    if "locked" not in str(exc) or attempt == 29:
                        raise
                    await asyncio.sleep(0.05)

        results = await asyncio.gather(worker(), worker(), worker())
        escalated = sorted(i for r in results for i in r.escalated)
        assert escalated == sorted(c["id"] for c in cases)
        breached = sorted(b for r in results for b in r.breached)
        assert len(breached) == 12  # both targets of each case, each once
        assert sum(e.name == "service.case.sla_breached" for e in events) == 12
        rows = await CaseEvent.select(CaseEvent.kind).where(CaseEvent.kind == "escalated").run()
        assert len(rows) == 6
        from plugins.service.tables import Case

        queues = await Case.select(Case.queue).where(
            Case.id.is_in([c["id"] for c in cases])).run()
        assert {q["queue"] for q in queues} == {target}


async def test_cli_sla_check_runs_one_sweep(service_client):
    from click.testing import CliRunner

    from core.app import Rapport
    from core.cli import cli
    from plugins.service.tables import Case

    rapport = service_client.rapport
    await policy("normal", first_response=1, resolution=2)
    long_ago = datetime.now(UTC) - timedelta(days=1)
    case = await insert_case(rapport, await new_customer(), now=long_ago)
    cli_rapport = Rapport(rapport.settings, plugins=["service"])
    cli_rapport.pm.hook.register_commands(cli=cli)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["service", "sla-check"],
                                     obj={"rapport": cli_rapport})
    rapport.activate()
    assert result.exit_code == 0, result.output
    assert "2 breached, 1 escalated" in result.output
    stored = await Case.select(Case.escalated_at).where(Case.id == case["id"]).first().run()
    assert stored["escalated_at"] is not None


async def test_the_sla_sweep_is_a_recurring_job_run_by_the_servers_worker(make_rapport):
    from core.jobs_tables import JobRow
    from plugins.service.tables import Case
    from tests.conftest import app_client

    rapport = await make_rapport(["service"], {"service": {"sla_check_seconds": 1}},
                                 extra={"worker": "on"})
    async with app_client(rapport):
        await policy("normal", first_response=1, resolution=2)
        long_ago = datetime.now(UTC) - timedelta(days=1)
        case = await insert_case(rapport, await new_customer(), now=long_ago)
        finished = (JobRow.name == "service.sla.sweep") & (JobRow.status == "done")
        for _ in range(1200):  # up to a minute: the worker shares two busy cores in CI
            stored = await Case.select(Case.escalated_at).where(Case.id == case["id"]).first(
            ).run()
            if stored["escalated_at"] is not None and await JobRow.exists().where(
                    finished).run():
                break
            await asyncio.sleep(0.05)
        assert stored["escalated_at"] is not None
        # Administrators see it on the jobs page as a finished run of the recurring job.
        assert await JobRow.exists().where(finished).run(), await JobRow.select(
            JobRow.id, JobRow.name, JobRow.status, JobRow.last_error, JobRow.run_at).run()


async def test_no_sla_job_when_the_interval_is_zero(make_rapport):
    from core import jobs

    rapport = await make_rapport(["service"], {"service": {"sla_check_seconds": 0}})
    assert "service.sla.sweep" not in jobs.job_types(rapport)
    assert "service.sla.sweep" in jobs.job_types(await make_rapport(["service"], {}))


async def test_broken_calendar_does_not_stop_cases_from_being_opened(service_rapport):
    """A calendar written straight to the database with an unknown time zone (or with no
    working time at all) counts every minute instead of failing the case's creation."""
    from plugins.service import sla
    from plugins.service.tables import BusinessCalendar

    async with connected(service_rapport):
        broken = await calendar("Broken", timezone="Mars/Olympus")
        await policy("normal", first_response=60, resolution=120, calendar_id=broken)
        got = await sla.targets(service_rapport, {"priority": "normal"}, TUESDAY_10)
        assert got["first_response_due"] == TUESDAY_10 + timedelta(minutes=60)
        await BusinessCalendar.update({BusinessCalendar.timezone: "UTC"}).where(
            BusinessCalendar.id == broken).run()
        holidays = [date(2026, 1, 1) + timedelta(days=i) for i in range(4100)]
        from plugins.service.tables import Holiday

        await BusinessCalendar.update({BusinessCalendar.work_days: "0"}).where(
            BusinessCalendar.id == broken).run()
        await Holiday.insert(*[Holiday(calendar=broken, day=d) for d in holidays
                               if d.weekday() == 0]).run()
        got = await sla.targets(service_rapport, {"priority": "normal"}, TUESDAY_10)
        assert got["resolution_due"] == TUESDAY_10 + timedelta(minutes=120)


async def test_unassigned_case_warning_goes_to_the_queue_manager(service_rapport):
    from plugins.service import notifications, sla

    async with connected(service_rapport):
        manager = await agent("manager@example.test")
        waiting_room = await queue("Waiting room", "none", manager=manager)
        await rule(waiting_room)
        await policy("normal", first_response=60, resolution=600, warn=30)
        opened = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        case = await insert_case(service_rapport, await new_customer(), now=opened)
        assert case["owner"] is None
        events = collect_events(service_rapport)
        await sla.sweep(service_rapport, opened + timedelta(minutes=45))
        [warning] = [e for e in events if e.name == "service.case.sla_warning"]
        [message] = await notifications.push_messages(service_rapport, warning)
        assert message.user_id == manager
        # Durable: in the outbox with the warning, delivered by the job worker.
        assert warning.id is not None
        await jobs.run_pending(service_rapport)
        assert await Notification.exists().where(
            (Notification.user == manager)
            & (Notification.topic == "service.case.sla_warning")).run()
