"""SQLite with writers in other processes (a second server worker, the job worker, the CLI):
a write waits its turn instead of answering 500 "database is locked", and a write waiting for
the lock never holds up the process's reads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from core.instance import InstanceSetting
from tests.conftest import csrf_headers
from tests.core.interactions.conftest import add_customer

HOLD_SECONDS = 6  # longer than the 5 s a writer used to wait before failing


def hold_write_lock(path: str, held: threading.Event, release: threading.Event) -> None:
    """Another process's long write: the lock is taken, kept for HOLD_SECONDS, released."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(HOLD_SECONDS)
        connection.execute("COMMIT")
    finally:
        release.set()
        connection.close()


async def test_writes_wait_for_another_processs_long_write_and_reads_go_on(admin_client):
    rapport = admin_client.rapport
    if not rapport.settings.is_sqlite:
        pytest.skip("SQLite's single writer")
    customer = await add_customer()
    headers = await csrf_headers(admin_client)
    path = rapport.settings.database_url[len("sqlite:///"):]
    held, released = threading.Event(), threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(hold_write_lock, path, held, released))
    await asyncio.to_thread(held.wait, 10)

    # A write outside any transaction waits for the lock...
    waiting_write = asyncio.create_task(
        InstanceSetting.insert(InstanceSetting(key="test.waiting", value="1")).run())
    await asyncio.sleep(0.2)
    # ...while this process's reads go on meanwhile.
    assert await InstanceSetting.count().run() >= 0
    assert not released.is_set(), "the read waited for the other process's write"
    # A create through the API waits its turn and succeeds.
    response = await admin_client.post(
        "/api/v1/interactions", json={"customer_id": customer, "channel": "call"},
        headers=headers)
    assert response.status_code == 201, response.text
    assert released.is_set()
    await waiting_write
    await holder
    assert await InstanceSetting.exists().where(InstanceSetting.key == "test.waiting").run()
