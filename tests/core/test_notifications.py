"""In-app notifications: every PushMessage lands in its user's inbox (push device or not,
topic switched off for push or not), the bell counts unread ones and updates live, the
/notifications page and the API list and mark them read, and old read ones are purged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.customers.service import create_customer
from core.identity.users import load_actor
from core.notifications import inbox
from core.notifications.tables import Notification
from core.plugin import PushMessage, hookimpl
from pwa import push
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.live.test_streams import OpenStream


class NotifyOwner:
    """A plugin turning every new customer into a notification for its owner."""

    @hookimpl
    def push_notifications(self, rapport, event):
        if event.name != "core.customer.created":
            return []
        return [PushMessage(user_id=event.payload["owner"], topic="core.customer.created",
                            title="New customer", body=f"Customer {event.payload['id']}",
                            url=f"/customers/{event.payload['id']}")]


async def _message(user_id: int, title: str = "Hello", url: str = "/contacts") -> None:
    await push.enqueue(None, [PushMessage(user_id=user_id, topic="test.topic", title=title,
                                          body="Body text", url=url)])


async def test_push_message_reaches_the_inbox_without_a_device_even_if_push_is_off(admin_client):
    rapport = admin_client.rapport
    rapport.pm.register(NotifyOwner(), name="test-notify-owner")
    # The admin switched every push topic off and has no device: the inbox still gets it.
    await push.set_preferences(rapport, admin_client.user_id, set())
    admin = await load_actor(rapport, admin_client.user_id)
    row = await create_customer(rapport, admin, {"kind": "account", "name": "Acme"})

    bell = await admin_client.get("/notifications/bell")
    assert bell.status_code == 200
    assert '<span class="badge" aria-hidden="true">1</span>' in bell.text
    page = await admin_client.get("/notifications")
    assert "New customer" in page.text and f"Customer {row['id']}" in page.text
    stored = await Notification.select().where(
        Notification.user == admin_client.user_id).first().run()
    # Following the link marks it read and goes to the customer.
    opened = await admin_client.get(f"/notifications/{stored['id']}/open",
                                    follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/customers/{row['id']}"
    assert "badge" not in (await admin_client.get("/notifications/bell")).text


async def test_shell_loads_the_bell_lazily(admin_client):
    page = await admin_client.get("/contacts")
    assert 'hx-get="/notifications/bell"' in page.text
    assert 'data-live="/live/notifications"' in page.text


async def test_empty_inbox_says_so(admin_client):
    page = await admin_client.get("/notifications")
    assert page.status_code == 200
    assert "No notifications yet" in page.text
    assert "Mark all read" not in page.text


async def test_mark_one_and_all_read_from_the_page(admin_client):
    for title in ("First", "Second", "Third"):
        await _message(admin_client.user_id, title)
    rows, _ = await inbox.page(admin_client.user_id)
    response = await admin_client.post(f"/notifications/{rows[0]['id']}/read",
                                       data={"back": "/notifications?unread=1"},
                                       headers=await csrf_headers(admin_client),
                                       follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/notifications?unread=1"
    unread = await admin_client.get("/notifications?unread=1")
    assert "Third" not in unread.text and "Second" in unread.text and "First" in unread.text
    await admin_client.post("/notifications/read-all", headers=await csrf_headers(admin_client))
    assert "No unread notifications" in (await admin_client.get("/notifications?unread=1")).text
    # Read ones are still listed.
    assert "Third" in (await admin_client.get("/notifications")).text


async def test_nobody_reads_or_marks_another_users_notifications(client):
    other = await make_user("other@example.test")
    await make_user("me@example.test")
    await _message(other, "Private to other")
    theirs = (await inbox.page(other))[0][0]["id"]
    await sign_in(client, "me@example.test")
    assert "Private to other" not in (await client.get("/notifications")).text
    headers = await csrf_headers(client)
    assert (await client.post(f"/notifications/{theirs}/read", headers=headers,
                              follow_redirects=False)).status_code == 404
    assert (await client.get(f"/notifications/{theirs}/open",
                             follow_redirects=False)).status_code == 404
    api = await client.post(f"/api/v1/notifications/{theirs}/read", headers=headers)
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")
    assert (await inbox.get(other, theirs))["read_at"] is None


async def test_api_pages_by_keyset_and_marks_read(admin_client):
    for i in range(5):
        await _message(admin_client.user_id, f"Note {i}")
    first = (await admin_client.get("/api/v1/notifications?limit=2")).json()
    assert [n["title"] for n in first["items"]] == ["Note 4", "Note 3"]
    assert first["unread"] == 5
    second = (await admin_client.get(first["next"])).json()
    assert [n["title"] for n in second["items"]] == ["Note 2", "Note 1"]
    headers = await csrf_headers(admin_client)
    marked = await admin_client.post(f"/api/v1/notifications/{first['items'][0]['id']}/read",
                                     headers=headers)
    assert marked.status_code == 200 and marked.json()["read"] is True
    unread = (await admin_client.get("/api/v1/notifications?unread=true&limit=200")).json()
    assert [n["title"] for n in unread["items"]] == ["Note 3", "Note 2", "Note 1", "Note 0"]
    assert (await admin_client.post("/api/v1/notifications/read", headers=headers)
            ).json() == {"marked": 4}
    bad = await admin_client.get("/api/v1/notifications?limit=0")
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "limit"


async def test_links_never_leave_the_site(admin_client):
    await _message(admin_client.user_id, "Phish", url="https://evil.example/login")
    await _message(admin_client.user_id, "Script", url="javascript:alert(1)")
    await _message(admin_client.user_id, "Protocol-relative", url="//evil.example")
    page = await admin_client.get("/notifications")
    assert "evil.example" not in page.text and "javascript:" not in page.text
    items = (await admin_client.get("/api/v1/notifications")).json()["items"]
    assert all(n["url"] is None for n in items)


async def test_bell_stream_hears_new_notifications(admin_client):
    rapport = admin_client.rapport
    async with OpenStream(rapport.asgi, "/live/notifications", dict(admin_client.cookies)) as s:
        assert (await s.next_event())[0] == "ready"
        await push.enqueue(rapport, [PushMessage(user_id=admin_client.user_id, topic="t",
                                                 title="Ping", body="", url="/")])
        event, data = await s.next_event()
        assert event == "change"
        assert json.loads(data) == {"event": "core.notification.changed"}


async def test_purge_removes_only_old_read_notifications(rapport):
    user = await make_user("purge@example.test")
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=91), now - timedelta(days=10)
    await Notification.insert(
        Notification(user=user, title="old read", created_at=old, read_at=old),
        Notification(user=user, title="old unread", created_at=old, read_at=None),
        Notification(user=user, title="recent read", created_at=recent, read_at=recent),
    ).run()
    assert await inbox.purge() == 1
    left = {r["title"] for r in await Notification.select(Notification.title).run()}
    assert left == {"old unread", "recent read"}


async def test_old_read_notifications_are_purged_by_an_hourly_job(rapport):
    from core import jobs
    from core.jobs_tables import JobRow

    user = await make_user("purge@example.test")
    old = datetime.now(UTC) - timedelta(days=91)
    await Notification.insert(Notification(user=user, title="old read", created_at=old,
                                           read_at=old)).run()
    await jobs.run_pending(rapport)
    assert await JobRow.exists().where(JobRow.name == "core.notifications.purge").run()
    await jobs.enqueue(rapport, "core.notifications.purge")
    await jobs.run_pending(rapport)
    assert await Notification.count().run() == 0


async def test_erasing_a_customer_removes_notifications_that_link_to_them(rapport):
    user = await make_user("erase@example.test")
    for url in ("/customers/7", "/field/#/customers/7", "/customers/7/edit", "/customers/70",
                "/customers/17", "/contacts"):
        await _message(user, f"About {url}", url=url)
    await rapport.acollect("privacy_erase", rapport=rapport, customer_id=7)
    left = sorted(r["url"] for r in await Notification.select(Notification.url).run())
    assert left == ["/contacts", "/customers/17", "/customers/70"]
