"""Fixtures for the configurator's tests: apps with and without the sales plugin, the two
demo products published, signed-in staff, and a portal customer."""

from __future__ import annotations

import pytest

from core.permissions import Actor
from tests.conftest import app_client, csrf_headers, make_user, sign_in


async def publish_demo(actor=None) -> dict[str, dict]:
    """The demo computer and bicycle, published: {"PC": version, "BIKE": version}."""
    from plugins.configurator import models
    from plugins.configurator.demo import MODELS

    out = {}
    for code, name, description, definition in MODELS:
        row = await models.create_model(actor, code, name, description, definition=definition)
        out[code] = await models.publish(actor, row["id"])
    return out


async def new_customer(name: str = "Acme Ltd") -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind="account", name=name)).returning(
        Customer.id).run()
    return rows[0]["id"]


async def post_form(client, path: str, values, headers: dict | None = None):
    token = await csrf_headers(client)
    data = {**{k: v if isinstance(v, list) else str(v) for k, v in dict(values).items()},
            "_csrf_token": token["x-csrftoken"]}
    return await client.post(path, data=data,
                             headers={**token, **(headers or {})}, follow_redirects=False)


def as_portal_customer(monkeypatch, client, customer_id: int, *, sales: bool = True) -> None:
    """The client acts as a portal customer of ``customer_id`` (the portal's own sign-in is
    core's business; the configurator relies only on ``Actor(kind="portal")``)."""
    import core.portal.middleware as portal_middleware

    grants = {"configurator.portal.view": "customer"}
    if sales:
        grants["sales.portal.view"] = "customer"
    actor = Actor(kind="portal", id=None, name="Customer", customer_id=customer_id,
                  grants=grants)

    async def session_actor(rapport, key):
        return actor if key == f"test-portal-{customer_id}" else None

    monkeypatch.setattr(portal_middleware, "session_actor", session_actor)
    client.cookies.set(portal_middleware.COOKIE, f"test-portal-{customer_id}", path="/portal")


@pytest.fixture
async def staff(make_rapport):
    """Sales and configurator enabled, an administrator signed in, the demo published."""
    instance = await make_rapport(["sales", "configurator"], debug=True)
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        client.versions = await publish_demo()
        yield client


@pytest.fixture
async def alone(make_rapport):
    """The configurator without sales."""
    instance = await make_rapport(["configurator"], debug=True)
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        client.versions = await publish_demo()
        yield client
