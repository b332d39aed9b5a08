"""Durable events: a transactional outbox and its delivery to every subscriber (docs/events.md).

An event type declared ``durable=True`` is, when published, written to ``core_event`` in the
transaction of the change it announces, with one ``core_event_delivery`` row per subscriber
(each plugin's ``on_event`` implementation). So the event exists if and only if the change
committed. The job worker (:mod:`core.jobs`) then calls each subscriber with it:

- at least once: a subscriber that raises (or whose worker dies) is tried again later, with
  exponential backoff, up to a maximum of attempts, then marked failed for an administrator
  to retry or discard; the other subscribers are not run again;
- in order per aggregate: of the events published with the same ``key`` (``"customer:12"``)
  a subscriber gets a later one only after it handled (or gave up on) every earlier one;
- from any process: an event published by the CLI or by another host is delivered by
  whichever worker claims it.

Subscribers get ``Event.id`` (the outbox id) to make their handling idempotent. In-process
listeners (``rapport.event_listeners``: live updates) still hear the event at once, after the
commit, and never for a rolled-back transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import db
from core.jobs_tables import (
    DISCARDED,
    GAVE_UP,
    HANDLED,
    PENDING,
    EventDelivery,
    OutboxEvent,
)
from core.plugin import Event, wants_event

if TYPE_CHECKING:
    from core.app import Rapport
    from core.jobs import WorkerConfig

log = logging.getLogger("rapport.events")

OPEN = (PENDING, "running")
# PostgreSQL NOTIFY channel on which committed work wakes the workers of every process.
WAKE_CHANNEL = "rapport_work"


def utcnow() -> datetime:
    from core.jobs import utcnow as now

    return now()


def subscribers(rapport: Rapport, event_name: str | None = None) -> list[str]:
    """The names of the plugins (and core modules) implementing ``on_event``, in load order:
    each is one subscriber with its own delivery record per durable event. With
    ``event_name``, only those that want it (``core.plugin.subscribes_to``)."""
    rank = {name: i for i, name in enumerate(rapport.load_order)}
    impls = rapport.pm.hook.on_event.get_hookimpls()
    names = sorted({impl.plugin_name for impl in impls
                    if event_name is None or wants_event(impl.function, event_name)},
                   key=lambda n: (rank.get(n, 1 << 30), n))
    return names


def _delivery_conditions(rapport: Rapport, event_name: str
                         ) -> list[tuple[str, Any]]:
    """The subscribers that want ``event_name``, in load order, each with its delivery
    condition or None. A condition (a core subscriber's ``on_event`` carrying
    ``rapport_delivery_condition``, e.g. core.webhooks: "an enabled webhook chose this
    event") is ``(event_name, postgres) -> (SQL boolean expression, params)``, evaluated in
    the publishing statement itself: exact, in the publishing transaction, on every process,
    and no delivery row is written when it is false."""
    rank = {name: i for i, name in enumerate(rapport.load_order)}
    found: dict[str, Any] = {}
    for impl in rapport.pm.hook.on_event.get_hookimpls():
        if wants_event(impl.function, event_name):
            found[impl.plugin_name] = getattr(impl.function, "rapport_delivery_condition", None)
    return sorted(found.items(), key=lambda item: (rank.get(item[0], 1 << 30), item[0]))


def call_subscribers(rapport: Rapport, event: Event) -> list[tuple[str, Any]]:
    """Call, in load order, each ``on_event`` that wants ``event`` (a non-durable event's
    in-process delivery); returns (plugin name, result) like ``Rapport.call_in_order``."""
    rank = {name: i for i, name in enumerate(rapport.load_order)}
    impls = sorted(rapport.pm.hook.on_event.get_hookimpls(),
                   key=lambda i: rank.get(i.plugin_name, 1 << 30))
    kwargs = {"rapport": rapport, "event": event}
    return [(impl.plugin_name,
             impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames}))
            for impl in impls if wants_event(impl.function, event.name)]


# --- publishing ----------------------------------------------------------------------------


async def publish_durable(rapport: Rapport, event: Event, *, key: str | None = None) -> Event:
    """Write ``event`` to the outbox (joining the caller's open transaction, if any) and run
    the in-process listeners once that transaction commits. Returns the event with its id."""
    try:
        payload = json.dumps(event.payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the payload of durable event {event.name!r} must be JSON: {exc}"
                         ) from exc
    now = utcnow()
    engine = OutboxEvent._meta.db

    async def write() -> int:
        wanted = _delivery_conditions(rapport, event.name)
        postgres = engine.engine_type == "postgres"
        # The subscribers as rows of one column: unconditional ones always, conditional ones
        # only where their condition holds (checked in this very statement).
        rows_sql: list[str] = []
        rows_args: list[Any] = []
        cast = "::varchar" if postgres else ""
        for name, condition in wanted:
            if condition is None:
                rows_sql.append(f"SELECT {{}}{cast} AS name")
                rows_args.append(name)
            else:
                sql, args = condition(event.name, postgres)
                rows_sql.append(f"SELECT {{}}{cast} AS name WHERE {sql}")
                rows_args += [name, *args]
        subs = " UNION ALL ".join(rows_sql)
        if postgres:
            # One round trip: the event, its deliveries and the wake-up of every listening
            # worker (NOTIFY is sent by PostgreSQL when, and only if, the transaction commits).
            rows = await OutboxEvent.raw(
                "WITH ev AS (INSERT INTO core_event (name, payload, actor_id, key, created_at) "
                "VALUES ({}, {}, {}, {}, {}) RETURNING id)"
                + (", deliveries AS (INSERT INTO core_event_delivery (event_id, subscriber, key, "
                   "status, attempts, run_at, created_at) SELECT ev.id, s.name, {}::varchar, "
                   "'pending', 0, {}::timestamptz, {}::timestamptz FROM ev CROSS JOIN ("
                   + subs + ") AS s)" if subs else "")
                + f", wake AS (SELECT pg_notify('{WAKE_CHANNEL}', 'events')) "
                "SELECT ev.id FROM ev, wake",
                event.name, payload, event.actor_id, key, now,
                *([key, now, now, *rows_args] if subs else [])).run()
            return int(rows[0]["id"])
        rows = await OutboxEvent.raw(
            "INSERT INTO core_event (name, payload, actor_id, key, created_at) "
            "VALUES ({}, {}, {}, {}, {}) RETURNING id",
            event.name, payload, event.actor_id, key, now).run()
        event_id = int(rows[0]["id"])
        if subs:
            await EventDelivery.raw(
                "INSERT INTO core_event_delivery (event_id, subscriber, key, status, attempts, "
                "run_at, created_at) SELECT {}, s.name, {}, 'pending', 0, {}, {} FROM ("
                + subs + ") AS s", event_id, key, now, now, *rows_args).run()
        return event_id

    if db.in_transaction(engine):
        event_id = await write()
    else:
        async with engine.transaction():
            event_id = await write()
    recorded = Event(name=event.name, payload=event.payload, actor_id=event.actor_id,
                     id=event_id)

    async def fast_path() -> None:
        from core import jobs

        for listener in list(rapport.event_listeners):
            try:
                await listener(recorded)
            except Exception:
                log.exception("event listener failed on event %s", recorded.name)
        jobs.nudge(rapport)

    if not db.after_commit(engine, fast_path):
        await fast_path()
    return recorded


# --- delivering ----------------------------------------------------------------------------


@dataclass
class ClaimedDelivery:
    id: int
    subscriber: str
    attempts: int
    event: Event


def _placeholders(values: list[Any]) -> str:
    return ", ".join("{}" for _ in values)


async def claim_deliveries(rapport: Rapport, limit: int, config: WorkerConfig, *,
                           probe: bool = True) -> list[ClaimedDelivery]:
    """Take up to ``limit`` due deliveries for subscribers this process has (and running
    ones whose lease ran out), never one whose key has an earlier open delivery.
    ``probe=False`` when the caller just saw that some are due.

    One statement claims the whole batch (PostgreSQL: ``UPDATE ... WHERE id IN (SELECT ...
    FOR UPDATE SKIP LOCKED) RETURNING`` joined to the events, one round trip; SQLite: the
    UPDATE is atomic under its single writer, then one read of the events). No lock across
    workers is needed: SKIP LOCKED keeps two workers off one row, and a later event of a key
    stays behind an earlier one whether that one is pending or running."""
    names = subscribers(rapport)
    if limit <= 0 or not names:
        return []
    now = utcnow()
    due = ("((d.status = 'pending' AND d.run_at <= {}) OR "
           "(d.status = 'running' AND d.locked_until < {})) "
           f"AND d.subscriber IN ({_placeholders(names)})")
    if probe and not await EventDelivery.raw(
            f"SELECT d.id FROM core_event_delivery d WHERE {due} LIMIT 1", now, now, *names
    ).run():
        return []
    postgres = EventDelivery._meta.db.engine_type == "postgres"
    lease = config.event_timeout_seconds + config.lease_grace_seconds
    now = utcnow()
    update = (
        "UPDATE core_event_delivery SET status = 'running', attempts = attempts + 1, "
        "locked_until = {} WHERE id IN ("
        f"SELECT d.id FROM core_event_delivery d WHERE {due} "
        "AND (d.key IS NULL OR NOT EXISTS (SELECT 1 FROM core_event_delivery e "
        "WHERE e.subscriber = d.subscriber AND e.key = d.key AND e.event_id < d.event_id "
        "AND e.status IN ('pending', 'running'))) ORDER BY d.id LIMIT {}"
        + (" FOR UPDATE SKIP LOCKED" if postgres else "")
        + ") RETURNING id, event_id, subscriber, attempts")
    params = [now + timedelta(seconds=lease), now, now, *names, limit]
    if postgres:
        rows = await EventDelivery.raw(
            f"WITH claimed AS ({update}) SELECT c.id, c.event_id, c.subscriber, c.attempts, "
            "ev.name, ev.payload, ev.actor_id FROM claimed c "
            "JOIN core_event ev ON ev.id = c.event_id", *params).run()
        events = {int(r["event_id"]): r for r in rows}
    else:
        rows = await EventDelivery.raw(update, *params).run()
        if not rows:
            return []
        event_ids = sorted({int(r["event_id"]) for r in rows})
        events = {int(e["id"]): e for e in await OutboxEvent.select(
            OutboxEvent.id, OutboxEvent.name, OutboxEvent.payload, OutboxEvent.actor_id,
        ).where(OutboxEvent.id.is_in(event_ids)).run()}
    claimed = []
    for row in sorted(rows, key=lambda r: int(r["id"])):
        stored = events[int(row["event_id"])]
        claimed.append(ClaimedDelivery(
            id=int(row["id"]), subscriber=row["subscriber"], attempts=int(row["attempts"]),
            event=Event(name=stored["name"], payload=json.loads(stored["payload"]),
                        actor_id=stored["actor_id"], id=int(row["event_id"]))))
    return claimed


async def record_handled(ids: list[int]) -> None:
    """Mark many deliveries handled in one statement (the worker gathers its successes and
    records them together; a crash before this only means they are delivered again)."""
    if not ids:
        return
    await EventDelivery.raw(
        "UPDATE core_event_delivery SET status = 'done', locked_until = NULL, handled_at = {} "
        f"WHERE status = 'running' AND id IN ({_placeholders(ids)})", utcnow(), *ids).run()


def _subscriber_impl(rapport: Rapport, subscriber: str):
    for impl in rapport.pm.hook.on_event.get_hookimpls():
        if impl.plugin_name == subscriber:
            return impl
    return None


async def run_delivery(rapport: Rapport, delivery: ClaimedDelivery, config: WorkerConfig,
                       handled: list[int] | None = None) -> str:
    """Call one subscriber with one event and record the outcome; returns the new status.
    With ``handled``, a success is appended to it for :func:`record_handled` instead of
    being written at once (failures are always written at once)."""
    impl = _subscriber_impl(rapport, delivery.subscriber)
    try:
        if impl is None:
            raise LookupError(f"{delivery.subscriber} no longer subscribes to events")
        kwargs = {"rapport": rapport, "event": delivery.event}
        result = impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        if inspect.isawaitable(result):
            # asyncio.timeout, unlike wait_for on 3.11, runs it in this task (no new task
            # per delivery: thousands a second).
            async with asyncio.timeout(config.event_timeout_seconds):
                await result
    except asyncio.CancelledError:
        # The worker is stopping: give the delivery back without counting this attempt.
        with contextlib.suppress(Exception):
            await asyncio.shield(EventDelivery.raw(
                "UPDATE core_event_delivery SET status = 'pending', attempts = attempts - 1, "
                "locked_until = NULL WHERE id = {} AND status = 'running'", delivery.id).run())
        raise
    except Exception as exc:
        if isinstance(exc, TimeoutError):
            error = f"took longer than {config.event_timeout_seconds:g} seconds"
        else:
            error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:2000]
        log.warning("subscriber %s failed on event %s #%s (attempt %s of %s): %s",
                    delivery.subscriber, delivery.event.name, delivery.event.id,
                    delivery.attempts, config.event_max_attempts, error,
                    exc_info=not isinstance(exc, TimeoutError))
        now = utcnow()
        mine = (EventDelivery.id == delivery.id) & (EventDelivery.status == "running")
        if delivery.attempts >= config.event_max_attempts:
            await EventDelivery.update({
                EventDelivery.status: GAVE_UP, EventDelivery.locked_until: None,
                EventDelivery.last_error: error}).where(mine).run()
            return GAVE_UP
        await EventDelivery.update({
            EventDelivery.status: PENDING, EventDelivery.locked_until: None,
            EventDelivery.last_error: error,
            EventDelivery.run_at: now + timedelta(seconds=config.backoff(delivery.attempts)),
        }).where(mine).run()
        return PENDING
    if handled is not None:
        handled.append(delivery.id)
        return HANDLED
    mine = (EventDelivery.id == delivery.id) & (EventDelivery.status == "running")
    await EventDelivery.update({
        EventDelivery.status: HANDLED, EventDelivery.locked_until: None,
        EventDelivery.handled_at: utcnow()}).where(mine).run()
    return HANDLED


# --- administration ------------------------------------------------------------------------


async def retry_delivery(rapport: Rapport, delivery_id: int) -> bool:
    """Try a failed or discarded delivery again now, with its attempts reset."""
    from core import jobs

    again = await EventDelivery.update({
        EventDelivery.status: PENDING, EventDelivery.attempts: 0,
        EventDelivery.run_at: utcnow(), EventDelivery.locked_until: None,
    }).where((EventDelivery.id == delivery_id)
             & EventDelivery.status.is_in([GAVE_UP, DISCARDED])).returning(EventDelivery.id).run()
    if again:
        jobs.nudge(rapport)
    return bool(again)


async def discard_delivery(delivery_id: int) -> bool:
    """Give up on a delivery that is waiting for a retry or has failed: the subscriber will
    not get this event (later events for the same key are no longer held back by it)."""
    gone = await EventDelivery.update({
        EventDelivery.status: DISCARDED, EventDelivery.locked_until: None,
    }).where((EventDelivery.id == delivery_id)
             & EventDelivery.status.is_in([GAVE_UP, PENDING])).returning(EventDelivery.id).run()
    return bool(gone)


async def delivery_counts() -> dict[str, int]:
    counts = {"pending": 0, "running": 0, "failed": 0, "retrying": 0}
    for row in await EventDelivery.raw(
            "SELECT status, attempts > 0 AS tried, COUNT(*) AS n FROM core_event_delivery "
            "WHERE status IN ('pending', 'running', 'failed') GROUP BY status, attempts > 0"
    ).run():
        n = int(row["n"])
        counts[row["status"]] += n
        if row["status"] == PENDING and row["tried"]:
            counts["retrying"] += n
    return counts


async def purge_handled(cutoff: datetime) -> int:
    """Delete events older than ``cutoff`` that no subscriber still has to handle (or that
    an administrator still has to look at), in batches."""
    removed = 0
    while True:
        rows = await OutboxEvent.raw(
            "SELECT ev.id FROM core_event ev WHERE ev.created_at < {} AND NOT EXISTS ("
            "SELECT 1 FROM core_event_delivery d WHERE d.event_id = ev.id AND d.status IN "
            "('pending', 'running', 'failed')) ORDER BY ev.id LIMIT 1000", cutoff).run()
        ids = [int(r["id"]) for r in rows]
        if not ids:
            return removed
        async with OutboxEvent._meta.db.transaction():
            await EventDelivery.delete().where(EventDelivery.event_id.is_in(ids)).run()
            await OutboxEvent.delete().where(OutboxEvent.id.is_in(ids)).run()
        removed += len(ids)


# --- listing (admin page, CLI) ----------------------------------------------------------------


async def list_troubled(*, after: int | None = None, limit: int = 50
                        ) -> tuple[list[dict[str, Any]], int | None]:
    """Deliveries needing an administrator's eye, newest first: failed ones, pending ones
    that have failed at least once (waiting for a retry) or have waited over five minutes
    (stuck: no worker is running?), and running ones whose worker's lease ran out. Each row
    carries its event's name and time. Keyset pages on the delivery id."""
    now = utcnow()
    where = (EventDelivery.status == GAVE_UP) | (
        (EventDelivery.status == PENDING) & (
            (EventDelivery.attempts > 0) | (EventDelivery.run_at < now - timedelta(minutes=5)))
    ) | ((EventDelivery.status == "running") & (EventDelivery.locked_until < now))
    if after is not None:
        where = where & (EventDelivery.id < after)
    rows = await EventDelivery.select().where(where).order_by(
        EventDelivery.id, ascending=False).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    ids = sorted({r["event_id"] for r in rows})
    found = {e["id"]: e for e in await OutboxEvent.select(
        OutboxEvent.id, OutboxEvent.name, OutboxEvent.created_at).where(
        OutboxEvent.id.is_in(ids)).run()} if ids else {}
    for row in rows:
        event = found.get(row["event_id"], {})
        row["event_name"] = event.get("name", "")
        row["event_created_at"] = event.get("created_at")
    return rows, (rows[-1]["id"] if more and rows else None)
