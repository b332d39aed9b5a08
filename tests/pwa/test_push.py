"""Web Push: devices, preferences, the durable outbox and delivery to a push service."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from core.app import Rapport
from core.plugin import EventType, PushMessage, hookimpl
from pwa import push, reminders, worker
from pwa.tables import PushOutbox, PushSubscription, Reminder
from tests.conftest import app_client, connected, csrf_headers, make_user, sign_in
from tests.pwa.pushservice import FakeBrowser, PushService, verify_vapid

PUSH_SETTINGS = {"extra": {"push_worker": "off", "push_allow_http": "1"}}


@pytest.fixture
async def push_client(make_rapport):
    instance = await make_rapport(**PUSH_SETTINGS)
    async with app_client(instance) as client:
        client.user_id = await make_user("rep@example.test", roles=["field_representative"])
        await sign_in(client, "rep@example.test")
        yield client


@pytest.fixture
def service():
    with PushService() as running:
        yield running


async def subscribe(client, browser: FakeBrowser, endpoint: str):
    return await client.post("/api/v1/push/subscriptions", json=browser.subscription(endpoint),
                             headers=await csrf_headers(client))


async def test_vapid_key_is_made_once_and_served_to_the_app(push_client):
    first = (await push_client.get("/api/v1/push/key")).json()["public_key"]
    again = (await push_client.get("/api/v1/push/key")).json()["public_key"]
    assert first == again and len(first) == 87  # 65-byte uncompressed P-256 point, base64url
    assert (push_client.rapport.settings.data_dir / "secrets" / "vapid_private_key").exists()


async def test_user_subscribes_a_device_sees_it_and_removes_it(push_client, service):
    response = await subscribe(push_client, FakeBrowser(), service.endpoint("a"))
    assert response.status_code == 201
    device_id = response.json()["id"]
    listed = (await push_client.get("/api/v1/push/subscriptions")).json()
    assert [d["id"] for d in listed] == [device_id]
    page = await push_client.get("/field/devices")
    assert "My devices" in page.text and "Remove" in page.text
    removed = await push_client.delete(f"/api/v1/push/subscriptions/{device_id}",
                                       headers=await csrf_headers(push_client))
    assert removed.status_code == 204
    assert (await push_client.get("/api/v1/push/subscriptions")).json() == []


async def test_another_users_device_cannot_be_removed(push_client, service):
    other = await make_user("other@example.test", roles=["field_representative"])
    row = await push.subscribe(push_client.rapport, other,
                               FakeBrowser().subscription(service.endpoint("o")))
    response = await push_client.delete(f"/api/v1/push/subscriptions/{row['id']}",
                                        headers=await csrf_headers(push_client))
    assert response.status_code == 404
    assert await PushSubscription.count().run() == 1


async def test_subscription_must_point_at_a_push_service_over_https(make_rapport):
    instance = await make_rapport()  # http endpoints not allowed: production defaults
    async with app_client(instance) as client:
        await make_user("rep@example.test", roles=["field_representative"])
        await sign_in(client, "rep@example.test")
        response = await subscribe(client, FakeBrowser(), "http://10.0.0.1/internal")
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["invalid_params"][0]["name"] == "endpoint"
        bad_key = FakeBrowser().subscription("https://push.example/x")
        bad_key["keys"]["p256dh"] = "AAAA"
        response = await client.post("/api/v1/push/subscriptions", json=bad_key,
                                     headers=await csrf_headers(client))
        assert response.json()["invalid_params"][0]["name"] == "keys.p256dh"


async def test_subscribing_without_the_csrf_header_is_refused(push_client, service):
    response = await push_client.post("/api/v1/push/subscriptions",
                                      json=FakeBrowser().subscription(service.endpoint("a")))
    assert response.status_code == 403


async def test_notification_arrives_encrypted_signed_and_with_delivery_headers(
        push_client, service):
    browser = FakeBrowser()
    await subscribe(push_client, browser, service.endpoint("dev1"))
    rapport = push_client.rapport
    added = await push.enqueue(rapport, [PushMessage(
        user_id=push_client.user_id, topic="sales.lead.assigned", title="New lead: Acme",
        body="Acme was assigned to you", url="/customers/7", urgency="high", ttl_seconds=600)])
    assert added == 1
    assert await worker.tick(rapport) == 1
    [received] = service.received
    assert received.headers["content-type"] == "application/octet-stream"
    assert received.headers["content-encoding"] == "aes128gcm"
    assert received.headers["ttl"] == "600" and received.headers["urgency"] == "high"
    key = (await push_client.get("/api/v1/push/key")).json()["public_key"]
    claims = verify_vapid(received, key)
    assert claims["sub"].startswith("mailto:")
    payload = json.loads(browser.decrypt(received.body))
    assert payload["title"] == "New lead: Acme" and payload["url"] == "/customers/7"
    assert len(received.body) <= 4096
    # Delivered once: another round sends nothing.
    assert await worker.tick(rapport) == 0 and len(service.received) == 1


async def test_plugin_event_becomes_a_push_through_the_hook(push_client, service):
    rapport = push_client.rapport
    user_id = push_client.user_id

    class LeadPlugin:
        @hookimpl
        def register_events(self):
            return [EventType("leads.lead.assigned", "leads.lead.assigned (payload: owner)",
                              topic_label="A lead was assigned to you")]

        @hookimpl
        def push_notifications(self, event):
            if event.name == "leads.lead.assigned":
                return [PushMessage(user_id=event.payload["owner"], topic=event.name,
                                    title="Lead assigned", body="", url="/leads/1")]

    rapport.pm.register(LeadPlugin(), name="leads-test")
    rapport._event_types = None
    browser = FakeBrowser()
    await subscribe(push_client, browser, service.endpoint("dev"))
    await rapport.publish("leads.lead.assigned", {"owner": user_id})
    await worker.tick(rapport)
    assert json.loads(browser.decrypt(service.received[0].body))["url"] == "/leads/1"
    devices = (await push_client.get("/field/devices")).text
    assert "A lead was assigned to you" in devices
    # Staff read the topic's label, never the description written for plugin authors, and
    # events that never notify anyone (a customer was created) are not offered.
    assert "payload" not in devices and "customer was created" not in devices


async def test_switched_off_topic_sends_nothing(push_client, service):
    rapport = push_client.rapport
    await subscribe(push_client, FakeBrowser(), service.endpoint("dev"))
    response = await push_client.post(
        "/field/devices/topics", data={"_csrf_token": push_client.cookies["csrftoken"]},
        follow_redirects=False)  # no topic ticked: everything off
    assert response.status_code == 303
    added = await push.enqueue(rapport, [PushMessage(
        user_id=push_client.user_id, topic="core.follow_up.due", title="x", body="", url="/")])
    assert added == 0


async def test_gone_device_is_removed_when_the_push_service_says_410(push_client, service):
    await subscribe(push_client, FakeBrowser(), service.endpoint("gone"))
    service.status["/push/gone"] = 410
    await push.enqueue(push_client.rapport, [PushMessage(
        user_id=push_client.user_id, topic="t", title="x", body="", url="/")])
    await worker.tick(push_client.rapport)
    assert await PushSubscription.count().run() == 0
    assert await PushOutbox.count().run() == 0


async def test_failed_delivery_is_retried_later_with_backoff(push_client, service):
    await subscribe(push_client, FakeBrowser(), service.endpoint("flaky"))
    service.status["/push/flaky"] = 503
    rapport = push_client.rapport
    await push.enqueue(rapport, [PushMessage(
        user_id=push_client.user_id, topic="t", title="x", body="", url="/")])
    await worker.tick(rapport)
    row = await PushOutbox.select().first().run()
    assert row["status"] == "pending" and row["attempts"] == 1 and "503" in row["last_error"]
    assert row["next_attempt_at"] > datetime.now(UTC)
    assert await worker.tick(rapport) == 0  # not due yet: nothing sent again
    assert len(service.received) == 1
    service.status["/push/flaky"] = 201
    await PushOutbox.update({PushOutbox.next_attempt_at: datetime.now(UTC)}).where(
        PushOutbox.id == row["id"]).run()
    assert await worker.tick(rapport) == 1
    assert (await PushOutbox.select().first().run())["status"] == "sent"
    assert push.backoff(2) == 2 * push.backoff(1) and push.backoff(30) == push.BACKOFF_MAX


async def test_long_message_is_shortened_to_fit_the_4kb_record(push_client, service):
    browser = FakeBrowser()
    await subscribe(push_client, browser, service.endpoint("long"))
    await push.enqueue(push_client.rapport, [PushMessage(
        user_id=push_client.user_id, topic="t", title="Long", body="é" * 5000, url="/")])
    await worker.tick(push_client.rapport)
    body = service.received[0].body
    assert len(body) <= 4096
    assert json.loads(browser.decrypt(body))["body"].endswith("…")


async def test_two_workers_never_claim_the_same_notification(push_client, service):
    await subscribe(push_client, FakeBrowser(), service.endpoint("a"))
    await push.enqueue(push_client.rapport, [PushMessage(
        user_id=push_client.user_id, topic="t", title=str(i), body="", url="/")
        for i in range(6)])
    first, second = await asyncio.gather(push.claim_due(), push.claim_due())
    ids = [r["id"] for r in first] + [r["id"] for r in second]
    assert len(ids) == 6 and len(set(ids)) == 6


async def test_due_reminder_is_sent_after_a_restart_and_only_once(make_rapport, service):
    instance = await make_rapport(**PUSH_SETTINGS)
    browser = FakeBrowser()
    async with connected(instance):
        user_id = await make_user("rep@example.test", roles=["field_representative"])
        await push.subscribe(instance, user_id, browser.subscription(service.endpoint("r")))
        await reminders.schedule(user_id, "follow_up:1", datetime.now(UTC) + timedelta(hours=1),
                                 "Call Acme back", url="/field/#/customers/1")
        await reminders.schedule(user_id, "follow_up:2", datetime.now(UTC) - timedelta(minutes=1),
                                 "Visit Globex", url="/field/#/customers/2")
    # The server restarts: a new instance finds the due reminder in the database.
    restarted = Rapport(instance.settings, plugins=[])
    async with connected(restarted):
        assert await worker.tick(restarted) == 1
        assert await worker.tick(restarted) == 0
        rows = await Reminder.select(Reminder.source, Reminder.status).run()
    statuses = {r["source"]: r["status"] for r in rows}
    assert statuses == {"follow_up:1": "pending", "follow_up:2": "sent"}
    [received] = service.received
    assert json.loads(browser.decrypt(received.body))["title"] == "Visit Globex"


async def test_a_queued_message_is_sent_at_once_by_the_servers_job_worker(make_rapport, service):
    # The poll is an hour away: only the delivery job queued with the message can send it.
    instance = await make_rapport(extra={"push_allow_http": "1", "push_poll_seconds": "3600",
                                         "worker": "on"})
    async with app_client(instance) as client:
        user_id = await make_user("rep@example.test", roles=["field_representative"])
        browser = FakeBrowser()
        await push.subscribe(instance, user_id, browser.subscription(service.endpoint("w")))
        await push.enqueue(instance, [PushMessage(user_id=user_id, topic="t", title="Hello",
                                                  body="", url="/")])
        for _ in range(100):
            if service.received:
                break
            await asyncio.sleep(0.05)
        assert client is not None
    assert json.loads(browser.decrypt(service.received[0].body))["title"] == "Hello"


async def test_push_delivery_is_a_recurring_job_that_also_sends_due_reminders(make_rapport,
                                                                             service):
    from core import jobs
    from core.jobs_tables import JobRow

    instance = await make_rapport(**PUSH_SETTINGS)
    browser = FakeBrowser()
    async with connected(instance):
        user_id = await make_user("rep@example.test", roles=["field_representative"])
        await push.subscribe(instance, user_id, browser.subscription(service.endpoint("j")))
        await reminders.schedule(user_id, "follow_up:3", datetime.now(UTC) - timedelta(minutes=1),
                                 "Call Initech", url="/field/#/customers/3")
        await jobs.run_pending(instance)  # queues the next occurrence, due in seconds
        assert await JobRow.exists().where((JobRow.name == "pwa.push.deliver")
                                           & JobRow.schedule_slot.is_not_null()).run()
        await jobs.enqueue(instance, "pwa.push.deliver")
        await jobs.run_pending(instance)
    [received] = service.received
    assert json.loads(browser.decrypt(received.body))["title"] == "Call Initech"
