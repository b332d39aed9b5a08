"""Durable events and jobs across real processes: a server killed with SIGKILL between the
commit of an event and its subscriber running, an event published by the CLI, and two
`rapport worker` processes on PostgreSQL (each job once; a killed worker's job picked up).

Servers and workers run tests/core/events/launch.py (the `rapport` command with a test
plugin loaded) with short poll, lease and time-limit settings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.core.events.process_plugin import lines

WAIT = 20.0  # seconds: a bound against hanging, not a timing claim
ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    effects = tmp_path / "effects"
    effects.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATABASE_URL=database_url, RAPPORT_DATA_DIR=str(tmp_path / "data"),
        RAPPORT_PLUGINS_TOML=str(tmp_path / "plugins.toml"), RAPPORT_INSECURE_COOKIES="1",
        RAPPORT_TEST_EFFECTS=str(effects), PYTHONPATH=str(ROOT),
        RAPPORT_JOBS_POLL_SECONDS="0.1", RAPPORT_JOBS_LEASE_GRACE_SECONDS="0.5",
        RAPPORT_JOBS_EVENT_TIMEOUT_SECONDS="2", RAPPORT_JOBS_BACKOFF_SECONDS="0.2",
        RAPPORT_JOBS_SHUTDOWN_SECONDS="1")
    return env


def _launch(env: dict[str, str], *args: str) -> subprocess.Popen:
    # Output to a file, never a pipe nobody reads: a full pipe would stall the process.
    log = Path(env["RAPPORT_TEST_EFFECTS"]).parent / f"process-{time.monotonic_ns()}.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "tests.core.events.launch", *args],
                                   env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    process.log = log  # type: ignore[attr-defined]
    return process


def _output(process: subprocess.Popen) -> str:
    return process.log.read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]


async def _until(predicate, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended while waiting for {what}: "
                                 f"{_output(process)}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def serving(env: dict[str, str]):
    """`rapport serve` on a free port, once it answers; yields (process, base URL)."""
    port = _free_port()
    process = _launch(env, "serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + WAIT * 2
            while True:
                if process.poll() is not None:
                    raise AssertionError(_output(process))
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/login")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError("the server did not start")
                await asyncio.sleep(0.1)
        yield process, base
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _database(make_rapport) -> str:
    instance = await make_rapport()
    return instance.settings.database_url


async def _recorded_handled(instance, subscriber: str) -> bool:
    from core.jobs_tables import EventDelivery

    rows = await EventDelivery.select(EventDelivery.status).where(
        EventDelivery.subscriber == subscriber).run()
    return [r["status"] for r in rows] == ["done"]


async def test_a_server_killed_between_commit_and_subscriber_delivers_once_after_restart(
        make_rapport, tmp_path):
    from tests.conftest import connected

    instance = await make_rapport()
    env = _env(tmp_path, instance.settings.database_url)
    effects = Path(env["RAPPORT_TEST_EFFECTS"])
    (effects / "block").touch()
    async with serving(env) as (process, base), connected(instance):
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            response = await client.get("/testing/publish")
        assert response.status_code == 200, response.text
        event_id = str(response.json()["id"])
        # Committed; one subscriber handled it (and that is recorded), the other is in the
        # middle of it.
        deadline = time.monotonic() + WAIT
        while not await _recorded_handled(instance, "testing_counting"):
            assert time.monotonic() < deadline, "the fast subscriber was not recorded"
            await asyncio.sleep(0.05)
        assert lines(effects, "counting.log") == [event_id]
        await _until(lambda: lines(effects, "started.log"), "the slow one to start", process)
        process.kill()  # SIGKILL: no shutdown hook, no chance to record anything
        process.wait()
    assert lines(effects, "idempotent.log") == []
    (effects / "block").unlink()

    async with serving(env) as (process, _base):
        await _until(lambda: lines(effects, "idempotent.log") == [event_id],
                     "the subscriber to handle the event after the restart", process)
        await asyncio.sleep(0.5)  # room for a wrong second delivery to show
    assert lines(effects, "idempotent.log") == [event_id]
    assert lines(effects, "counting.log") == [event_id]  # the other subscriber: not re-run


async def test_an_event_published_by_the_cli_reaches_the_subscribers_in_the_server(
        make_rapport, tmp_path):
    env = _env(tmp_path, await _database(make_rapport))
    effects = Path(env["RAPPORT_TEST_EFFECTS"])
    async with serving(env) as (process, _base):
        cli = subprocess.run([sys.executable, "-m", "tests.core.events.launch",
                              "testing-publish"], env={**env, "RAPPORT_WORKER": "off"},
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        event_id = cli.stdout.strip().splitlines()[-1]
        await _until(lambda: lines(effects, "idempotent.log") == [event_id]
                     and lines(effects, "counting.log") == [event_id],
                     "the server's subscribers", process)
        started = {line.split()[1] for line in lines(effects, "started.log")}
        assert started == {str(process.pid)}  # handled in the server, not the CLI


@contextlib.contextmanager
def workers(env: dict[str, str], count: int):
    processes = [_launch({**env}, "worker") for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            _stop(process)


async def test_two_workers_on_postgresql_run_each_job_once_and_take_over_a_killed_ones_job(
        make_rapport, tmp_path, backend):
    if backend.name != "postgres":
        pytest.skip("several workers need PostgreSQL")
    from core import jobs
    from core.jobs_tables import JobRow
    from tests.conftest import connected
    from tests.core.events import process_plugin

    instance = await make_rapport()
    instance.pm.register(process_plugin, name="testing_process")
    env = _env(tmp_path, instance.settings.database_url)
    effects = Path(env["RAPPORT_TEST_EFFECTS"])
    async with connected(instance):
        with workers(env, 2) as (first, second):
            ids = [await jobs.enqueue(instance, "testing.record", {"n": n}) for n in range(60)]
            await _until(lambda: len(lines(effects, "jobs.log")) >= 60, "60 jobs", first)
            await asyncio.sleep(0.5)
            ran = [line.split()[0] for line in lines(effects, "jobs.log")]
            assert sorted(ran, key=int) == [str(i) for i in ids]  # each once

            (effects / "block").touch()
            slow = await jobs.enqueue(instance, "testing.slow", {})
            await _until(lambda: any(line.startswith(f"job {slow} ")
                                     for line in lines(effects, "started.log")),
                         "the slow job to start", first)
            runner = int(next(line.split()[2] for line in lines(effects, "started.log")
                              if line.startswith(f"job {slow} ")))
            victim = first if first.pid == runner else second
            survivor = second if victim is first else first
            victim.kill()
            victim.wait()
            (effects / "block").unlink()
            # Its lease (time limit 2 s + 0.5 s grace) runs out; the other worker runs it.
            await _until(lambda: f"{slow} {survivor.pid} 2" in lines(effects, "jobs.log"),
                         "the other worker to run the job again", survivor)
        row = await JobRow.select(JobRow.status, JobRow.attempts).where(
            JobRow.id == slow).first().run()
        assert row == {"status": "done", "attempts": 2}
