"""Fixtures for the campaigns plugin's tests: a client signed in as an administrator on an
app with campaigns alone, customers to put in segments, and the local SMTP sink."""

from __future__ import annotations

import pytest

from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.email_helpers import smtp_sink  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def campaigns_installed(monkeypatch):
    """Until the environment is reinstalled, the ``campaigns`` entry point of pyproject.toml
    may be missing from the installed metadata: load the plugin module directly then."""
    from core import loader

    found = loader.installed_plugins()
    if "campaigns" not in found:
        from plugins.campaigns import plugin

        found["campaigns"] = plugin
        monkeypatch.setattr(loader, "installed_plugins", lambda: dict(found))


@pytest.fixture
async def campaigns_client(make_rapport, campaigns_installed):
    instance = await make_rapport(["campaigns"], {}, debug=True,
                                  base_url="http://testserver.local")
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


async def new_customer(name: str, *, email: str | None = None, stage: str = "lead",
                       tags: tuple[str, ...] = (), owner: int | None = None, **extra) -> int:
    from core.customers.tables import Customer, CustomerTag

    first = name.split()[0]
    rows = await Customer.insert(Customer(
        kind="contact", name=name, first_name=first, last_name=name.split()[-1],
        primary_email=(email if email is not None else first.lower() + "@example.test"),
        lifecycle_stage=stage, owner=owner, **extra)).returning(Customer.id).run()
    customer_id = rows[0]["id"]
    for tag in tags:
        await CustomerTag.insert(CustomerTag(customer=customer_id, tag=tag)).run()
    return customer_id
