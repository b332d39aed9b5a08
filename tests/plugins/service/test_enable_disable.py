"""The service plugin can be switched off, and lives alongside sales: core's pages, the field
app and each role's reachable pages work in both set-ups, and a disabled service leaves no
route, navigation entry, widget or agenda entry behind."""

from __future__ import annotations

import pytest

from core.identity.roles import BUILTIN_ROLES, expand_grants
from tests.conftest import app_client, make_user, sign_in
from tests.core.identity.test_deny_by_default import http_routes, streams_forever

SERVICE_PREFIXES = ("/service", "/api/v1/service", "/portal/service", "/static/plugins/service")
WALKED_ROLES = ("administrator", "service_agent", "field_representative", "read_only")


async def _walk(client, role: str) -> int:
    """Every parameterless staff GET page: reachable when the role's grants allow it (and
    never a server error), refused with 403 otherwise."""
    rapport = client.rapport
    grants = expand_grants(BUILTIN_ROLES[role]["grants"], rapport.permissions)
    await make_user(f"{role}@example.test", roles=[role])
    await sign_in(client, f"{role}@example.test")
    walked = 0
    for method, path, handler in http_routes(rapport.asgi):
        opt = handler.opt or {}
        if method != "GET" or "{" in path or opt.get("public") or opt.get("portal"):
            continue
        permission = opt["permission"]
        allowed = permission == "authenticated" or permission in grants
        if allowed and streams_forever(handler):
            continue
        response = await client.get(path, headers={"accept": "text/html"})
        if allowed:
            assert response.status_code < 500, f"{role}: {path} answered {response.status_code}"
            assert response.status_code not in (401, 403), f"{role} refused {path}"
        else:
            assert response.status_code == 403, f"{role} reached {path} ({permission})"
        walked += 1
    return walked


async def test_without_service_nothing_of_it_remains_and_core_works(make_rapport):
    instance = await make_rapport([])
    assert not instance.is_enabled("service")
    paths = {route.path for route in instance.asgi.routes}
    assert not [p for p in paths if p.startswith(SERVICE_PREFIXES)]
    assert not [p for p in instance.permissions if p.startswith("service.")]
    async with app_client(instance) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        home = await client.get("/")
        assert home.status_code == 200
        assert 'href="/service/cases"' not in home.text and "/service/widgets" not in home.text
        assert (await client.get("/service/cases")).status_code == 404
        snapshot = await client.get("/api/v1/field/snapshot")
        assert snapshot.status_code == 200
        assert not [i for i in snapshot.json()["agenda"] if i["kind"] == "case"]
        assert await _walk(client, "administrator") > 5


@pytest.fixture
async def both_client(make_rapport):
    instance = await make_rapport(["service", "sales"], {"sales": {"webform_min_seconds": 0}})
    async with app_client(instance) as client:
        yield client


async def test_service_and_sales_together_show_both_and_field_agenda_works(both_client):
    from core.customers.tables import Customer

    client = both_client
    assert client.rapport.is_enabled("service") and client.rapport.is_enabled("sales")
    await make_user("admin@example.test")
    await sign_in(client, "admin@example.test")
    home = await client.get("/")
    assert home.status_code == 200
    assert 'href="/service/cases"' in home.text and 'href="/sales/board"' in home.text
    customer = (await Customer.insert(Customer(kind="contact", name="Ada")).returning(
        Customer.id).run())[0]["id"]
    page = await client.get(f"/customers/{customer}")
    assert page.status_code == 200
    assert f"/service/panels/customer/{customer}/cases" in page.text
    assert (await client.get(f"/service/panels/customer/{customer}/cases")).status_code == 200
    assert (await client.get("/api/v1/field/snapshot")).status_code == 200


@pytest.mark.parametrize("role", WALKED_ROLES)
async def test_each_role_walks_its_pages_with_service_and_sales(both_client, role):
    assert await _walk(both_client, role) > 10
