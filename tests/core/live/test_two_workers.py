"""Live updates across worker processes: `rapport serve --workers 2` against PostgreSQL
(LISTEN/NOTIFY) or Redis. An interaction posted through one connection reaches SSE clients
whichever worker holds them.

Needs RAPPORT_TEST_POSTGRES_URL (PostgreSQL) or RAPPORT_TEST_REDIS_URL (Redis); under CI=true
a missing service fails, elsewhere the test is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_PASSWORD, IN_CI, POSTGRES_URL

REDIS_URL = os.environ.get("RAPPORT_TEST_REDIS_URL")
MAX_STREAMS = 40  # attempts at a stream on the second worker
WAIT = 15  # seconds: a bound against hanging, not a timing claim


def _need(url: str | None, name: str) -> str:
    if url:
        return url
    message = f"{name} is not set: cannot test live updates across two workers"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def database(kind: str, tmp_path: Path):
    """A scratch database for the server: PostgreSQL, or a SQLite file beside Redis."""
    if kind == "postgres":
        from tests.conftest import PostgresBackend, settings_for_test

        backend = PostgresBackend(_need(POSTGRES_URL, "RAPPORT_TEST_POSTGRES_URL"))

        async def migrate(url: str) -> None:
            from core.app import Rapport

            await Rapport(settings_for_test(tmp_path, url), plugins=[]).migrate()

        try:  # a copy of the run's migrated core template, dropped after the run
            url = await backend.fresh_url((), migrate)
        except OSError as exc:
            if IN_CI:
                pytest.fail(f"PostgreSQL unreachable: {exc}", pytrace=False)
            pytest.skip(f"PostgreSQL unreachable: {exc}")
        try:
            yield url, None
        finally:
            backend.close()
    else:
        redis_url = _need(REDIS_URL, "RAPPORT_TEST_REDIS_URL")
        yield f"sqlite:///{tmp_path / 'live.sqlite3'}", redis_url


def _env(tmp_path: Path, database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(RAPPORT_DATABASE_URL=database_url, RAPPORT_DATA_DIR=str(tmp_path / "data"),
               RAPPORT_PLUGINS_TOML=str(tmp_path / "plugins.toml"),
               RAPPORT_INSECURE_COOKIES="1")
    if redis_url:
        env["RAPPORT_REDIS_URL"] = redis_url
    return env


async def _prepare(env: dict[str, str]) -> int:
    """Migrate, and create a staff user and a customer; return the customer's id."""
    from core.app import Rapport
    from core.settings import Settings
    from tests.conftest import connected, make_user
    from tests.core.interactions.conftest import add_customer

    instance = Rapport(Settings.from_env(env), plugins=[])
    await instance.migrate()
    async with connected(instance):
        await make_user("live@example.test")
        return await add_customer("Live Customer")


async def _signed_in_client(base: str):
    import httpx

    client = httpx.AsyncClient(base_url=base, timeout=WAIT)
    await client.get("/login")
    response = await client.post("/login", data={"email": "live@example.test",
                                                 "password": DEMO_PASSWORD, "next": "/"},
                                 headers={"x-csrftoken": client.cookies["csrftoken"]})
    assert response.status_code in (200, 303), response.text
    return client


async def listen(base: str, cookies, path: str, ready: asyncio.Future, seen: list, want: int,
                 read) -> None:
    """Hold one SSE stream on ``path``; report its worker's tag through ``ready``, then
    collect ``read(data)`` of change events until ``want`` items arrived."""
    import httpx

    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=None) as client, \
            client.stream("GET", path, headers={"accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if not line:
                event = None  # a blank line ends an event
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "ready":
                ready.set_result(json.loads(line[6:])["worker"])
            elif line.startswith("data: ") and event == "change":
                seen.extend(read(json.loads(line[6:])))
                if len(seen) >= want:
                    return


@contextlib.asynccontextmanager
async def two_workers(env: dict[str, str]):
    """`rapport serve --workers 2` on a free port, once it answers; yields its base URL."""
    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("rapport")), "serve", "--workers", "2",
         "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(600):  # until it answers (bounded: a minute on a busy machine)
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(base_url=base) as probe:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
            await asyncio.sleep(0.1)
        yield base
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


@contextlib.asynccontextmanager
async def streams_on_both_workers(base: str, cookies, path: str, want: int, read):
    """Open streams on fresh connections until each worker holds one (the second worker may
    still be starting: bounded by MAX_STREAMS attempts); yields (listener tasks, what each
    collects), and cancels the listeners on the way out."""
    listeners: list[asyncio.Task] = []
    seen: list[list] = []
    workers: set[str] = set()
    try:
        for _ in range(MAX_STREAMS):
            if len(workers) == 2:
                break
            ready = asyncio.get_running_loop().create_future()
            collected: list = []
            task = asyncio.create_task(listen(base, cookies, path, ready, collected, want,
                                              read))
            worker = await asyncio.wait_for(ready, WAIT)
            if worker in workers:
                task.cancel()
                await asyncio.sleep(0.5)
                continue
            workers.add(worker)
            listeners.append(task)
            seen.append(collected)
        assert len(workers) == 2, "every stream landed on the same worker"
        yield listeners, seen
    finally:
        for task in listeners:
            task.cancel()


async def heard_by_all(listeners: list[asyncio.Task], seen: list[list], what) -> None:
    _, waiting = await asyncio.wait(listeners, timeout=WAIT)
    assert not waiting, f"a stream never heard of {what}: it got {seen}"
    for task in listeners:
        task.result()  # re-raise anything a listener hit


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_interaction_reaches_sse_clients_on_every_worker(kind, tmp_path):
    import httpx

    async with database(kind, tmp_path) as (database_url, redis_url):
        env = _env(tmp_path, database_url, redis_url)
        customer = await _prepare(env)
        async with two_workers(env) as base:
            poster = await _signed_in_client(base)
            async with streams_on_both_workers(
                    base, poster.cookies, "/live/interactions", 2,
                    lambda data: [data["interaction_id"]]) as (listeners, seen):
                posted = []
                for _ in range(2):  # each on a fresh connection, so either worker may take it
                    async with httpx.AsyncClient(base_url=base, cookies=poster.cookies) as fresh:
                        response = await fresh.post(
                            "/api/v1/interactions",
                            json={"customer_id": customer, "channel": "call"},
                            headers={"x-csrftoken": poster.cookies["csrftoken"]})
                        assert response.status_code == 201, response.text
                        posted.append(response.json()["id"])
                await heard_by_all(listeners, seen, posted)
                assert all(sorted(s) == sorted(posted) for s in seen), seen
            await poster.aclose()
