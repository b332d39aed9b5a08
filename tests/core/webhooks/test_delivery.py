"""Outbound webhooks end to end against a real receiver on 127.0.0.1: signed messages that
verify with the documented recipe, retries, disabling with a notice, the log, send again."""

from __future__ import annotations

import json

from core import jobs, webhooks
from core.jobs_tables import EventDelivery
from core.notifications.tables import Notification
from core.webhooks_tables import WebhookDelivery, WebhookSubscription
from tests.conftest import csrf_headers
from tests.core.webhooks.helpers import EVENT, QUICK, Receiver, verify


async def subscribe(client, url: str, events=(EVENT,)) -> dict:
    response = await client.post("/api/v1/webhooks", json={
        "name": "Warehouse", "url": url, "events": list(events)},
        headers=await csrf_headers(client))
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_event_arrives_signed_and_verifies_with_the_documented_recipe(hooks_client,
                                                                            receiver):
    rapport = hooks_client.rapport
    sub = await subscribe(hooks_client, receiver.url)
    event = await rapport.publish(EVENT, {"widget_id": 7, "colour": "blue"})
    await rapport.publish(QUICK, {"widget_id": 7})  # not durable: never sent
    await jobs.run_pending(rapport)

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert verify(sub["secret"], headers, body)
    assert not verify(webhooks.new_secret(), headers, body)
    assert not verify(sub["secret"], headers, body.replace(b"blue", b"red"))
    message = json.loads(body)
    assert message["id"] == event.id and message["type"] == EVENT
    assert message["data"] == {"widget_id": 7, "colour": "blue"}
    assert message["timestamp"].endswith("Z")
    assert headers["webhook-id"] == f"evt_{event.id}"


async def test_only_events_an_enabled_webhook_chose_are_handed_to_webhooks(hooks_client,
                                                                          receiver):
    """An event no switched-on webhook wants costs no delivery row for core.webhooks."""
    rapport = hooks_client.rapport

    async def handed(event) -> int:
        return await EventDelivery.count().where(
            (EventDelivery.event_id == event.id)
            & (EventDelivery.subscriber == "core.webhooks")).run()

    before = await rapport.publish(EVENT, {"widget_id": 1})
    sub = await subscribe(hooks_client, receiver.url)
    chosen = await rapport.publish(EVENT, {"widget_id": 2})
    other = await rapport.publish("core.customer.deleted", {"customer_id": 999})
    await jobs.run_pending(rapport)
    assert [json.loads(body)["id"] for _, body in receiver.requests] == [chosen.id]
    await webhooks.disable(rapport, await webhooks.get(sub["id"]), "Testing.", notify=False)
    off = await rapport.publish(EVENT, {"widget_id": 3})
    await webhooks.enable(sub["id"])
    async with EventDelivery._meta.db.transaction():  # decided in the publishing transaction
        again = await rapport.publish(EVENT, {"widget_id": 4})
    assert [await handed(e) for e in (before, chosen, other, off, again)] == [0, 1, 0, 0, 1]


async def test_a_redelivered_event_is_sent_once(hooks_client, receiver):
    rapport = hooks_client.rapport
    await subscribe(hooks_client, receiver.url)
    event = await rapport.publish(EVENT, {"widget_id": 1})
    await webhooks.on_event(rapport, event)  # the outbox hands the same event over again
    await jobs.run_pending(rapport)
    await webhooks.on_event(rapport, event)
    await jobs.run_pending(rapport)
    assert len(receiver.requests) == 1


async def test_a_receiver_answering_500_gets_the_message_again_until_it_accepts(hooks_client):
    rapport = hooks_client.rapport
    with Receiver(codes=[500, 503, 200]) as receiver:
        sub = await subscribe(hooks_client, receiver.url)
        await rapport.publish(EVENT, {"widget_id": 2})
        await jobs.run_pending(rapport)
    assert len(receiver.requests) == 3
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    assert all(verify(sub["secret"], h, b) for h, b in receiver.requests)
    log = await WebhookDelivery.select().where(
        WebhookDelivery.subscription == sub["id"]).run()
    assert [(d["status"], d["attempts"], d["response_code"]) for d in log] == [
        ("succeeded", 3, 200)]
    row = await webhooks.get(sub["id"])
    assert row["enabled"] and row["consecutive_failures"] == 0


async def test_a_receiver_failing_every_attempt_switches_the_webhook_off_and_tells_its_owner(
        hooks_client):
    rapport = hooks_client.rapport
    with Receiver(codes=[500]) as receiver:
        sub = await subscribe(hooks_client, receiver.url)
        await rapport.publish(EVENT, {"widget_id": 3})
        await jobs.run_pending(rapport)
        assert len(receiver.requests) == webhooks.MAX_ATTEMPTS
        row = await webhooks.get(sub["id"])
        assert not row["enabled"] and "attempts to deliver an event failed" in row["disabled_reason"]
        notices = await Notification.select().where(
            Notification.user == hooks_client.user_id).run()
        assert [n["title"] for n in notices] == ["Webhook “Warehouse” was switched off"]
        assert notices[0]["url"] == f"/admin/webhooks/{sub['id']}"

        # Switched off: later events are not sent.
        await rapport.publish(EVENT, {"widget_id": 4})
        await jobs.run_pending(rapport)
        assert len(receiver.requests) == webhooks.MAX_ATTEMPTS

        page = await hooks_client.get(f"/admin/webhooks/{sub['id']}")
        assert "Switched off." in page.text and "Switch on again" in page.text
        receiver.codes = [200]
        response = await hooks_client.post(f"/admin/webhooks/{sub['id']}/enable",
                                           headers=await csrf_headers(hooks_client),
                                           follow_redirects=True)
        assert "The webhook is on again" in response.text
        await rapport.publish(EVENT, {"widget_id": 5})
        await jobs.run_pending(rapport)
        assert json.loads(receiver.requests[-1][1])["data"] == {"widget_id": 5}


async def test_the_delivery_log_shows_answers_and_send_again_repeats_the_same_message(
        hooks_client, receiver):
    rapport = hooks_client.rapport
    sub = await subscribe(hooks_client, receiver.url)
    await rapport.publish(EVENT, {"widget_id": 6})
    await jobs.run_pending(rapport)
    page = await hooks_client.get(f"/admin/webhooks/{sub['id']}")
    assert "Delivered" in page.text and "200" in page.text and "Send again" in page.text
    delivery = await WebhookDelivery.select().where(
        WebhookDelivery.subscription == sub["id"]).first().run()

    response = await hooks_client.post(
        f"/admin/webhooks/{sub['id']}/deliveries/{delivery['id']}/send-again",
        headers=await csrf_headers(hooks_client), follow_redirects=True)
    assert "will be sent again shortly" in response.text
    await jobs.run_pending(rapport)
    assert len(receiver.requests) == 2
    (first_headers, first_body), (again_headers, again_body) = receiver.requests
    assert again_headers["webhook-id"] == first_headers["webhook-id"]
    assert again_body == first_body

    # The API reads the same log, newest first, a page at a time.
    for n in range(3):
        await rapport.publish(EVENT, {"widget_id": 100 + n})
    await jobs.run_pending(rapport)
    first = await hooks_client.get(f"/api/v1/webhooks/{sub['id']}/deliveries?limit=2")
    second = await hooks_client.get(
        f"/api/v1/webhooks/{sub['id']}/deliveries?limit=2&before={first.json()['next']}")
    ids = [d["id"] for d in first.json()["data"] + second.json()["data"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)
    assert second.json()["next"] is None


async def test_a_test_message_reaches_the_receiver_and_is_logged(hooks_client, receiver):
    sub = await subscribe(hooks_client, receiver.url)
    response = await hooks_client.post(f"/admin/webhooks/{sub['id']}/ping",
                                       headers=await csrf_headers(hooks_client),
                                       follow_redirects=True)
    assert "Test message delivered." in response.text
    headers, body = receiver.requests[0]
    assert verify(sub["secret"], headers, body)
    assert json.loads(body)["type"] == "webhook.ping"


async def test_after_a_new_secret_both_secrets_verify_for_a_day(hooks_client, receiver):
    sub = await subscribe(hooks_client, receiver.url)
    rotated = await hooks_client.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret",
                                      headers=await csrf_headers(hooks_client))
    new_secret = rotated.json()["secret"]
    assert new_secret != sub["secret"]
    await hooks_client.post(f"/api/v1/webhooks/{sub['id']}/ping",
                            headers=await csrf_headers(hooks_client))
    headers, body = receiver.requests[0]
    assert verify(new_secret, headers, body) and verify(sub["secret"], headers, body)
    assert "secret" not in (await hooks_client.get(f"/api/v1/webhooks/{sub['id']}")).json()


async def test_a_deleted_webhook_loses_its_log_and_sends_nothing(hooks_client, receiver):
    rapport = hooks_client.rapport
    sub = await subscribe(hooks_client, receiver.url)
    await rapport.publish(EVENT, {"widget_id": 8})
    response = await hooks_client.delete(f"/api/v1/webhooks/{sub['id']}",
                                         headers=await csrf_headers(hooks_client))
    assert response.status_code == 204
    await jobs.run_pending(rapport)
    assert receiver.requests == []
    assert not await WebhookSubscription.exists().where(
        WebhookSubscription.id == sub["id"]).run()


async def test_the_log_keeps_a_month_and_a_bounded_number_per_webhook(hooks_client, receiver,
                                                                      monkeypatch):
    from datetime import UTC, datetime, timedelta

    monkeypatch.setattr(webhooks, "LOG_KEEP_PER_SUBSCRIPTION", 3)
    sub = await subscribe(hooks_client, receiver.url)
    old = datetime.now(UTC) - timedelta(days=40)
    rows = [WebhookDelivery(subscription=sub["id"], event_id=n, event_name=EVENT, body="{}",
                            status=status, created_at=old if n < 3 else datetime.now(UTC))
            for n, status in enumerate(["succeeded", "failed", "retrying", "succeeded",
                                        "succeeded", "succeeded", "succeeded", "succeeded"])]
    await WebhookDelivery.insert(*rows).run()
    await webhooks.purge(hooks_client.rapport)
    left = await WebhookDelivery.select(WebhookDelivery.event_id).order_by(
        WebhookDelivery.event_id).run()
    # Old settled ones go; of the rest the newest three stay, and one still retrying is kept.
    assert [r["event_id"] for r in left] == [2, 5, 6, 7]
