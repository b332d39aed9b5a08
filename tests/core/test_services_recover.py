"""Services going away and coming back (issue 17, items 15 and 16): PostgreSQL connections
killed, Redis unreachable at start and later back. Live updates and the job worker's wake-up
connection reconnect by themselves, /healthz says what is down meanwhile, and a server cut off
from Redis still stops promptly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.live import RESYNC, Channels
from tests.conftest import IN_CI, POSTGRES_URL, app_client

WAIT = 60  # seconds: a bound so a server that never recovers fails, not a timing claim


async def _until(condition, what: str) -> None:
    for _ in range(WAIT * 10):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def _health(client) -> tuple[int, dict]:
    response = await client.get("/healthz")
    return response.status_code, response.json()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _next_message(subscriber, wanted: bytes) -> None:
    """Read the subscriber's messages until one containing ``wanted`` arrives."""
    async def read() -> None:
        async for raw in subscriber.iter_events():
            if wanted in raw:
                return
    await asyncio.wait_for(read(), WAIT)


async def test_after_postgresql_connections_are_killed_live_updates_and_the_worker_come_back(
        make_rapport, backend):
    if backend.name != "postgres":
        pytest.skip("PostgreSQL's connections are killed here")
    import asyncpg

    rapport = await make_rapport(extra={"worker": "on", "jobs_poll_seconds": "60"})
    database = rapport.settings.database_url.rsplit("/", 1)[1]
    async with app_client(rapport) as client:
        status, body = await _health(client)
        assert status == 200 and body["status"] == "ok", body
        assert body["checks"]["live"]["ok"] and body["checks"]["jobs"]["listening"] is True
        plugin, channel = rapport.live[0], Channels(rapport).interactions
        async with plugin.start_subscription([channel]) as subscriber:
            admin = await asyncpg.connect(POSTGRES_URL)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
            finally:
                await admin.close()
            assert killed >= 3  # data connections, the live LISTEN and the worker's LISTEN

            async def recovered() -> bool:
                status, body = await _health(client)
                return status == 200 and body["checks"]["jobs"].get("listening") is True

            await _until(recovered, "/healthz ok again with the worker listening")
            # Open streams are told that they may have missed changes...
            await _next_message(subscriber, RESYNC)
            # ...and changes reach them again.
            plugin.publish({"event": "core.interaction.created", "interaction_id": 42},
                           channel)
            await _next_message(subscriber, b'"interaction_id":42')


@contextlib.contextmanager
def redis_server(port: int):
    path = shutil.which("redis-server")
    if path is None:
        if IN_CI:
            pytest.fail("redis-server is not installed", pytrace=False)
        pytest.skip("redis-server is not installed")
    server = subprocess.Popen([path, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.asynccontextmanager
async def logged(name: str):
    """The messages logged on ``name`` meanwhile (Litestar replaces the root logger's
    handlers when an app is built, so pytest's caplog misses them)."""
    messages: list[str] = []
    catcher = logging.Handler()
    catcher.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger(name).addHandler(catcher)
    try:
        yield messages
    finally:
        logging.getLogger(name).removeHandler(catcher)


async def test_redis_unreachable_at_start_is_said_reported_and_recovered_from(
        make_rapport, backend):
    if backend.name != "sqlite":
        pytest.skip("Redis is the same on either database")
    port = _free_port()  # nothing listens there yet
    rapport = await make_rapport(redis_url=f"redis://127.0.0.1:{port}/0")
    async with logged("rapport.live") as messages, app_client(rapport) as client:
        assert any("cannot reach Redis at redis://127.0.0.1" in m for m in messages), messages
        status, body = await _health(client)
        assert status == 503 and body["status"] == "fail"
        assert body["checks"]["redis"]["ok"] is False and body["checks"]["live"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
        # A change published meanwhile is dropped, never an error for the write.
        rapport.live[0].publish({"event": "core.interaction.created"},
                                Channels(rapport).interactions)

        with redis_server(port) as server:
            async def healthy() -> bool:
                return (await _health(client))[0] == 200

            await _until(healthy, "/healthz ok once Redis is there")
            plugin, channel = rapport.live[0], Channels(rapport).interactions
            async with plugin.start_subscription([channel]) as subscriber:
                plugin.publish({"event": "core.interaction.created", "interaction_id": 7},
                               channel)
                await _next_message(subscriber, b'"interaction_id":7')
            server.terminate()
            server.wait(timeout=10)

            async def unhealthy() -> bool:
                status, body = await _health(client)
                return status == 503 and body["checks"]["live"]["ok"] is False

            await _until(unhealthy, "/healthz failing, live channel down, once Redis is gone")
        assert any("lost Redis at redis://127.0.0.1" in m for m in messages), messages
    # Leaving app_client ran the shutdown with Redis gone: it returned.


async def test_a_server_cut_off_from_redis_stops_promptly_on_sigterm_after_a_write(tmp_path):
    import httpx

    from tests.core.live.test_two_workers import _env, _prepare, _signed_in_client

    env = _env(tmp_path, f"sqlite:///{tmp_path / 'server.sqlite3'}",
               f"redis://127.0.0.1:{_free_port()}/0")
    customer = await _prepare(env)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("rapport")), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        async def answers() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(base_url=base) as probe:
                    return (await probe.get("/healthz")).status_code == 503
            return False

        await _until(answers, "the server answering (503: Redis is unreachable)")
        client = await _signed_in_client(base)
        try:
            response = await client.post(
                "/api/v1/interactions", json={"customer_id": customer, "channel": "call"},
                headers={"x-csrftoken": client.cookies["csrftoken"]})
            assert response.status_code == 201, response.text
        finally:
            await client.aclose()
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not stop within a minute of SIGTERM")
        log = server.stderr.read().decode()
        assert "cannot reach Redis at redis://127.0.0.1" in log, log
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
