"""No route passes a number the database cannot hold, or a NUL character, to the database:
both are refused with 422 naming the parameter or field, on every route, core and plugins."""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute

from core.identity.tokens import create_token
from tests.conftest import app_client, csrf_headers, make_user, sign_in

HUGE = [2**31, 2**63, 10**30]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def id_routes(app):
    """(method, path template, its int parameter names) for every route with an int path
    parameter."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        names = re.findall(r"\{(\w+):int\}", route.path)
        if not names:
            continue
        for handler in route.route_handlers:
            for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                yield method, route.path, names


def concrete(path: str, value: int) -> str:
    path = re.sub(r"\{\w+:int\}", str(value), path)
    return re.sub(r"\{\w+:\w+\}", "x", path)


@pytest.fixture
async def everything(make_rapport):
    """An administrator's session on an app with every built-in plugin."""
    instance = await make_rapport(["sales", "service"])
    async with app_client(instance) as client:
        client.user_id = await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        # And a portal customer beside, so portal routes are reached too (their own cookie).
        from tests.core.portal.conftest import make_person, portal_sign_in

        await make_person(instance, "Ada", "Lovelace", "ada@example.test")
        await portal_sign_in(client, "ada@example.test")
        client.postgres = instance.settings.database_url.startswith("postgres")
        yield client


async def test_every_id_route_answers_huge_ids_with_404_or_422_never_500(everything):
    client = everything
    routes = list(id_routes(client.rapport.asgi))
    assert len(routes) > 100
    headers = {**await csrf_headers(client), "accept": "application/json"}
    wrong = []
    for method, path, names in routes:
        for value in HUGE:
            response = await client.request(method, concrete(path, value), headers=headers,
                                            json={} if method in UNSAFE else None)
            beyond = value >= 2**63 or (client.postgres and value >= 2**31)
            if beyond:
                ok = response.status_code == 422 and response.json()["errors"][0]["field"] in names
            else:
                ok = response.status_code < 500
            if not ok:
                wrong.append((method, path, value, response.status_code))
    assert wrong == []


async def test_declared_integer_query_parameters_are_checked(everything):
    client = everything
    for path, name in [("/api/v1/users", "after"), ("/api/v1/customers", "limit"),
                       ("/admin/users", "after")]:
        response = await client.get(f"{path}?{name}={10**30}",
                                    headers={"accept": "application/json"})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] == name
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_page_says_which_value_was_not_accepted(everything):
    response = await everything.get(f"/customers/{2**63}", headers={"accept": "text/html"})
    assert response.status_code == 422
    assert "customer_id" in response.text and "Nothing was saved" in response.text


async def test_json_integers_beyond_64_bits_are_refused_naming_the_field(everything):
    client = everything
    headers = await csrf_headers(client)
    response = await client.post("/api/v1/interactions", headers=headers, json={
        "customer_id": 1, "channel": "call", "participants": [1, 10**30]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "participants[1]"


async def test_json_integers_beyond_the_column_are_422_naming_the_field(everything):
    """2**40 fits 64 bits, so only PostgreSQL's 32-bit id columns refuse it: named anyway."""
    client = everything
    response = await client.post("/api/v1/interactions", headers=await csrf_headers(client),
                                 json={"customer_id": 2**40, "channel": "call"})
    assert response.status_code in (404, 422), response.text
    if response.status_code == 422:
        assert response.json()["errors"][0]["field"] == "customer_id"


# --- NUL characters ------------------------------------------------------------------------


async def test_nul_in_a_json_field_is_refused_naming_it(everything):
    client = everything
    response = await client.post("/api/v1/customers", headers=await csrf_headers(client),
                                 json={"kind": "account", "name": "Acme\x00 Ltd"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    listed = await client.get("/api/v1/customers")
    assert "Acme" not in listed.text


async def test_nul_in_a_json_key_or_nested_string_is_refused(everything):
    client = everything
    headers = await csrf_headers(client)
    nested = await client.post("/api/v1/customers", headers=headers, json={
        "kind": "contact", "name": "Ada", "emails": [{"email": "a\x00@example.test"}]})
    assert nested.status_code == 422
    assert nested.json()["errors"][0]["field"] == "emails[0].email"
    key = await client.post("/api/v1/customers", headers=headers,
                            json={"kind": "contact", "na\x00me": "Ada"})
    assert key.status_code == 422


async def test_nul_in_a_staff_form_is_refused_naming_the_field(everything):
    client = everything
    response = await client.post("/accounts/new", headers={
        **await csrf_headers(client), "accept": "text/html"}, data={"name": "Acme\x00"})
    assert response.status_code == 422 and "name" in response.text


async def test_nul_in_query_and_path_parameters_is_refused(everything):
    client = everything
    query = await client.get("/api/v1/customers?q=ab%00c", headers={"accept": "application/json"})
    assert query.status_code == 422 and query.json()["errors"][0]["field"] == "q"
    path = await client.get("/calendar/ab%00c.ics", headers={"accept": "application/json"})
    assert path.status_code in (404, 422)


async def test_nul_through_the_anonymous_web_to_lead_form_is_refused(make_rapport):
    instance = await make_rapport(["sales"], {"sales": {"webform_min_seconds": 0}})
    async with app_client(instance) as client:
        form = await client.get("/sales/web-to-lead")
        token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
        client.cookies.clear()
        response = await client.post("/sales/web-to-lead", data={
            "token": token, "first_name": "Web", "last_name": "Vis\x00itor",
            "company": "Visitors Inc", "email": "visitor@example.test", "website_url": ""})
        assert response.status_code == 422 and "last_name" in response.text
        from plugins.sales.tables import Lead

        assert await Lead.count().run() == 0


async def test_a_token_request_is_checked_the_same_way(everything):
    client = everything
    token, _ = await create_token(client.rapport, client.user_id)
    response = await client.post("/api/v1/customers", json={"kind": "account", "name": "A\x00"},
                                 headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 422
