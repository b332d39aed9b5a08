"""Routing and SLAs end to end through the case service: a case opened with
``cases.open_case`` is routed and given deadlines; replies, waiting and resolving move the
clock; a complaint that misses its target escalates and the manager is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import connected
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.routing_helpers import (
    agent,
    get_case,
    policy,
    queue,
    rule,
    tag,
)


def collect_events(rapport) -> list:
    seen: list = []

    async def listen(event):
        seen.append(event)

    rapport.event_listeners.append(listen)
    return seen


async def test_opened_complaint_is_routed_and_escalates_when_its_sla_breaches(service_rapport):
    from plugins.service import cases, notifications, sla
    from plugins.service.tables import CaseEvent

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        bob = await agent("bob@example.test")
        manager = await agent("manager@example.test")
        escalations = await queue("Escalations", "named", named_assignee=manager)
        complaints = await queue("Complaints", "round_robin", members=[ann, bob],
                                 manager=manager, escalation_queue=escalations)
        general = await queue("General", "none")
        await rule(complaints, position=1, case_type="complaint", set_priority="high")
        await rule(general, position=2)
        await policy("high", first_response=30, resolution=240, warn=10)
        await policy("normal", first_response=240, resolution=2400)
        customer = await new_customer()
        events = collect_events(service_rapport)

        case = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Rude driver", case_type="complaint",
                                     description="Very unhappy.")
        assert case["queue"] == complaints and case["owner"] == ann
        assert case["priority"] == "high"
        opened = case["created_at"]
        assert case["first_response_due"] == opened + timedelta(minutes=30)
        assert case["resolution_due"] == opened + timedelta(minutes=240)
        assigned = next(e for e in events if e.name == "service.case.assigned")
        [push] = await notifications.push_messages(service_rapport, assigned)
        assert push.user_id == ann and push.topic == "service.case.assigned"
        assert "assigned to you" in push.title and push.url == f"/service/cases/{case['id']}"

        second = await cases.open_case(service_rapport, None, customer_id=customer,
                                       subject="Late again", case_type="complaint")
        assert second["owner"] == bob  # round-robin
        request = await cases.open_case(service_rapport, None, customer_id=customer,
                                        subject="Manual please")
        assert request["queue"] == general and request["owner"] is None

        warned = await sla.sweep(service_rapport, opened + timedelta(minutes=25))
        assert case["id"] in warned.warned
        warning = next(e for e in events if e.name == "service.case.sla_warning"
                       and e.payload["case_id"] == case["id"])
        [warn_push] = await notifications.push_messages(service_rapport, warning)
        assert warn_push.user_id == ann and "first response due soon" in warn_push.title

        result = await sla.sweep(service_rapport, opened + timedelta(minutes=31))
        assert case["id"] in result.escalated and request["id"] not in result.escalated
        stored = await get_case(case["id"])
        assert stored["queue"] == escalations and stored["owner"] == manager
        assert stored["first_response_breached"] and stored["escalated_at"] is not None
        breach = next(e for e in events if e.name == "service.case.sla_breached"
                      and e.payload["case_id"] == case["id"])
        pushed = await notifications.push_messages(service_rapport, breach)
        assert [m.user_id for m in pushed] == [ann, manager]
        assert "escalated" in pushed[0].title
        kinds = {r["kind"] for r in await CaseEvent.select(CaseEvent.kind).where(
            CaseEvent.case == case["id"]).run()}
        assert {"warned", "breached", "escalated"} <= kinds


async def test_gold_customer_request_goes_to_the_vip_queue(service_rapport):
    from plugins.service import cases

    async with connected(service_rapport):
        vip_agent = await agent("vip@example.test")
        vip = await queue("VIP", "least_loaded", members=[vip_agent])
        await rule(vip, customer_tag="gold")
        customer = await new_customer()
        await tag(customer, "Gold")
        case = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Question", channel="email")
        assert case["queue"] == vip and case["owner"] == vip_agent


async def test_waiting_on_the_customer_moves_the_resolution_deadline(service_rapport):
    from plugins.service import cases
    from plugins.service.tables import Case

    async with connected(service_rapport):
        await policy("normal", first_response=60, resolution=600)  # every minute counts
        customer = await new_customer()
        case = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Broken")
        await cases.add_message(service_rapport, None, case["id"], kind="reply",
                                body="Could you send a photo?")
        waiting = await get_case(case["id"])
        assert waiting["status"] == "waiting" and waiting["waiting_since"] is not None
        # Pretend the customer took two hours to answer.
        since = waiting["waiting_since"] - timedelta(hours=2)
        await Case.update({Case.waiting_since: since}).where(Case.id == case["id"]).run()
        await cases.add_message(service_rapport, None, case["id"], kind="inbound",
                                body="Here it is.")
        back = await get_case(case["id"])
        assert back["status"] == "open" and back["waiting_since"] is None
        moved = back["resolution_due"] - case["resolution_due"]
        assert timedelta(hours=2) <= moved < timedelta(hours=2, minutes=1)
        assert back["paused_minutes"] == 120


async def test_resolving_after_the_deadline_records_the_breach(service_rapport):
    from plugins.service import cases
    from plugins.service.tables import Case

    async with connected(service_rapport):
        await policy("normal", first_response=60, resolution=600)
        customer = await new_customer()
        late = await cases.open_case(service_rapport, None, customer_id=customer, subject="Late")
        on_time = await cases.open_case(service_rapport, None, customer_id=customer,
                                        subject="Quick")
        past = datetime.now(UTC) - timedelta(minutes=1)
        await Case.update({Case.resolution_due: past, Case.first_response_due: past}).where(
            Case.id == late["id"]).run()
        await cases.change_status(service_rapport, None, late["id"], "open")
        await cases.change_status(service_rapport, None, late["id"], "resolved")
        await cases.change_status(service_rapport, None, on_time["id"], "open")
        await cases.change_status(service_rapport, None, on_time["id"], "resolved")
        stored = await get_case(late["id"])
        assert stored["resolution_breached"] and stored["first_response_breached"]
        fine = await get_case(on_time["id"])
        assert not fine["resolution_breached"]


async def test_customer_reply_notifies_the_owner(service_rapport):
    from plugins.service import cases, notifications

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        support = await queue("Support", "named", named_assignee=ann)
        await rule(support)
        customer = await new_customer()
        case = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Help")
        events = collect_events(service_rapport)
        await cases.add_message(service_rapport, None, case["id"], kind="inbound",
                                body="Any news?")
        replied = next(e for e in events if e.name == "service.case.customer_replied")
        [push] = await notifications.push_messages(service_rapport, replied)
        assert push.user_id == ann and push.topic == "service.case.customer_replied"
        assert case["number"] in push.title
