"""Hook implementations loaded into real `rapport serve` / `rapport worker` / CLI processes
by tests/core/events/launch.py (as extra core modules): durable test events, two
subscribers recording their effects in files under $RAPPORT_TEST_EFFECTS, a route and a
command publishing an event, and job types for the worker tests.

Files, one line per effect: ``idempotent.log`` (the subscriber that dedupes on event.id),
``counting.log`` (appends on every call: shows re-runs), ``started.log`` (a call began),
``jobs.log`` (job id, pid, attempt). When ``block`` exists the idempotent subscriber and
the slow job hang after saying they started: the window in which a test kills the process.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from core.plugin import EventType, JobType, hookimpl

EVENT = "testing.order.created"


def _dir() -> Path:
    return Path(os.environ["RAPPORT_TEST_EFFECTS"])


def _append(name: str, line: str) -> None:
    # One small O_APPEND write per line: atomic across processes.
    fd = os.open(_dir() / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def lines(effects: Path, name: str) -> list[str]:
    path = effects / name
    return path.read_text().splitlines() if path.exists() else []


@hookimpl
def register_events():
    return [EventType(EVENT, "A test order was created", durable=True)]


async def _hang_while_blocked() -> None:
    while (_dir() / "block").exists():
        await asyncio.sleep(0.05)


class Idempotent:
    """Handles each event id once by effect, however often it is called."""

    @hookimpl
    async def on_event(self, event):
        if event.name != EVENT:
            return
        _append("started.log", f"{event.id} {os.getpid()}")
        await _hang_while_blocked()
        if str(event.id) not in lines(_dir(), "idempotent.log"):
            _append("idempotent.log", str(event.id))


class Counting:
    @hookimpl
    async def on_event(self, event):
        if event.name == EVENT:
            _append("counting.log", str(event.id))


@hookimpl
def register_routes():
    from litestar import Request, get

    from core.jobs_tables import OutboxEvent

    @get("/testing/publish", opt={"public": True})
    async def publish_route(request: Request) -> dict:
        rapport = request.app.state.rapport
        async with OutboxEvent._meta.db.transaction():
            event = await rapport.publish(EVENT, {"from": "server"}, key="order:1")
        return {"id": event.id}

    return [publish_route]


@hookimpl
def register_commands(cli):
    import asyncio as aio

    import click

    @cli.command(name="testing-publish")
    @click.pass_context
    def testing_publish(ctx) -> None:
        from core import db
        from core.cli import get_rapport

        rapport = get_rapport(ctx)

        async def run() -> int:
            rapport.activate()
            await db.connect(rapport.engine, pool_size=1)
            try:
                event = await rapport.publish(EVENT, {"from": "cli"})
                return event.id
            finally:
                await db.disconnect(rapport.engine)

        click.echo(aio.run(run()))


async def record_job(rapport, job):
    _append("jobs.log", f"{job.id} {os.getpid()} {job.attempt}")


async def slow_job(rapport, job):
    _append("started.log", f"job {job.id} {os.getpid()} {job.attempt}")
    if job.attempt == 1:
        await _hang_while_blocked()
    _append("jobs.log", f"{job.id} {os.getpid()} {job.attempt}")


@hookimpl
def register_jobs():
    return [JobType("testing.record", record_job),
            JobType("testing.slow", slow_job, timeout_seconds=2.0)]
