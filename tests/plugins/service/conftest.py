"""Fixtures for the service plugin's tests: an app with service enabled and signed-in staff.

Each helper module of the plugin adds its own fixtures in its test files; the ones every test
needs live here.
"""

from __future__ import annotations

import pytest

from tests.conftest import app_client, make_user, sign_in


@pytest.fixture
async def service_rapport(make_rapport):
    """An app with the service plugin enabled (and no other plugin)."""
    return await make_rapport(["service"], {}, debug=True)


@pytest.fixture
async def service_client(service_rapport):
    """A client signed in as an administrator, sending the CSRF header as htmx does."""
    async with app_client(service_rapport) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


@pytest.fixture
async def portal(service_rapport):
    """A client signed in to the portal as Ada; ``client.ada`` and ``client.bob`` (the
    customer Ada must never see)."""
    from tests.core.portal.conftest import make_person, portal_sign_in

    async with app_client(service_rapport) as client:
        client.ada = await make_person(service_rapport, "Ada", "Lovelace", "ada@example.test")
        client.bob = await make_person(service_rapport, "Bob", "Babbage", "bob@example.test")
        await portal_sign_in(client, "ada@example.test")
        yield client


async def new_customer(name: str = "Ada Lovelace", kind: str = "contact", email: str = "",
                       owner=None, team=None) -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind=kind, name=name, primary_email=email,
                                          owner=owner, team=team)).returning(Customer.id).run()
    return rows[0]["id"]


async def post_form(client, path: str, values: dict, headers: dict | None = None):
    """Post a staff form the way a browser does (with its CSRF token)."""
    from tests.conftest import csrf_headers

    token = await csrf_headers(client)
    return await client.post(path, data={**values, "_csrf_token": token["x-csrftoken"]},
                             headers={**token, **(headers or {})}, follow_redirects=False)
