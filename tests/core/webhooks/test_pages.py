"""The webhook pages: create with the events offered (secret shown once), errors next to the
field, edit, the list with status and last delivery, log pages."""

from __future__ import annotations

from core import jobs
from core.webhooks_tables import WebhookSubscription
from tests.conftest import csrf_headers
from tests.core.webhooks.helpers import EVENT


async def test_an_administrator_creates_a_webhook_and_sees_its_secret_once(hooks_client,
                                                                         receiver):
    form = await hooks_client.get("/admin/webhooks/new")
    # Offered in staff words, grouped by area: a label made from the event's name when its
    # plugin gives none, never the plugin author's description.
    assert "<legend>Testing</legend>" in form.text and "Widget created" in form.text
    assert "<legend>Customers</legend>" in form.text and "Customer deleted" in form.text
    assert "A widget was created" not in form.text
    assert "Widget noted" not in form.text  # not durable: not offered
    response = await hooks_client.post("/admin/webhooks/new", data={
        "name": "Warehouse", "url": receiver.url, "events": [EVENT]},
        headers=await csrf_headers(hooks_client))
    assert response.status_code == 200
    sub = await WebhookSubscription.select().first().run()
    assert sub["secret"] in response.text and "shown only now" in response.text
    page = await hooks_client.get(f"/admin/webhooks/{sub['id']}")
    assert sub["secret"] not in page.text
    assert "Nothing sent yet" in page.text

    listing = await hooks_client.get("/admin/webhooks")
    assert "Warehouse" in listing.text and "Nothing sent yet" in listing.text
    await hooks_client.rapport.publish(EVENT, {"widget_id": 1})
    await jobs.run_pending(hooks_client.rapport)
    listing = await hooks_client.get("/admin/webhooks")
    assert "Delivered (200)" in listing.text


async def test_a_form_error_is_shown_next_to_its_field_and_keeps_the_input(hooks_client):
    response = await hooks_client.post("/admin/webhooks/new", data={
        "name": "Metadata", "url": "http://169.254.169.254/", "events": [EVENT]},
        headers=await csrf_headers(hooks_client))
    assert response.status_code == 422
    assert 'id="url-error"' in response.text and "link-local" in response.text
    assert 'value="Metadata"' in response.text
    response = await hooks_client.post("/admin/webhooks/new", data={
        "name": "Nothing chosen", "url": "http://127.0.0.1:9/"},
        headers=await csrf_headers(hooks_client))
    assert response.status_code == 422 and "choose at least one event" in response.text
    assert not await WebhookSubscription.exists().run()


async def test_editing_changes_the_events_and_the_address(hooks_client, receiver):
    await hooks_client.post("/admin/webhooks/new", data={
        "name": "Warehouse", "url": receiver.url, "events": [EVENT]},
        headers=await csrf_headers(hooks_client))
    sub = await WebhookSubscription.select().first().run()
    response = await hooks_client.post(f"/admin/webhooks/{sub['id']}/edit", data={
        "name": "Stock system", "url": receiver.url + "/v2",
        "events": [EVENT, "core.customer.deleted"]},
        headers=await csrf_headers(hooks_client), follow_redirects=True)
    assert "Saved." in response.text and "Stock system" in response.text
    assert "Customer deleted" in response.text and "Widget created" in response.text
    changed = await WebhookSubscription.select().first().run()
    assert changed["url"].endswith("/hooks/v2")


async def test_the_delivery_log_pages_from_newest_to_oldest(hooks_client, receiver,
                                                            monkeypatch):
    from core import webhooks_web

    monkeypatch.setattr(webhooks_web, "LOG_PAGE_SIZE", 2)
    await hooks_client.post("/admin/webhooks/new", data={
        "name": "Warehouse", "url": receiver.url, "events": [EVENT]},
        headers=await csrf_headers(hooks_client))
    sub = await WebhookSubscription.select().first().run()
    for _ in range(3):
        await hooks_client.post(f"/admin/webhooks/{sub['id']}/ping",
                                headers=await csrf_headers(hooks_client))
    page = await hooks_client.get(f"/admin/webhooks/{sub['id']}")
    assert page.text.count("Test message") == 2 and "Older" in page.text
    older = page.text.split(f'href="/admin/webhooks/{sub["id"]}?before=')[1].split('"')[0]
    second = await hooks_client.get(f"/admin/webhooks/{sub['id']}?before={older}")
    assert second.text.count("Test message") == 1 and "Newest" in second.text
