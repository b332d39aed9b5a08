"""Fixtures for the sales plugin's tests: an app with sales enabled and signed-in staff."""

from __future__ import annotations

import pytest

from tests.conftest import app_client, make_user, sign_in


@pytest.fixture
async def sales_client(make_rapport):
    """A client on an app with the sales plugin, signed in as an administrator."""
    instance = await make_rapport(["sales"], {"sales": {"webform_min_seconds": 0}}, debug=True)
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        # API calls made with the session cookie carry the CSRF header, as htmx does.
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


async def new_customer(name: str = "Acme Ltd", kind: str = "account", owner=None, team=None) -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind=kind, name=name, owner=owner, team=team)).returning(
        Customer.id).run()
    return rows[0]["id"]


async def post_form(client, path: str, values: dict, headers: dict | None = None):
    """Post a staff form the way a browser does (with its CSRF token)."""
    from tests.conftest import csrf_headers

    token = await csrf_headers(client)
    return await client.post(path, data={**values, "_csrf_token": token["x-csrftoken"]},
                             headers={**token, **(headers or {})}, follow_redirects=False)
