"""Live updates inside one process: an interaction recorded while a page is open reaches its
server-sent events stream, and only readers allowed to see it."""

from __future__ import annotations

import asyncio
import contextlib
import json

from core.interactions.service import record_interaction
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.interactions.conftest import add_customer

WAIT = 10  # seconds: a bound so a broken stream fails instead of hanging, not a timing claim


class OpenStream:
    """An SSE request driven straight through the ASGI app (httpx's ASGI transport buffers
    whole responses, so it cannot read an endless stream)."""

    def __init__(self, app, path: str, cookies: dict[str, str]) -> None:
        self.app, self.path = app, path
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.headers = [(b"host", b"testserver.local"), (b"accept", b"text/event-stream"),
                        (b"cookie", cookie.encode())]
        self.status: int | None = None
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.disconnect = asyncio.Event()
        self.buffer = ""

    async def _receive(self):
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.buffer += message.get("body", b"").decode().replace("\r\n", "\n")
            while "\n\n" in self.buffer:
                block, self.buffer = self.buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.splitlines()
                              if ": " in line and not line.startswith(":"))
                if "event" in fields:
                    await self.events.put((fields["event"], fields.get("data", "")))
            if not message.get("more_body", False):
                await self.events.put(("end", ""))

    async def __aenter__(self):
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": self.path,
                 "raw_path": self.path.encode(), "query_string": b"", "root_path": "",
                 "headers": self.headers, "client": ("127.0.0.1", 5000),
                 "server": ("testserver.local", 80), "extensions": {}}
        self.task = asyncio.create_task(self.app(scope, self._receive, self._send))
        return self

    async def next_event(self) -> tuple[str, str]:
        return await asyncio.wait_for(self.events.get(), WAIT)

    async def __aexit__(self, *exc) -> None:
        self.disconnect.set()
        try:
            await asyncio.wait_for(self.task, WAIT)
        except (TimeoutError, Exception):
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


async def test_interaction_recorded_appears_in_the_open_timeline_stream(admin_client):
    customer = await add_customer()
    app = admin_client.rapport.asgi
    async with OpenStream(app, f"/live/customers/{customer}", dict(admin_client.cookies)) as s:
        assert (await s.next_event())[0] == "ready"
        assert s.status == 200
        response = await admin_client.post(
            "/api/v1/interactions", json={"customer_id": customer, "channel": "call"},
            headers=await csrf_headers(admin_client))
        assert response.status_code == 201
        event, data = await s.next_event()
        assert event == "change"
        assert json.loads(data) == {"event": "core.interaction.created",
                                    "interaction_id": response.json()["id"],
                                    "customer_id": customer}


async def test_list_stream_only_carries_interactions_the_reader_may_see(client):
    rapport = client.rapport
    rep = await make_user("rep@example.test", roles=["field_representative"])
    mine = await add_customer("Mine", owner=rep)
    theirs = await add_customer("Theirs")
    await sign_in(client, "rep@example.test")
    async with OpenStream(rapport.asgi, "/live/interactions", dict(client.cookies)) as stream:
        assert (await stream.next_event())[0] == "ready"
        hidden, _ = await record_interaction(rapport, None, customer_id=theirs, channel="call")
        shown, _ = await record_interaction(rapport, None, customer_id=mine, channel="call")
        event, data = await stream.next_event()
        # The hidden one was published first; the reader only ever receives the visible one.
        assert event == "change" and json.loads(data)["interaction_id"] == shown["id"]
        assert hidden["id"] != shown["id"]


async def test_my_day_stream_hears_follow_ups_assigned_to_me(admin_client):
    from datetime import UTC, datetime

    customer = await add_customer()
    async with OpenStream(admin_client.rapport.asgi, "/live/my-day",
                          dict(admin_client.cookies)) as stream:
        assert (await stream.next_event())[0] == "ready"
        row, _ = await record_interaction(admin_client.rapport, None, customer_id=customer,
                                          channel="call", followup_due=datetime.now(UTC),
                                          followup_assignee=admin_client.user_id)
        event, data = await stream.next_event()
        assert event == "change" and json.loads(data)["interaction_id"] == row["id"]
