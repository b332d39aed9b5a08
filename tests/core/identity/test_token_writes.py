"""An API token writes only where its scopes grant a write permission (deny by default), what a
token registered goes with it, and push endpoints must be public push services."""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute

from core.identity.tables import ApiToken
from core.identity.tokens import create_token
from pwa import push
from pwa.tables import PushOutbox, PushSubscription
from tests.conftest import app_client, make_user
from tests.pwa.pushservice import FakeBrowser, PushService

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/json"}


def write_routes(app):
    """(method, concrete path, portal?) for every non-public route that can change data."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            opt = handler.opt or {}
            if opt.get("public"):
                continue
            path = re.sub(r"\{(\w+):int\}", "1", route.path)
            path = re.sub(r"\{(\w+):\w+\}", "x", path)
            for method in sorted(set(handler.http_methods) & UNSAFE):
                yield method, path, bool(opt.get("portal"))


async def test_a_read_only_token_is_refused_by_every_write_route(make_rapport):
    instance = await make_rapport(["sales", "service"])
    async with app_client(instance) as client:
        uid = await make_user("ada@example.test", roles=["administrator"])
        token, _ = await create_token(instance, uid, scopes=["*.view"])
        routes = list(write_routes(instance.asgi))
        assert len(routes) > 150  # core, pwa, sales and service are all walked
        allowed = []
        for method, path, portal in routes:
            response = await client.request(method, path, headers=bearer(token), json={})
            # Portal pages never take a staff token at all (their cookie decides who asks).
            expected = {401, 403} if portal else {403}
            if response.status_code not in expected:
                allowed.append((method, path, response.status_code))
            elif not portal:
                assert response.headers["content-type"].startswith("application/problem+json")
        assert allowed == []


async def test_a_read_only_token_cannot_change_its_users_own_settings(client):
    uid = await make_user("ada@example.test", roles=["read_only"])
    token, _ = await create_token(client.rapport, uid, scopes=["*.view"])
    for path in ("/api/v1/notifications/read", "/calendar/regenerate", "/field/devices/topics"):
        response = await client.post(path, headers=bearer(token))
        assert response.status_code == 403, path
        assert "core.account.edit" in response.json()["detail"]


async def test_a_token_whose_scopes_keep_account_changes_may_make_them(client):
    uid = await make_user("ada@example.test", roles=["read_only"])
    for scopes in (["*"], ["core.account.*"], ["*.view", "core.account.edit"]):
        token, _ = await create_token(client.rapport, uid, scopes=scopes)
        response = await client.post("/api/v1/notifications/read", headers=bearer(token))
        assert response.status_code == 200, (scopes, response.text)


async def test_a_route_that_writes_under_a_viewing_permission_needs_its_write_permission(client):
    uid = await make_user("ada@example.test", roles=["administrator"])
    viewing, _ = await create_token(client.rapport, uid, scopes=["*.view"])
    editing, _ = await create_token(client.rapport, uid, scopes=["*.view", "*.edit"])
    path = "/api/v1/follow-ups/999999/complete"
    assert (await client.post(path, headers=bearer(viewing))).status_code == 403
    assert (await client.post(path, headers=bearer(editing))).status_code == 404


PUSH = {"extra": {"push_worker": "off", "push_allow_http": "1"}}


async def test_revoking_a_token_removes_the_push_devices_it_registered(make_rapport):
    instance = await make_rapport(**PUSH)
    with PushService() as service:
        async with app_client(instance) as client:
            uid = await make_user("ada@example.test", roles=["field_representative"])
            token, row = await create_token(client.rapport, uid)
            response = await client.post(
                "/api/v1/push/subscriptions", headers=bearer(token),
                json=FakeBrowser().subscription(service.endpoint("planted")))
            assert response.status_code == 201, response.text
            listed = await client.get("/api/v1/push/subscriptions", headers=bearer(token))
            assert len(listed.json()) == 1

            from core.identity.tokens import revoke_token

            assert await revoke_token(uid, row["id"])
            from core.plugin import PushMessage

            queued = await push.enqueue(instance, [PushMessage(
                user_id=uid, title="Private", body="secret", topic="core.follow_up.due", url="/")])
            assert queued == 0
            assert await push.deliver_due(instance) == 0
            assert await PushSubscription.count().run() == 0
            assert await PushOutbox.count().run() == 0
    assert service.received == []


@pytest.mark.parametrize("endpoint", [
    "https://127.0.0.1/push", "https://localhost/push", "https://[::1]/push",
    "https://10.1.2.3/push", "https://192.168.0.7/push", "https://172.16.0.1/push",
    "https://169.254.169.254/latest", "https://[fe80::1]/push", "https://100.64.0.1/push",
    "https://[::ffff:127.0.0.1]/push", "https://0.0.0.0/push", "https://push.invalid/x",
])
async def test_push_endpoints_must_be_public_hosts(make_rapport, endpoint):
    instance = await make_rapport(extra={"push_worker": "off"})  # production defaults
    async with app_client(instance) as client:
        uid = await make_user("ada@example.test", roles=["field_representative"])
        token, _ = await create_token(client.rapport, uid)
        response = await client.post("/api/v1/push/subscriptions", headers=bearer(token),
                                     json=FakeBrowser().subscription(endpoint))
        assert response.status_code == 422, response.text
        assert response.json()["invalid_params"][0]["name"] == "endpoint"
        assert await PushSubscription.count().run() == 0


async def test_a_device_pointing_at_a_private_address_is_not_sent_to(make_rapport):
    """Checked again at send time: a row that got in earlier (or a host whose DNS now points
    inside) is given up, never connected to."""
    instance = await make_rapport(extra={"push_worker": "off"})
    with PushService() as service:
        async with app_client(instance):
            uid = await make_user("ada@example.test", roles=["field_representative"])
            endpoint = service.endpoint("inside").replace("http://", "https://")
            data = FakeBrowser().subscription(endpoint)
            await PushSubscription.insert(PushSubscription(
                user=uid, endpoint=endpoint, endpoint_hash="x" * 64,
                p256dh=data["keys"]["p256dh"], auth=data["keys"]["auth"])).run()
            from core.plugin import PushMessage

            assert await push.enqueue(instance, [PushMessage(
                user_id=uid, title="Hi", body="b", topic="core.follow_up.due", url="/")]) == 1
            assert await push.deliver_due(instance) == 0
            row = await PushOutbox.select(PushOutbox.status, PushOutbox.last_error).first().run()
            assert row["status"] == "dead" and "public internet" in row["last_error"]
    assert service.received == []


async def test_tokens_table_still_cascades_to_devices(client):
    """Deleting a token's row (e.g. with its user) takes its devices along."""
    uid = await make_user("ada@example.test", roles=["field_representative"])
    _, row = await create_token(client.rapport, uid)
    data = FakeBrowser().subscription("https://push.example.test/1")
    await PushSubscription.insert(PushSubscription(
        user=uid, endpoint=data["endpoint"], endpoint_hash="y" * 64,
        p256dh=data["keys"]["p256dh"], auth=data["keys"]["auth"], api_token=row["id"])).run()
    await ApiToken.delete().where(ApiToken.id == row["id"]).run()
    assert await PushSubscription.count().run() == 0
