"""Webhooks never aim the server at its own network (SSRF), send only what the subscribing
user may see, stop when that user may no longer manage them, and refuse bad input naming the
field."""

from __future__ import annotations

import json

import pytest

from core import jobs, netcheck, webhooks
from core.identity.tables import FieldRule, Role, RolePermission, User, UserRole
from core.webhooks_tables import WebhookDelivery
from tests.conftest import app_client, csrf_headers, make_user, sign_in
from tests.core.webhooks.helpers import EVENT, Declares
from tests.core.webhooks.test_delivery import subscribe


@pytest.fixture
async def strict_client(make_rapport):
    """An administrator on an instance with the default: no private receivers."""
    instance = await make_rapport(extra={"jobs_backoff_seconds": "0"})
    instance.pm.register(Declares(), name="testing_declares")
    async with app_client(instance) as client:
        client.user_id = await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        yield client


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hooks",       # loopback
    "http://localhost:{port}/hooks",       # a host name resolving to loopback
    "http://10.1.2.3/hooks",               # private
    "http://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
    "http://[::1]:{port}/hooks",
    "http://[::ffff:127.0.0.1]:{port}/hooks",
    "http://0.0.0.0:{port}/hooks",
])
async def test_a_url_on_the_instances_own_network_is_refused_when_subscribing(
        strict_client, receiver, url):
    port = receiver.server.server_port
    response = await strict_client.post("/api/v1/webhooks", json={
        "name": "Sneaky", "url": url.format(port=port), "events": [EVENT]},
        headers=await csrf_headers(strict_client))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "url"
    assert "public internet" in response.json()["detail"]
    assert receiver.requests == []


@pytest.mark.parametrize("url,words", [
    ("ftp://example.com/hooks", "https://"),
    ("file:///etc/passwd", "https://"),
    ("https://user:pw@example.com/hooks", "user name or password"),
    ("not a url", "https://"),
])
async def test_only_http_urls_without_credentials_are_accepted(strict_client, url, words):
    response = await strict_client.post("/api/v1/webhooks", json={
        "name": "Odd", "url": url, "events": [EVENT]}, headers=await csrf_headers(strict_client))
    assert response.status_code == 422 and response.json()["field"] == "url"
    assert words in response.json()["detail"]


async def test_an_address_that_turns_private_after_saving_is_refused_at_send_time(
        hooks_client, receiver):
    rapport = hooks_client.rapport
    await subscribe(hooks_client, receiver.url)  # allowed while private receivers were allowed
    rapport.settings.extra.pop("webhooks_allow_private")  # as if DNS now pointed inward
    await rapport.publish(EVENT, {"widget_id": 1})
    await jobs.run_pending(rapport)
    assert receiver.requests == []
    delivery = await WebhookDelivery.select().first().run()
    assert "Refused" in delivery["error"] and delivery["response_code"] is None


async def test_a_host_name_is_checked_by_what_it_resolves_to():
    with pytest.raises(netcheck.UnsafeAddress):
        await netcheck.resolve_checked("http://localhost/hooks")
    assert await netcheck.resolve_checked("http://localhost/hooks", allow_private=True)
    assert netcheck.public_address("93.184.215.14")
    assert not netcheck.public_address("100.64.0.1")  # shared (CGNAT)
    assert not netcheck.public_address("fe80::1")
    # Allowing internal receivers never opens the cloud metadata address.
    with pytest.raises(netcheck.UnsafeAddress):
        await netcheck.resolve_checked("http://169.254.169.254/", allow_private=True)
    assert await netcheck.resolve_checked("http://10.0.0.5/", allow_private=True)


def test_the_request_goes_to_the_checked_address_with_the_original_host_name():
    target, host, server_name = webhooks._pinned("https://hooks.example.com:8443/in?a=1",
                                                 "203.0.113.9")
    assert target == "https://203.0.113.9:8443/in?a=1"
    assert host == "hooks.example.com:8443" and server_name == "hooks.example.com"


async def test_a_kept_connection_serves_only_its_checked_address_and_host_name():
    """Kept HTTP clients (their open TLS connections) are per address, port and host name:
    a connection whose certificate was checked for one host never carries another's message."""
    one = webhooks._client("https://203.0.113.9:8443/in", "hooks.example.com")
    assert webhooks._client("https://203.0.113.9:8443/other", "hooks.example.com") is one
    assert webhooks._client("https://203.0.113.9:8443/in", "evil.example.net") is not one
    assert webhooks._client("https://203.0.113.10:8443/in", "hooks.example.com") is not one
    await webhooks.shutdown(None)
    assert webhooks._client("https://203.0.113.9:8443/in", "hooks.example.com") is not one
    await webhooks.shutdown(None)


async def _limited_admin(hidden_field: str | None = None) -> int:
    """A user whose role may manage webhooks and, optionally, not see one widget field."""
    role = Role(key="integrator", name="Integrator", description="", builtin=False)
    await role.save().run()
    await RolePermission.insert(RolePermission(role=role.id, permission="core.webhook.manage",
                                               scope="all")).run()
    if hidden_field:
        await FieldRule.insert(FieldRule(role=role.id, record_type="testing_widget",
                                         field=hidden_field)).run()
    return await make_user("integrator@example.test", roles=("integrator",))


async def test_a_payload_leaves_out_fields_the_subscribing_users_role_may_not_see(
        hooks_client, receiver):
    rapport = hooks_client.rapport
    await _limited_admin(hidden_field="cost_price")
    await sign_in(hooks_client, "integrator@example.test")
    await subscribe(hooks_client, receiver.url)
    await rapport.publish(EVENT, {"widget_id": 9, "cost_price": "4.20",
                                  "lines": [{"sku": "W-1", "cost_price": "1.00"}]})
    await jobs.run_pending(rapport)
    data = json.loads(receiver.requests[0][1])["data"]
    assert data == {"widget_id": 9, "lines": [{"sku": "W-1"}]}


async def test_a_webhook_stops_when_its_owner_is_deactivated(hooks_client, receiver):
    rapport = hooks_client.rapport
    user_id = await _limited_admin()
    await sign_in(hooks_client, "integrator@example.test")
    sub = await subscribe(hooks_client, receiver.url)
    await User.update({User.is_active: False}).where(User.id == user_id).run()
    await rapport.publish(EVENT, {"widget_id": 10})
    await jobs.run_pending(rapport)
    assert receiver.requests == []
    row = await webhooks.get(sub["id"])
    assert not row["enabled"] and "deactivated" in row["disabled_reason"]


async def test_a_webhook_stops_when_its_owner_loses_the_permission(hooks_client, receiver):
    rapport = hooks_client.rapport
    user_id = await _limited_admin()
    await sign_in(hooks_client, "integrator@example.test")
    sub = await subscribe(hooks_client, receiver.url)
    await UserRole.delete().where(UserRole.user == user_id).run()
    await rapport.publish(EVENT, {"widget_id": 11})
    await jobs.run_pending(rapport)
    assert receiver.requests == []
    row = await webhooks.get(sub["id"])
    assert not row["enabled"] and "no longer manage webhooks" in row["disabled_reason"]


async def test_the_api_names_the_field_it_refuses(hooks_client, receiver):
    headers = await csrf_headers(hooks_client)
    cases = [
        ({"url": receiver.url, "events": [EVENT]}, "name"),
        ({"name": "X", "url": receiver.url, "events": []}, "events"),
        ({"name": "X", "url": receiver.url, "events": ["testing.widget.noted"]}, "events"),
        ({"name": "X", "url": receiver.url, "events": ["no.such.event"]}, "events"),
        ({"name": "X", "events": [EVENT]}, "url"),
    ]
    for body, field in cases:
        response = await hooks_client.post("/api/v1/webhooks", json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["field"] == field, body
    assert (await hooks_client.get("/api/v1/webhooks/999")).status_code == 404
    events = (await hooks_client.get("/api/v1/webhooks/events")).json()["data"]
    names = [e["name"] for e in events]
    assert EVENT in names and "testing.widget.noted" not in names  # durable events only
    assert "core.customer.deleted" in names


async def test_webhooks_are_for_administrators_only(hooks_client):
    await make_user("rep@example.test", roles=("sales_representative",))
    await sign_in(hooks_client, "rep@example.test")
    assert (await hooks_client.get("/admin/webhooks")).status_code in (403, 404)
    assert (await hooks_client.get("/api/v1/webhooks")).status_code in (403, 404)


async def test_the_api_switches_a_webhook_off_and_on_and_refuses_send_again_while_off(
        hooks_client, receiver):
    rapport = hooks_client.rapport
    headers = await csrf_headers(hooks_client)
    sub = await subscribe(hooks_client, receiver.url)
    await rapport.publish(EVENT, {"widget_id": 1})
    await jobs.run_pending(rapport)
    off = await hooks_client.patch(f"/api/v1/webhooks/{sub['id']}", json={"enabled": False},
                                   headers=headers)
    assert off.status_code == 200 and off.json()["enabled"] is False
    log = (await hooks_client.get(f"/api/v1/webhooks/{sub['id']}/deliveries")).json()["data"]
    refused = await hooks_client.post(
        f"/api/v1/webhooks/{sub['id']}/deliveries/{log[0]['id']}/send-again", headers=headers)
    assert refused.status_code == 422 and refused.json()["field"] == "enabled"
    bad = await hooks_client.patch(f"/api/v1/webhooks/{sub['id']}",
                                   json={"url": "gopher://example.com"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "url"
    on = await hooks_client.patch(f"/api/v1/webhooks/{sub['id']}", json={"enabled": True},
                                  headers=headers)
    assert on.json()["enabled"] is True and on.json()["url"] == receiver.url
    again = await hooks_client.post(
        f"/api/v1/webhooks/{sub['id']}/deliveries/{log[0]['id']}/send-again", headers=headers)
    assert again.status_code == 202
    await jobs.run_pending(rapport)
    assert len(receiver.requests) == 2
