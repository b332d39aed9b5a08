"""Background jobs: one queue, in the database, for core and plugins (docs/jobs.md).

Why a table queue rather than procrastinate, SAQ or arq: it works on the SQLite default with
no other service, and a job is enqueued in the same transaction as the change that asks for
it (docs/jobs.md has the comparison and the measurements).

- Plugins declare job types with the ``register_jobs`` hook (:class:`core.plugin.JobType`)
  and queue work with :func:`enqueue`, inside their transaction if they have one open.
- A :class:`Worker` runs inside ``rapport serve`` (unless ``RAPPORT_WORKER=off``) and in
  ``rapport worker`` processes, on as many hosts as wanted on PostgreSQL. It also delivers
  durable events to their subscribers (:mod:`core.events`).
- Claiming takes a lease (the type's time limit plus a grace period): a worker killed in the
  middle of a job loses its lease, and another worker runs the job again. Jobs are
  therefore run *at least once*; making them idempotent is the job's duty.
- Workers claim under a lock (SQLite: its single writer; PostgreSQL: an advisory lock held
  for the claim's transaction, rows taken FOR UPDATE SKIP LOCKED), so "one at a time" and
  "once per occurrence" hold across every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cronsim import CronSim, CronSimError

from core import db
from core.jobs_tables import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRow
from core.plugin import Job, JobType, hookimpl

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.jobs")

_CLAIM_LOCK = 7_031_501  # PostgreSQL advisory lock id: job claims, one worker at a time
LISTEN_CONNECT_SECONDS = 10.0
LISTEN_BACKOFF_FIRST, LISTEN_BACKOFF_CAP = 1.0, 60.0  # seconds between LISTEN reconnections


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker behaves. Each value comes from ``settings.extra`` (``jobs_poll_seconds``
    ...) or the environment (``RAPPORT_JOBS_POLL_SECONDS`` ...), else the default here."""

    poll_seconds: float = 1.0  # how often an idle worker looks for due work
    concurrency: int = 4  # jobs run at once by one worker
    event_concurrency: int = 8  # event deliveries run at once by one worker
    lease_grace_seconds: float = 30.0  # a lease is the time limit plus this
    backoff_seconds: float = 10.0  # first retry delay; doubles per attempt
    backoff_cap_seconds: float = 6 * 3600.0
    event_max_attempts: int = 12  # then a delivery is marked failed
    event_timeout_seconds: float = 60.0  # one subscriber's time limit per event
    shutdown_seconds: float = 10.0  # how long stopping waits for running work
    in_server: bool = True  # run a worker inside `rapport serve`

    @classmethod
    def for_rapport(cls, rapport: Rapport) -> WorkerConfig:
        extra = rapport.settings.extra or {}
        values: dict[str, Any] = {}
        for name, field_ in cls.__dataclass_fields__.items():
            if name == "in_server":
                continue
            raw = extra.get(f"jobs_{name}") or os.environ.get(f"RAPPORT_JOBS_{name.upper()}")
            if raw in (None, ""):
                continue
            kind = int if field_.type in ("int", int) else float
            try:
                values[name] = kind(raw)
            except ValueError:
                log.warning("ignoring %s=%r: not a number", name, raw)
        flag = extra.get("worker") or os.environ.get("RAPPORT_WORKER", "on")
        values["in_server"] = str(flag).lower() not in {"0", "off", "false", "no"}
        return cls(**values)

    def backoff(self, attempts: int) -> float:
        """Delay before the next attempt after ``attempts`` failed ones: exponential, capped,
        with jitter so failures of many rows do not retry in lockstep."""
        delay = min(self.backoff_seconds * (2 ** max(0, attempts - 1)), self.backoff_cap_seconds)
        return delay * random.uniform(0.8, 1.2)


# --- job types -----------------------------------------------------------------------------

_types: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, JobType]]] = (
    weakref.WeakKeyDictionary())


def job_types(rapport: Rapport) -> dict[str, JobType]:
    """Every job type core and the enabled plugins declare, by name."""
    # Keyed on how many plugins declare jobs: tests register plugins on a running app.
    declaring = len(rapport.pm.hook.register_jobs.get_hookimpls())
    cached = _types.get(rapport)
    found = cached[1] if cached is not None and cached[0] == declaring else None
    if found is None:
        found = {}
        for job_type in rapport.collect("register_jobs", rapport=rapport):
            if not isinstance(job_type, JobType):
                raise TypeError(f"register_jobs must return JobType objects, got {job_type!r}")
            if job_type.name in found:
                raise ValueError(f"job type {job_type.name!r} is declared twice")
            if job_type.schedule is not None:
                next_slot(job_type.schedule, utcnow())  # a bad schedule fails at start-up
            found[job_type.name] = job_type
        _types[rapport] = (declaring, found)
    return found


def next_slot(schedule: str | float, after: datetime) -> datetime:
    """The first occurrence of ``schedule`` strictly after ``after`` (UTC). Interval
    schedules are aligned to the epoch, so every worker computes the same occurrences."""
    if isinstance(schedule, int | float):
        if schedule <= 0:
            raise ValueError("a job schedule interval must be positive")
        stamp = after.timestamp()
        return datetime.fromtimestamp((int(stamp // schedule) + 1) * schedule, UTC)
    try:
        return next(CronSim(str(schedule), after.astimezone(UTC)))
    except (CronSimError, StopIteration) as exc:
        raise ValueError(f"job schedule {schedule!r} is not a cron expression: {exc}") from exc


# --- enqueue, cancel, retry ----------------------------------------------------------------


async def enqueue(rapport: Rapport, name: str, args: dict[str, Any] | None = None, *,
                  run_at: datetime | None = None, delay: float | None = None,
                  unique_key: str | None = None, max_attempts: int | None = None) -> int:
    """Queue job ``name`` with JSON ``args``; return its id.

    Inside an open transaction the job joins it: it exists only if the transaction commits.
    ``run_at`` (an aware datetime) or ``delay`` (seconds) puts it off. With ``unique_key``
    (or for a ``unique`` job type) a job of the same name and key already waiting is
    returned instead of queueing another.
    """
    job_type = job_types(rapport).get(name)
    if job_type is None:
        raise ValueError(f"job type {name!r} is not declared by any plugin (register_jobs)")
    text = json.dumps(args or {})
    now = utcnow()
    when = run_at.astimezone(UTC) if run_at is not None else now
    if delay:
        when = when + timedelta(seconds=delay)
    if unique_key is None and job_type.unique:
        unique_key = ""
    attempts = max_attempts or job_type.max_attempts
    for _ in range(3):
        rows = await JobRow.raw(
            "INSERT INTO core_job (name, args, status, run_at, attempts, max_attempts, "
            "unique_key, exclusive, cancel_requested, created_at) "
            "VALUES ({}, {}, 'queued', {}, 0, {}, {}, {}, {}, {}) "
            "ON CONFLICT DO NOTHING RETURNING id" if not _is_postgres() else
            # PostgreSQL: the same statement NOTIFYs listening workers (sent on commit).
            "WITH job AS (INSERT INTO core_job (name, args, status, run_at, attempts, "
            "max_attempts, unique_key, exclusive, cancel_requested, created_at) "
            "VALUES ({}, {}, 'queued', {}, 0, {}, {}, {}, {}, {}) "
            "ON CONFLICT DO NOTHING RETURNING id), "
            "wake AS (SELECT pg_notify('rapport_work', 'jobs')) SELECT job.id FROM job, wake",
            name, text, when, attempts, unique_key, job_type.unique, False, now).run()
        if rows:
            _nudge_after_commit(rapport)
            return int(rows[0]["id"])
        waiting = await JobRow.select(JobRow.id).where(
            (JobRow.name == name) & (JobRow.unique_key == unique_key)
            & (JobRow.status == QUEUED)).first().run()
        if waiting:
            return int(waiting["id"])
    raise RuntimeError(f"could not queue job {name!r}")


async def cancel(job_id: int) -> str | None:
    """Cancel a job: a waiting one at once (``"cancelled"``), a running one at its worker's
    next look (``"cancelling"``). None when there is no such job still to stop."""
    now = utcnow()
    done = await JobRow.update({JobRow.status: CANCELLED, JobRow.finished_at: now}).where(
        (JobRow.id == job_id) & (JobRow.status == QUEUED)).returning(JobRow.id).run()
    if done:
        return "cancelled"
    asked = await JobRow.update({JobRow.cancel_requested: True}).where(
        (JobRow.id == job_id) & (JobRow.status == RUNNING)).returning(JobRow.id).run()
    return "cancelling" if asked else None


async def retry(rapport: Rapport, job_id: int) -> bool:
    """Queue a failed, cancelled or finished job again now, with its attempts reset.
    False when it is waiting or running already, or an identical one is waiting."""
    try:
        again = await JobRow.update({
            JobRow.status: QUEUED, JobRow.run_at: utcnow(), JobRow.attempts: 0,
            JobRow.cancel_requested: False, JobRow.finished_at: None, JobRow.locked_until: None,
        }).where((JobRow.id == job_id) & JobRow.status.is_in([FAILED, CANCELLED, DONE])
                 ).returning(JobRow.id).run()
    except Exception as exc:  # the unique index: the same job already waits
        if "unique" in str(exc).lower():
            return False
        raise
    if again:
        nudge(rapport)
    return bool(again)


# --- waking workers ------------------------------------------------------------------------

_workers: weakref.WeakKeyDictionary[Any, Worker] = weakref.WeakKeyDictionary()


def nudge(rapport: Rapport) -> None:
    """Wake this process's worker (if it runs one) to look for work now."""
    worker = _workers.get(rapport)
    if worker is not None:
        worker.nudged = True
        worker.wake.set()


def _nudge_after_commit(rapport: Rapport) -> None:
    if _workers.get(rapport) is None:
        return

    async def wake() -> None:
        nudge(rapport)

    if not db.after_commit(JobRow._meta.db, wake):
        nudge(rapport)


def running_worker(rapport: Rapport) -> Worker | None:
    return _workers.get(rapport)


# --- the worker ----------------------------------------------------------------------------


def _placeholders(values: list[Any]) -> str:
    return ", ".join("{}" for _ in values)


def _is_postgres() -> bool:
    return JobRow._meta.db.engine_type == "postgres"


@dataclass
class _Claimed:
    id: int
    name: str
    args: dict[str, Any]
    attempts: int
    max_attempts: int
    schedule_slot: datetime | None
    cancel_requested: bool


def _jobs_due(names: list[str]) -> str:
    return ("((j.status = 'queued' AND j.run_at <= {}) OR "
            f"(j.status = 'running' AND j.locked_until < {{}})) AND j.name IN ({_placeholders(names)})")


async def anything_due(rapport: Rapport) -> tuple[bool, bool]:
    """(jobs due?, deliveries due?) in one cheap read, outside any transaction: an idle
    worker costs one indexed query per poll and never takes SQLite's write lock."""
    from core.events import subscribers

    names, subs = sorted(job_types(rapport)), subscribers(rapport)
    if not names and not subs:
        return False, False
    now = utcnow()
    parts, args = [], []
    if names:
        parts.append(f"SELECT 'jobs' AS kind FROM (SELECT j.id FROM core_job j WHERE "
                     f"{_jobs_due(names)} LIMIT 1) found_jobs")
        args += [now, now, *names]
    if subs:
        parts.append("SELECT 'events' AS kind FROM (SELECT d.id FROM core_event_delivery d "
                     "WHERE ((d.status = 'pending' AND d.run_at <= {}) OR (d.status = "
                     "'running' AND d.locked_until < {})) AND d.subscriber IN "
                     f"({_placeholders(subs)}) LIMIT 1) found_events")
        args += [now, now, *subs]
    rows = await JobRow.raw(" UNION ALL ".join(parts), *args).run()
    kinds = {row["kind"] for row in rows}
    return "jobs" in kinds, "events" in kinds


async def claim_jobs(rapport: Rapport, worker_id: str, limit: int,
                     config: WorkerConfig, *, probe: bool = True) -> list[_Claimed]:
    """Take up to ``limit`` due jobs (and running ones whose lease ran out) for this worker.
    ``probe=False`` when the caller just saw that some are due."""
    types = job_types(rapport)
    if limit <= 0 or not types:
        return []
    names = sorted(types)
    now = utcnow()
    due = _jobs_due(names)
    # Cheap look first, outside any transaction: an idle worker never takes the write lock.
    if probe and not await JobRow.raw(f"SELECT j.id FROM core_job j WHERE {due} LIMIT 1",
                                      now, now, *names).run():
        return []
    postgres = _is_postgres()
    async with JobRow._meta.db.transaction():
        if postgres:
            await JobRow.raw("SELECT pg_advisory_xact_lock({})", _CLAIM_LOCK).run()
        now = utcnow()
        candidates = await JobRow.raw(
            f"SELECT j.id, j.name, j.exclusive FROM core_job j WHERE {due} "
            "AND NOT (j.exclusive AND EXISTS (SELECT 1 FROM core_job r WHERE r.name = j.name "
            "AND r.status = 'running' AND r.id <> j.id AND r.locked_until >= {})) "
            "ORDER BY j.run_at, j.id LIMIT {}" + (" FOR UPDATE SKIP LOCKED" if postgres else ""),
            now, now, *names, now, limit * 4).run()
        chosen: list[int] = []
        exclusive_taken: set[str] = set()
        for row in candidates:
            if row["exclusive"]:
                if row["name"] in exclusive_taken:
                    continue
                exclusive_taken.add(row["name"])
            chosen.append(int(row["id"]))
            if len(chosen) == limit:
                break
        if not chosen:
            return []
        claimed: list[_Claimed] = []
        by_lease: dict[float, list[int]] = {}
        kinds = {int(r["id"]): r["name"] for r in candidates}
        for job_id in chosen:
            lease = types[kinds[job_id]].timeout_seconds + config.lease_grace_seconds
            by_lease.setdefault(lease, []).append(job_id)
        for lease, ids in by_lease.items():
            rows = await JobRow.raw(
                "UPDATE core_job SET status = 'running', attempts = attempts + 1, "
                "locked_until = {}, worker = {}, started_at = {}, finished_at = NULL "
                f"WHERE id IN ({_placeholders(ids)}) RETURNING id, name, args, attempts, "
                "max_attempts, schedule_slot, cancel_requested",
                now + timedelta(seconds=lease), worker_id, now, *ids).run()
            for row in rows:
                slot = row["schedule_slot"]
                if isinstance(slot, str):  # raw SQLite rows are not converted by type
                    slot = datetime.fromisoformat(slot)
                claimed.append(_Claimed(
                    id=int(row["id"]), name=row["name"], args=json.loads(row["args"] or "{}"),
                    attempts=int(row["attempts"]), max_attempts=int(row["max_attempts"]),
                    schedule_slot=slot, cancel_requested=bool(row["cancel_requested"])))
    return claimed


_handlers: dict[int, asyncio.Future] = {}  # running job id -> its handler's task

async def run_claimed_job(rapport: Rapport, worker_id: str, row: _Claimed,
                          config: WorkerConfig, done: list[int] | None = None) -> str:
    """Run one claimed job to its end and record how it ended; returns the new status.
    With ``done``, a success is appended to it for :func:`record_done` instead of being
    written at once (the worker records its finished jobs together)."""
    job_type = job_types(rapport)[row.name]
    mine = (JobRow.id == row.id) & (JobRow.worker == worker_id) & (JobRow.status == RUNNING)
    if row.cancel_requested:
        await JobRow.update({JobRow.status: CANCELLED, JobRow.finished_at: utcnow(),
                             JobRow.locked_until: None}).where(mine).run()
        return CANCELLED
    job = Job(id=row.id, name=row.name, args=row.args, attempt=row.attempts,
              max_attempts=row.max_attempts, scheduled_for=row.schedule_slot)
    # The handler runs in a task of its own, so an administrator's cancel (which cancels that
    # task) is told apart from the worker stopping (which cancels this one).
    handler = asyncio.ensure_future(
        asyncio.wait_for(job_type.handler(rapport, job), job_type.timeout_seconds))
    _handlers[row.id] = handler
    try:
        await handler
    except TimeoutError:
        return await _failed(row, mine, f"took longer than its limit of "
                             f"{job_type.timeout_seconds:g} seconds", config)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if handler.cancelled() and (current is None or not current.cancelling()):
            await JobRow.update({JobRow.status: CANCELLED, JobRow.finished_at: utcnow(),
                                 JobRow.locked_until: None,
                                 JobRow.last_error: "cancelled by an administrator"}
                                ).where(mine).run()
            return CANCELLED
        # The worker is stopping: give the job back without counting this attempt.
        with contextlib.suppress(Exception):
            await asyncio.shield(JobRow.raw(
                "UPDATE core_job SET status = 'queued', attempts = attempts - 1, "
                "locked_until = NULL, worker = NULL WHERE id = {} AND worker = {} "
                "AND status = 'running'", row.id, worker_id).run())
        raise
    except Exception as exc:
        log.warning("job %s #%s failed (attempt %s of %s): %s", row.name, row.id,
                    row.attempts, row.max_attempts, exc, exc_info=True)
        return await _failed(row, mine, _describe(exc), config)
    finally:
        _handlers.pop(row.id, None)
    if done is not None:
        done.append(row.id)
        return DONE
    await JobRow.update({JobRow.status: DONE, JobRow.finished_at: utcnow(),
                         JobRow.locked_until: None, JobRow.last_error: None}).where(mine).run()
    return DONE


async def record_done(ids: list[int], worker_id: str) -> None:
    """Mark many of this worker's jobs finished in one statement (a crash before it only
    means they run again, as for any job whose worker died)."""
    if not ids:
        return
    await JobRow.raw(
        "UPDATE core_job SET status = 'done', finished_at = {}, locked_until = NULL, "
        f"last_error = NULL WHERE worker = {{}} AND status = 'running' AND id IN "
        f"({_placeholders(ids)})", utcnow(), worker_id, *ids).run()


async def _failed(row: _Claimed, mine: Any, error: str, config: WorkerConfig) -> str:
    now = utcnow()
    if row.attempts >= row.max_attempts:
        await JobRow.update({JobRow.status: FAILED, JobRow.finished_at: now,
                             JobRow.locked_until: None, JobRow.last_error: error}).where(mine).run()
        return FAILED
    await JobRow.update({
        JobRow.status: QUEUED, JobRow.locked_until: None, JobRow.last_error: error,
        JobRow.run_at: now + timedelta(seconds=config.backoff(row.attempts)),
    }).where(mine).run()
    return QUEUED


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:2000]


async def ensure_schedules(rapport: Rapport, done: dict[str, datetime] | None = None) -> None:
    """Make sure each recurring job's next occurrence is queued (once, whichever worker
    gets there first: a unique index on (name, slot) turns the others' inserts away)."""
    done = {} if done is None else done
    now = utcnow()
    for job_type in job_types(rapport).values():
        if job_type.schedule is None:
            continue
        slot = next_slot(job_type.schedule, now)
        if done.get(job_type.name) == slot:
            continue
        queued = await JobRow.raw(
            "INSERT INTO core_job (name, args, status, run_at, attempts, max_attempts, "
            "schedule_slot, exclusive, cancel_requested, created_at) "
            "VALUES ({}, {}, 'queued', {}, 0, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING "
            "RETURNING id",
            job_type.name, "{}", slot, job_type.max_attempts, slot, True, False, now).run()
        done[job_type.name] = slot
        if queued:  # this worker queued the occurrence: it tidies the earlier ones
            await prune_recurring(job_type.name)


# Of a recurring job only the latest successful run and this many failed ones are kept: one
# running every few seconds (pwa.push.deliver) would otherwise leave thousands of rows a day.
KEEP_RECURRING_FAILED = 50


async def prune_recurring(name: str) -> None:
    """Delete the finished runs of recurring job ``name`` but its latest successful one and
    its latest :data:`KEEP_RECURRING_FAILED` failed ones (also the runs queued on demand
    under the same name). Two indexed deletes, once per occurrence."""
    await JobRow.raw(
        "DELETE FROM core_job WHERE name = {} AND status IN ('done', 'cancelled') AND id < ("
        "SELECT MAX(id) FROM core_job WHERE name = {} AND status = 'done')", name, name).run()
    await JobRow.raw(
        "DELETE FROM core_job WHERE name = {} AND status = 'failed' AND id < ("
        "SELECT id FROM core_job WHERE name = {} AND status = 'failed' ORDER BY id DESC "
        "LIMIT 1 OFFSET {})", name, name, KEEP_RECURRING_FAILED - 1).run()


class Worker:
    """Runs due jobs and delivers durable events until stopped.

    ``await worker.start()`` starts it in the background of the running event loop (the
    server's), ``await worker.stop()`` waits a bounded time for running work and gives back
    what is still running."""

    def __init__(self, rapport: Rapport, config: WorkerConfig | None = None) -> None:
        self.rapport = rapport
        self.config = config or WorkerConfig.for_rapport(rapport)
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._jobs: dict[int, asyncio.Task] = {}
        self._deliveries: set[asyncio.Task] = set()
        self._scheduled: dict[str, datetime] = {}
        self._stopping = False
        # A queue found drained is looked at again only after a poll interval or a nudge
        # (new work committed in this process): finishing a job must not cost extra queries.
        self.nudged = False
        self._jobs_idle_at: float | None = None
        self._events_idle_at: float | None = None
        self._cancels_checked_at = 0.0
        # Successes waiting to be recorded in one statement each at the next round.
        self._done: list[int] = []
        self._handled: list[int] = []
        self._listener: Any = None  # PostgreSQL connection LISTENing for new work
        self._listen_lost_at: float | None = None  # when it was lost (loop time)
        self._listen_retry_at = 0.0
        self._listen_delay = LISTEN_BACKOFF_FIRST

    async def start(self) -> None:
        job_types(self.rapport)  # declaration errors surface now, not in the loop
        _workers[self.rapport] = self
        await self._listen()
        self._loop_task = asyncio.create_task(self.run(), name="rapport-worker")

    @property
    def running(self) -> bool:
        """Whether the worker's loop is alive (``/healthz``)."""
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def listening(self) -> bool | None:
        """PostgreSQL: whether the LISTEN connection is up (None on SQLite, which polls)."""
        if not _is_postgres():
            return None
        return self._listener is not None and not self._listener.is_closed()

    async def _listen(self) -> None:
        """On PostgreSQL, LISTEN for work committed by other processes (publishing a durable
        event or queueing a job NOTIFYs in its transaction), so it starts at once instead of
        at the next poll. Without the connection, polling still finds everything; a lost one
        (PostgreSQL restarted, a failover, a killed backend) is logged and reconnected with
        backoff by :meth:`_keep_listening`."""
        from core.events import WAKE_CHANNEL

        if not _is_postgres():
            return
        import asyncpg

        def woken(*_: Any) -> None:
            self.nudged = True
            self.wake.set()

        def terminated(_connection: Any) -> None:
            if self._listener is _connection and not self._stopping:
                self.wake.set()  # the loop notices at once and reconnects

        loop = asyncio.get_running_loop()
        try:
            self._listener = await asyncio.wait_for(
                asyncpg.connect(**JobRow._meta.db.config), LISTEN_CONNECT_SECONDS)
            self._listener.add_termination_listener(terminated)
            await self._listener.add_listener(WAKE_CHANNEL, woken)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            retry = self._listen_delay * random.uniform(0.8, 1.2)
            log.warning("not listening for new work (polling every %g s instead; trying "
                        "again in %.0f s): %s", self.config.poll_seconds, retry, exc)
            await self._close_listener()
            self._listen_lost_at = self._listen_lost_at or loop.time()
            self._listen_retry_at = loop.time() + retry
            self._listen_delay = min(self._listen_delay * 2, LISTEN_BACKOFF_CAP)
            return
        if self._listen_lost_at is not None:
            log.warning("listening for new work again after %.0f s",
                        loop.time() - self._listen_lost_at)
            self.nudged = True  # work committed meanwhile woke nobody
        self._listen_lost_at, self._listen_delay = None, LISTEN_BACKOFF_FIRST

    async def _keep_listening(self) -> None:
        """Reconnect a lost LISTEN connection once its backoff has passed."""
        if not _is_postgres() or self._stopping or self.listening:
            return
        loop = asyncio.get_running_loop()
        if self._listener is not None:  # it was up: say so once, then reconnect
            log.warning("lost the connection listening for new work; reconnecting (polling "
                        "every %g s meanwhile)", self.config.poll_seconds)
            await self._close_listener()
            self._listen_lost_at = loop.time()
            self._listen_retry_at = 0.0
        if loop.time() >= self._listen_retry_at:
            await self._listen()

    def _idle_wait(self) -> float:
        """How long an idle round waits: the poll interval, or less when a LISTEN
        reconnection is due sooner."""
        if self._listen_lost_at is None and (self._listener is None or self.listening):
            return self.config.poll_seconds
        due = self._listen_retry_at - asyncio.get_running_loop().time()
        return max(0.05, min(self.config.poll_seconds, due))

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 5.0)

    async def run(self) -> None:
        while not self._stopping:
            self.wake.clear()
            busy = False
            try:
                await self._keep_listening()
                busy = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker round failed; trying again shortly")
            if busy:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self._idle_wait())

    async def tick(self) -> bool:
        """One look for work; True when it found enough to look again at once."""
        from core import events

        loop = asyncio.get_running_loop()
        now = loop.time()
        nudged, self.nudged = self.nudged, False

        def worth_looking(idle_at: float | None) -> bool:
            return nudged or idle_at is None or now - idle_at >= self.config.poll_seconds

        await self._record_finished()
        await ensure_schedules(self.rapport, self._scheduled)
        if self._jobs and now - self._cancels_checked_at >= self.config.poll_seconds:
            self._cancels_checked_at = now
            await self._check_cancellations()
        free = self.config.concurrency - len(self._jobs)
        free_deliveries = self.config.event_concurrency - len(self._deliveries)
        # Claim in batches: with work running, wait until half the slots are free, so one
        # claim (one round trip) serves many jobs or deliveries.
        look_jobs = (free > 0 and (not self._jobs or free * 2 >= self.config.concurrency)
                     and worth_looking(self._jobs_idle_at))
        look_events = (free_deliveries > 0 and (not self._deliveries or free_deliveries * 2
                                                >= self.config.event_concurrency)
                       and worth_looking(self._events_idle_at))
        probed = look_jobs and look_events
        if probed:
            look_jobs, look_events = await anything_due(self.rapport)
            self._jobs_idle_at = None if look_jobs else now
            self._events_idle_at = None if look_events else now
        claimed: list[_Claimed] = []
        if look_jobs:
            claimed = await claim_jobs(self.rapport, self.id, free, self.config,
                                       probe=not probed)
            self._jobs_idle_at = now if len(claimed) < free else None
        for row in claimed:
            task = asyncio.create_task(self._run_job(row), name=f"rapport-job-{row.id}")
            self._jobs[row.id] = task
        deliveries: list = []
        if look_events:
            deliveries = await events.claim_deliveries(self.rapport, free_deliveries,
                                                       self.config, probe=not probed)
            self._events_idle_at = now if len(deliveries) < free_deliveries else None
        for delivery in deliveries:
            task = asyncio.create_task(events.run_delivery(self.rapport, delivery, self.config,
                                                           self._handled))
            self._deliveries.add(task)
            task.add_done_callback(self._delivery_done)
        return (bool(claimed) and len(claimed) == free) or (
            bool(deliveries) and len(deliveries) == free_deliveries)

    async def _record_finished(self) -> None:
        from core import events

        # Jobs and deliveries still running append to these very lists (they were handed
        # them when they started): empty them in place, never swap in new lists, or what
        # finishes during the write below would be appended to a list nobody reads.
        if self._done:
            ids = self._done[:]
            self._done.clear()
            try:
                await record_done(ids, self.id)
            except BaseException:
                self._done.extend(ids)  # recorded at the next round instead
                raise
        if self._handled:
            ids = self._handled[:]
            self._handled.clear()
            try:
                await events.record_handled(ids)
            except BaseException:
                self._handled.extend(ids)
                raise

    def _delivery_done(self, task: asyncio.Task) -> None:
        self._deliveries.discard(task)
        self._events_idle_at = None  # it may have held back a later event of its key
        self.wake.set()

    async def _run_job(self, row: _Claimed) -> None:
        try:
            await run_claimed_job(self.rapport, self.id, row, self.config, self._done)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("recording the end of job %s #%s failed", row.name, row.id)
        finally:
            self._jobs.pop(row.id, None)
            job_type = job_types(self.rapport).get(row.name)
            if job_type is not None and (job_type.unique or job_type.schedule is not None):
                self._jobs_idle_at = None  # it may have held back another of its kind
            self.wake.set()

    async def _check_cancellations(self) -> None:
        ids = list(self._jobs)
        rows = await JobRow.select(JobRow.id).where(
            JobRow.id.is_in(ids) & (JobRow.cancel_requested == True)  # noqa: E712
            & (JobRow.status == RUNNING)).run()
        for row in rows:
            handler = _handlers.get(row["id"])
            if handler is not None:
                handler.cancel()

    async def stop(self) -> None:
        """Stop looking for work, let running work finish for up to ``shutdown_seconds``,
        then cancel it (jobs are given back to the queue, deliveries' leases run out)."""
        self._stopping = True
        if _workers.get(self.rapport) is self:
            del _workers[self.rapport]
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        running = [*self._jobs.values(), *self._deliveries]
        if running:
            _, pending = await asyncio.wait(running, timeout=self.config.shutdown_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        with contextlib.suppress(Exception):
            await self._record_finished()
        await self._close_listener()


async def run_pending(rapport: Rapport, *, rounds: int = 50) -> int:
    """Run every due job and event delivery now, in this task, until none is left (tests,
    one-off CLI use). Returns how many were run."""
    from core import events

    config = WorkerConfig.for_rapport(rapport)
    worker_id = f"inline:{os.getpid()}"
    count = 0
    for _ in range(rounds):
        await ensure_schedules(rapport)
        claimed = await claim_jobs(rapport, worker_id, 16, config)
        for row in claimed:
            await run_claimed_job(rapport, worker_id, row, config)
        deliveries = await events.claim_deliveries(rapport, 64, config)
        for delivery in deliveries:
            await events.run_delivery(rapport, delivery, config)
        count += len(claimed) + len(deliveries)
        if not claimed and not deliveries:
            break
    return count


# --- housekeeping and health ----------------------------------------------------------------

KEEP_FINISHED_DAYS = 7
KEEP_FAILED_DAYS = 30


async def purge(rapport: Rapport, job: Job) -> None:
    """Delete finished jobs and fully handled events past their keeping time, in batches."""
    from core.events import purge_handled

    now = utcnow()
    for statuses, days in (((DONE, CANCELLED), KEEP_FINISHED_DAYS), ((FAILED,), KEEP_FAILED_DAYS)):
        cutoff = now - timedelta(days=days)
        while True:
            ids = [r["id"] for r in await JobRow.select(JobRow.id).where(
                JobRow.status.is_in(list(statuses)) & (JobRow.finished_at < cutoff)
            ).limit(1000).run()]
            if not ids:
                break
            await JobRow.delete().where(JobRow.id.is_in(ids)).run()
    await purge_handled(now - timedelta(days=KEEP_FINISHED_DAYS))


async def health(rapport: Rapport) -> dict[str, Any]:
    """Counts per state and the age in seconds of the oldest job waiting past its time
    (None when nothing waits), for the admin page and ``rapport jobs health``."""
    from core.events import delivery_counts

    now = utcnow()
    counts = {status: 0 for status in (QUEUED, RUNNING, FAILED)}
    for row in await JobRow.raw(
            "SELECT status, COUNT(*) AS n FROM core_job WHERE status IN "
            "('queued', 'running', 'failed') GROUP BY status").run():
        counts[row["status"]] = int(row["n"])
    oldest = await JobRow.select(JobRow.run_at).where(
        (JobRow.status == QUEUED) & (JobRow.run_at <= now)).order_by(JobRow.run_at).first().run()
    age = None
    if oldest:
        run_at = oldest["run_at"]
        age = max(0.0, (now - run_at).total_seconds())
    return {"jobs": counts, "oldest_queued_seconds": age,
            "deliveries": await delivery_counts()}


# --- hooks ---------------------------------------------------------------------------------


@hookimpl
def register_jobs(rapport):
    return [JobType("core.jobs.purge", purge, schedule="17 3 * * *", timeout_seconds=3600,
                    description="Delete finished jobs and handled events after a week")]


@hookimpl
async def startup(rapport):
    config = WorkerConfig.for_rapport(rapport)
    if not config.in_server:
        return
    await Worker(rapport, config).start()


@hookimpl
async def shutdown(rapport):
    worker = _workers.get(rapport)
    if worker is not None:
        await worker.stop()


# --- listing (admin page, CLI) ----------------------------------------------------------------

VIEWS = ("waiting", "running", "scheduled", "failed", "recent")


async def list_jobs(view: str, *, after: int | None = None, limit: int = 50
                    ) -> tuple[list[dict[str, Any]], int | None]:
    """One page of jobs for a view: ``waiting`` (due, not started), ``running``,
    ``scheduled`` (waiting for a later time), ``failed``, ``recent`` (finished or cancelled).
    Keyset pages on the id; returns the rows and the cursor of the next page."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    now = utcnow()
    newest_first = view in ("failed", "recent")
    where = {
        "waiting": (JobRow.status == QUEUED) & (JobRow.run_at <= now),
        "running": JobRow.status == RUNNING,
        "scheduled": (JobRow.status == QUEUED) & (JobRow.run_at > now),
        "failed": JobRow.status == FAILED,
        "recent": JobRow.status.is_in([DONE, CANCELLED]),
    }[view]
    if after is not None:
        where = where & ((JobRow.id < after) if newest_first else (JobRow.id > after))
    rows = await JobRow.select().where(where).order_by(
        JobRow.id, ascending=not newest_first).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more and rows else None)
