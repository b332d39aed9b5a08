"""SLAs: deadlines in business time, the clock paused while waiting on the customer, breach
warnings and escalations.

* :func:`targets` gives a new (or re-prioritised) case its policy and deadlines, counted in
  business minutes of the policy's calendar from ``now``.
* :func:`on_status_change` pauses the resolution clock while the case waits on the customer
  (and while it is resolved, should it be reopened) and marks breaches when it is resolved.
* :func:`sweep` warns once before a deadline and, once it has passed, marks the breach and
  escalates once: the case moves to its queue's escalation queue (if set), the owner and the
  queue's manager are notified. Every change is claimed with a conditional UPDATE, so any
  number of workers may sweep at once without warning or escalating twice.

The sweeper runs as the recurring job ``service.sla.sweep`` every ``sla_check_seconds`` (0:
off) wherever job workers run, and on demand with ``rapport service sla-check``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core import audit
from plugins.service import business_hours
from plugins.service.cases import publish_case_event
from plugins.service.tables import Case, CaseEvent, Queue, SlaPolicy

log = logging.getLogger("rapport.service.sla")

BATCH = 200  # cases claimed per query; a sweep loops over batches up to MAX_PER_SWEEP
MAX_PER_SWEEP = 5000
# A backlog (after downtime, or a fresh import of overdue cases) is swept in many batches;
# pausing between them lets requests take the database in turn instead of queueing behind
# the whole round (on SQLite every write transaction holds the one write lock).
PAUSE_BETWEEN_BATCHES = 0.05
TARGETS = ("first_response", "resolution")


async def policy_for(priority: str) -> dict[str, Any] | None:
    return await SlaPolicy.select().where(
        (SlaPolicy.priority == priority) & (SlaPolicy.active == True)  # noqa: E712
    ).first().run()


async def _schedule(calendar_id: int | None) -> business_hours.Schedule:
    """The calendar's schedule; a broken calendar (e.g. an unknown time zone written straight
    to the database) must not stop cases from being opened: count every minute, and say so."""
    try:
        return await business_hours.load_schedule(calendar_id)
    except business_hours.CalendarError as exc:
        log.warning("business calendar %s is unusable (%s); counting every minute",
                    calendar_id, exc)
        return business_hours.ALWAYS


def _add(schedule: business_hours.Schedule, start: datetime, amount) -> datetime:
    try:
        return business_hours.add(schedule, start, amount)
    except business_hours.CalendarError as exc:  # no working time within ten years
        log.warning("SLA deadline cannot be counted (%s); counting every minute", exc)
        return business_hours.add(business_hours.ALWAYS, start, amount)


async def _schedule_of_case(case: dict[str, Any]) -> business_hours.Schedule:
    policy_id = case.get("sla_policy")
    if policy_id is None:
        return business_hours.ALWAYS
    row = await SlaPolicy.select(SlaPolicy.calendar).where(SlaPolicy.id == policy_id).first().run()
    return await _schedule(row["calendar"] if row else None)


async def targets(rapport, case: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``{"sla_policy", "first_response_due", "resolution_due"}`` for a case opened or
    re-prioritised at ``now``; all three None when no active policy covers its priority."""
    policy = await policy_for(case.get("priority") or "normal")
    if policy is None:
        return {"sla_policy": None, "first_response_due": None, "resolution_due": None}
    schedule = await _schedule(policy["calendar"])
    changes: dict[str, Any] = {
        "sla_policy": policy["id"],
        "first_response_due": _add(schedule, now, policy["first_response_minutes"]),
        "resolution_due": _add(schedule, now, policy["resolution_minutes"]),
    }
    if case.get("first_responded_at") is not None:
        changes.pop("first_response_due")  # already answered: that target is settled
    waiting_since = case.get("waiting_since")
    if isinstance(waiting_since, datetime):
        # Re-prioritised while waiting: the new clock starts paused, from now.
        paused = business_hours.between(schedule, waiting_since, now)
        changes["waiting_since"] = now
        changes["paused_minutes"] = (case.get("paused_minutes") or 0) + round(
            paused.total_seconds() / 60)
    return changes


async def on_status_change(rapport, case: dict[str, Any], old: str, new: str,
                           now: datetime) -> dict[str, Any]:
    """The SLA changes a status change makes (merge them into the case's update)."""
    if old == new:
        return {}
    changes: dict[str, Any] = {}
    schedule = await _schedule_of_case(case)
    resolution_due = case.get("resolution_due")
    if new == "waiting":
        changes["waiting_since"] = now
    elif old == "waiting" or (old in ("resolved", "closed") and new in ("new", "open")):
        # Time waiting on the customer, or spent resolved before a reopen, is not ours.
        since = case.get("waiting_since") if old == "waiting" else (
            case.get("resolved_at") or case.get("closed_at"))
        if isinstance(since, datetime):
            paused = business_hours.between(schedule, since, now)
            changes["paused_minutes"] = (case.get("paused_minutes") or 0) + round(
                paused.total_seconds() / 60)
            if isinstance(resolution_due, datetime) and paused:
                resolution_due = _add(schedule, resolution_due, paused)
                changes["resolution_due"] = resolution_due
        changes["waiting_since"] = None
    if new in ("resolved", "closed"):
        changes["waiting_since"] = None
    # Closing a case resolved in time is not a late resolution: judge when work stopped.
    if new in ("resolved", "closed") and old not in ("resolved", "closed"):
        if isinstance(resolution_due, datetime) and now > resolution_due:
            changes["resolution_breached"] = True
        first_due = case.get("first_response_due")
        responded = case.get("first_responded_at")
        if isinstance(first_due, datetime) and (responded or now) > first_due:
            changes["first_response_breached"] = True
    return changes


# --- The sweeper -----------------------------------------------------------------------------


@dataclass
class SweepResult:
    warned: list[int] = field(default_factory=list)
    breached: list[tuple[int, str]] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.warned)} warned, {len(self.breached)} breached, "
                f"{len(self.escalated)} escalated")


_DUE = {"first_response": Case.first_response_due, "resolution": Case.resolution_due}
_BREACHED = {"first_response": Case.first_response_breached,
             "resolution": Case.resolution_breached}
_CASE_COLUMNS = (Case.id, Case.number, Case.subject, Case.owner, Case.queue, Case.team,
                 Case.first_response_due, Case.resolution_due, Case.escalated_at)


def _open_target(target: str):
    """Cases still on the clock for ``target``: open, and not answered / not waiting."""
    where = Case.is_open == True  # noqa: E712
    if target == "first_response":
        return where & Case.first_responded_at.is_null()
    return where & (Case.status != "waiting")


async def _lock_free(ids: list[int], condition) -> list[int]:
    """On PostgreSQL, lock the still-matching rows in id order, skipping rows another worker
    holds (so concurrent sweepers split the work instead of deadlocking). SQLite has one
    writer at a time: nothing to do."""
    if not ids or getattr(Case._meta.db, "engine_type", "") != "postgres":
        return ids
    rows = await Case.select(Case.id).where(Case.id.is_in(ids) & condition).order_by(
        Case.id).lock_rows("UPDATE", skip_locked=True).run()
    return [r["id"] for r in rows]


async def _warn_batch(rapport, policy: dict[str, Any], target: str, now: datetime,
                      result: SweepResult) -> int:
    warn = timedelta(minutes=max(0, policy["warn_before_minutes"]))
    due = _DUE[target]
    # A warning given before this window opened was about another deadline (e.g. the first
    # response); one inside it is this one's: warn once per deadline.
    not_warned = Case.warned_at.is_null() | (Case.warned_at < now - warn)
    rows = await Case.select(*_CASE_COLUMNS).where(
        _open_target(target) & (due > now) & (due <= now + warn)
        & (Case.sla_policy == policy["id"]) & not_warned
    ).order_by(due).limit(BATCH).run()
    if not rows:
        return 0
    async with Case._meta.db.transaction():
        ids = await _lock_free([r["id"] for r in rows], not_warned)
        claimed = {r["id"] for r in await Case.update({Case.warned_at: now}).where(
            Case.id.is_in(ids or [0]) & not_warned).returning(Case.id).run()}
        mine = [r for r in rows if r["id"] in claimed]
        if mine:
            await CaseEvent.insert(*[CaseEvent(
                case=r["id"], kind="warned", old_value=target,
                new_value=r[target + "_due"].isoformat()) for r in mine]).run()
        # An unassigned case has nobody to warn but its queue's manager.
        unowned = sorted({r["queue"] for r in mine if r["owner"] is None and r["queue"]})
        managers = {q["id"]: q["manager"] for q in await Queue.select(
            Queue.id, Queue.manager).where(Queue.id.is_in(unowned)).run()} if unowned else {}
        for row in mine:
            # Durable: written with the warning itself, so no crash can lose it.
            await publish_case_event(rapport, "service.case.sla_warning", {
                "case_id": row["id"], "number": row["number"], "owner_id": row["owner"],
                "manager_id": managers.get(row["queue"]) if row["owner"] is None else None,
                "target": target, "due_at": row[target + "_due"].isoformat(),
                "subject": row["subject"]})
    result.warned.extend(row["id"] for row in mine)
    return len(rows)


async def _escalate(row: dict[str, Any], queues: dict[int, dict[str, Any]],
                    now: datetime) -> dict[str, Any]:
    """Move a breached case to its queue's escalation queue (assigning it there when that
    queue hands cases out); return the changes made."""
    from plugins.service.routing import pick_assignee

    source = queues.get(row["queue"]) if row["queue"] else None
    target_id = source["escalation_queue"] if source else None
    target = None
    if target_id and target_id != row["queue"]:
        target = await Queue.select().where(
            (Queue.id == target_id) & (Queue.active == True)).first().run()  # noqa: E712
    changes: dict[str, Any] = {"escalated_at": now}
    if target is not None:
        changes["queue"] = target["id"]
        if target["team"] is not None:
            changes["team"] = target["team"]
        owner = await pick_assignee(target)
        if owner is not None:
            changes["owner"] = owner
    columns = {c._meta.name: c for c in Case._meta.columns}
    await Case.update({columns[k]: v for k, v in changes.items()}).where(
        Case.id == row["id"]).run()
    return changes


async def _breach_batch(rapport, target: str, now: datetime, result: SweepResult) -> int:
    due, breached = _DUE[target], _BREACHED[target]
    rows = await Case.select(*_CASE_COLUMNS).where(
        _open_target(target) & (due <= now) & (breached == False)  # noqa: E712
    ).order_by(due).limit(BATCH).run()
    if not rows:
        return 0
    queue_ids = sorted({r["queue"] for r in rows if r["queue"]})
    queues = {q["id"]: q for q in await Queue.select().where(
        Queue.id.is_in(queue_ids)).run()} if queue_ids else {}
    async with Case._meta.db.transaction():
        # Whoever flips the flag first owns the breach; a second worker gets no rows back.
        ids = await _lock_free([r["id"] for r in rows], breached == False)  # noqa: E712
        claimed = {r["id"] for r in await Case.update({breached: True}).where(
            Case.id.is_in(ids or [0]) & (breached == False)  # noqa: E712
        ).returning(Case.id).run()}

        def lock_order(row: dict[str, Any]) -> tuple[int, int]:
            # Escalation locks the target queue's row: take queue locks in one order.
            source = queues.get(row["queue"]) if row["queue"] else None
            return ((source or {}).get("escalation_queue") or 0, row["id"])

        mine = sorted((r for r in rows if r["id"] in claimed), key=lock_order)
        escalating = {r["id"] for r in await Case.update({Case.escalated_at: now}).where(
            Case.id.is_in(sorted(claimed) or [0]) & Case.escalated_at.is_null()
        ).returning(Case.id).run()}
        case_events = []
        for row in mine:
            case_events.append(CaseEvent(case=row["id"], kind="breached", old_value=target,
                                         new_value=row[target + "_due"].isoformat()))
            changes: dict[str, Any] = {target + "_breached": True}
            if row["id"] in escalating:
                moved = await _escalate(row, queues, now)
                changes.update(moved)
                case_events.append(CaseEvent(
                    case=row["id"], kind="escalated", old_value=str(row["queue"] or ""),
                    new_value=str(moved.get("queue", row["queue"]) or "")))
                if "owner" in moved and moved["owner"] != row["owner"]:
                    case_events.append(CaseEvent(
                        case=row["id"], kind="assigned", old_value=str(row["owner"] or ""),
                        new_value=str(moved["owner"])))
            before = {k: row.get(k) for k in changes if k in row}
            await audit.record(None, "update", Case._meta.tablename, row["id"],
                               audit.diff(before, changes),
                               summary=f"SLA {target.replace('_', ' ')} target missed"
                               + (": escalated" if row["id"] in escalating else ""))
            source = queues.get(row["queue"]) if row["queue"] else None
            # The agent who had the case hears of the breach; a new owner gets "assigned".
            # Durable: written with the breach itself, so no crash can lose it.
            await publish_case_event(rapport, "service.case.sla_breached", {
                "case_id": row["id"], "number": row["number"], "owner_id": row["owner"],
                "new_owner_id": changes.get("owner", row["owner"]),
                "manager_id": source["manager"] if source else None,
                "target": target, "due_at": row[target + "_due"].isoformat(),
                "escalated": row["id"] in escalating,
                "queue_id": changes.get("queue", row["queue"]),
                "subject": row["subject"]})
            if changes.get("owner") not in (None, row["owner"]):
                # The new owner hears of it like any assignment (durable, same transaction).
                await publish_case_event(rapport, "service.case.assigned", {
                    "case_id": row["id"], "number": row["number"], "owner_id": changes["owner"],
                    "queue_id": changes.get("queue", row["queue"]),
                    "previous_owner_id": row["owner"], "subject": row["subject"]})
        if case_events:
            await CaseEvent.insert(*case_events).run()
    for row in mine:
        result.breached.append((row["id"], target))
        if row["id"] in escalating:
            result.escalated.append(row["id"])
    return len(rows)


async def sweep(rapport, now: datetime | None = None) -> SweepResult:
    """One round: warn about deadlines coming within each policy's ``warn_before_minutes``,
    mark and escalate passed ones. Safe to run in several workers at once."""
    now = now or datetime.now(UTC)
    result = SweepResult()
    handled = 0
    for target in TARGETS:
        while handled < MAX_PER_SWEEP:
            seen = await _breach_batch(rapport, target, now, result)
            handled += seen
            if seen < BATCH:
                break
            await asyncio.sleep(PAUSE_BETWEEN_BATCHES)
    policies = await SlaPolicy.select().where(SlaPolicy.active == True).run()  # noqa: E712
    for policy in policies:
        for target in TARGETS:
            while handled < MAX_PER_SWEEP:
                seen = await _warn_batch(rapport, policy, target, now, result)
                handled += seen
                if seen < BATCH:
                    break
                await asyncio.sleep(PAUSE_BETWEEN_BATCHES)
    return result


# --- Running it: a recurring job and the command line ----------------------------------------

SWEEP_JOB = "service.sla.sweep"


async def sweep_job(rapport, job) -> None:
    """The ``service.sla.sweep`` job. Idempotent: a case is warned and escalated once (the
    sweep marks it in the same update), so a run repeated after a crash changes nothing."""
    outcome = await sweep(rapport)
    if outcome.warned or outcome.breached:
        log.info("SLA check: %s", outcome.summary())


def job_types(rapport) -> list:
    from core.plugin import JobType

    interval = rapport.plugin_settings("service").sla_check_seconds
    if interval <= 0:
        return []  # checked by `rapport service sla-check` only
    return [JobType(SWEEP_JOB, sweep_job, schedule=interval, unique=True, max_attempts=1,
                    timeout_seconds=600,
                    description="Warn about service deadlines coming soon and escalate "
                                "breached cases")]


def register_commands(group) -> None:
    import click

    @group.command(name="sla-check", help="Warn about SLA deadlines coming soon and escalate "
                   "breached cases once, now (the server also does this every "
                   "sla_check_seconds).")
    @click.pass_context
    def sla_check(ctx: click.Context) -> None:
        from core import db
        from core.cli import get_rapport

        rapport = get_rapport(ctx)

        async def run() -> SweepResult:
            rapport.activate()
            await db.connect(rapport.engine, pool_size=2)
            try:
                await db.ensure_migrated(rapport.piccolo_apps())
                return await sweep(rapport)
            finally:
                await db.disconnect(rapport.engine)

        outcome = asyncio.run(run())
        click.echo(f"SLA check: {outcome.summary()}")
