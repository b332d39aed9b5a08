"""A portal customer never sees another customer's data nor any staff page, and staff
sessions never act in the portal. Every registered route is tried, so routes added later are
covered too."""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute

from core.customers.tables import CustomerAddress, CustomerEmail, CustomerPhone
from tests.conftest import csrf_headers

PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
SKIPPED_METHODS = {"HEAD", "OPTIONS", "TRACE"}


def http_routes(app):
    """(path, method, handler) for every HTTP route handler of the app."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - SKIPPED_METHODS):
                yield route.path, method, handler


def fill(path: str, number: int) -> str:
    """Put ``number`` (another customer's id, or their records') into every path parameter."""
    def value(match):
        kind = match.group(2) or "str"
        if kind == "int":
            return str(number)
        if match.group(1) == "kind":
            return "emails"
        return "x" if kind != "path" else "x/y"
    return PARAM.sub(value, path)


def is_portal(path: str) -> bool:
    return path == "/portal" or path.startswith("/portal/")


async def call(client, method: str, path: str, headers: dict[str, str]):
    return await client.request(method, path, headers=headers, data={} if method != "GET" else None,
                                follow_redirects=False)


async def test_portal_cookie_opens_no_staff_page(portal):
    key = portal.cookies.get("rapport_portal", path="/portal")
    assert key
    # The cookie is sent by hand: browsers keep it to /portal, an attacker would not.
    headers = {"cookie": f"rapport_portal={key}; csrftoken={portal.cookies['csrftoken']}",
               **await csrf_headers(portal), "accept": "text/html"}
    tried = 0
    for path, method, handler in http_routes(portal.rapport.asgi):
        if is_portal(path) or path.startswith("/static") or handler.opt.get("public"):
            continue
        url = fill(path, portal.bob.customer_id)
        response = await call(portal, method, url, headers)
        tried += 1
        assert not 200 <= response.status_code < 300, f"{method} {url} answered {response.status_code}"
        assert "Babbage" not in response.text, f"{method} {url} shows another customer"
    assert tried > 10


async def test_staff_session_cannot_use_portal_routes(portal, make_rapport):
    from tests.conftest import make_user, sign_in

    # Same client: sign in as staff too; the staff cookie must count for nothing in /portal.
    portal.cookies.delete("rapport_portal", path="/portal")
    await make_user("admin@example.test")
    await sign_in(portal, "admin@example.test")
    headers = {**await csrf_headers(portal), "accept": "text/html"}
    tried = 0
    for path, method, handler in http_routes(portal.rapport.asgi):
        if not is_portal(path) or handler.opt.get("public"):
            continue
        url = fill(path, portal.ada.email_id)
        response = await call(portal, method, url, headers)
        tried += 1
        assert not 200 <= response.status_code < 300, f"{method} {url} answered {response.status_code}"
        if method == "GET":
            assert response.status_code == 303
            assert response.headers["location"].startswith("/portal/login")
    assert tried >= 8
    assert await CustomerEmail.count().where(CustomerEmail.id == portal.ada.email_id).run() == 1


async def test_portal_pages_never_show_another_customers_data(portal):
    tried = 0
    for path, method, _handler in http_routes(portal.rapport.asgi):
        if not is_portal(path) or method != "GET" or PARAM.search(path):
            continue
        response = await portal.get(path)
        tried += 1
        assert response.status_code in (200, 404), f"{path}: {response.status_code}"
        for secret in ("Babbage", "bob@example.test", str(portal.bob.customer_id) + " Babbage"):
            assert secret not in response.text, f"{path} shows {secret!r}"
    assert tried >= 6


@pytest.mark.parametrize("kind, table, attr", [
    ("emails", CustomerEmail, "email_id"),
    ("phones", CustomerPhone, "phone_id"),
    ("addresses", CustomerAddress, "address_id"),
])
async def test_portal_customer_cannot_remove_another_customers_details(portal, kind, table, attr):
    record_id = getattr(portal.bob, attr)
    response = await portal.post(f"/portal/profile/{kind}/{record_id}/delete",
                                 headers=await csrf_headers(portal), follow_redirects=False)
    assert response.status_code == 404
    assert await table.count().where(table.id == record_id).run() == 1


async def test_every_portal_route_with_another_customers_ids_answers_404_or_own_data(portal):
    headers = {**await csrf_headers(portal), "accept": "text/html"}
    for path, method, handler in http_routes(portal.rapport.asgi):
        if not is_portal(path) or handler.opt.get("public") or not PARAM.search(path):
            continue
        for number in (portal.bob.customer_id, portal.bob.email_id, portal.bob.phone_id,
                       portal.bob.address_id):
            url = fill(path, number)
            response = await call(portal, method, url, headers)
            assert response.status_code in (303, 400, 404), f"{method} {url}: {response.status_code}"
            assert "Babbage" not in response.text
    for table, attr in ((CustomerEmail, "email_id"), (CustomerPhone, "phone_id"),
                        (CustomerAddress, "address_id")):
        assert await table.count().where(table.id == getattr(portal.bob, attr)).run() == 1


async def test_portal_history_never_lists_another_customers_interactions(portal):
    try:
        from core.interactions.service import record_interaction
    except ImportError:
        pytest.skip("core.interactions is not in this build")
    await record_interaction(portal.rapport, None, customer_id=portal.bob.customer_id,
                             channel="portal", subject="Babbage asked for a refund",
                             visible_in_portal=True)
    await record_interaction(portal.rapport, None, customer_id=portal.ada.customer_id,
                             channel="portal", subject="Ada asked for a brochure",
                             visible_in_portal=True)
    history = await portal.get("/portal/history")
    assert "Ada asked for a brochure" in history.text
    assert "refund" not in history.text
