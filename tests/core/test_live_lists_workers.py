"""Live contact lists across worker processes: `rapport serve --workers 2` on PostgreSQL
(LISTEN/NOTIFY). A contact created through one worker reaches open lists on both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.core.live.test_two_workers import (
    MAX_STREAMS,
    WAIT,
    _env,
    _free_port,
    _prepare,
    _signed_in_client,
    database,
)


async def _listen(base: str, cookies, ready: asyncio.Future, seen: list) -> None:
    """Hold one /live/contacts stream; report its worker through ``ready``, then collect the
    ids of the first change event (a bounded read: the stream itself never ends)."""
    import httpx

    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=None) as client, \
            client.stream("GET", "/live/contacts",
                          headers={"accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if not line:
                event = None
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "ready":
                ready.set_result(json.loads(line[6:])["worker"])
            elif line.startswith("data: ") and event == "change":
                seen.extend(json.loads(line[6:])["ids"])
                return


async def test_new_contact_reaches_open_lists_on_both_workers(tmp_path):
    import httpx

    async with database("postgres", tmp_path) as (database_url, redis_url):
        env = _env(tmp_path, database_url, redis_url)
        await _prepare(env)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("rapport")), "serve", "--workers", "2",
             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        listeners: list[asyncio.Task] = []
        try:
            for _ in range(200):  # until the server answers (bounded)
                with contextlib.suppress(httpx.HTTPError):
                    async with httpx.AsyncClient(base_url=base) as probe:
                        if (await probe.get("/healthz")).status_code == 200:
                            break
                await asyncio.sleep(0.1)
            poster = await _signed_in_client(base)
            seen: list[list[int]] = []
            workers: set[str] = set()
            attempts = 0
            while len(workers) < 2 and attempts < MAX_STREAMS:
                attempts += 1
                ready = asyncio.get_running_loop().create_future()
                collected: list[int] = []
                task = asyncio.create_task(_listen(base, poster.cookies, ready, collected))
                worker = await asyncio.wait_for(ready, WAIT)
                if worker in workers:
                    task.cancel()
                    await asyncio.sleep(0.5)
                    continue
                workers.add(worker)
                listeners.append(task)
                seen.append(collected)
            assert len(workers) == 2, "every stream landed on the same worker"
            async with httpx.AsyncClient(base_url=base, cookies=poster.cookies) as fresh:
                response = await fresh.post(
                    "/api/v1/contacts", json={"first_name": "Grace", "last_name": "Hopper"},
                    headers={"x-csrftoken": poster.cookies["csrftoken"]})
                assert response.status_code == 201, response.text
                created = response.json()["id"]
            _, waiting = await asyncio.wait(listeners, timeout=WAIT)
            assert not waiting, f"a list never heard of contact {created}: it got {seen}"
            for task in listeners:
                task.result()
            assert seen == [[created], [created]]
            await poster.aclose()
        finally:
            for task in listeners:
                task.cancel()
            os.killpg(server.pid, 15)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()
