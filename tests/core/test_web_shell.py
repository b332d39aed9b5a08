"""The web shell's defaults: deny by default, security headers, public health check."""

from __future__ import annotations

import pytest
from litestar import get

from core.app import Rapport
from core.plugin import Plugin, hookimpl
from core.web_app import RouteDeclarationError, build_litestar


async def test_dashboard_needs_a_signed_in_user(client):
    response = await client.get("/", headers={"accept": "application/json"})
    assert response.status_code == 401


async def test_health_is_public(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    # Each dependency the server needs, checked (no Redis configured here; test apps run no
    # job worker, like a web server beside `rapport worker` processes).
    checks = body["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["jobs"] == {"ok": True, "worker": "separate"}
    assert checks["live"]["ok"] is True
    assert checks["live"]["connection"] in ("memory", "PostgreSQL")
    assert "redis" not in checks


async def test_every_response_carries_a_strict_content_security_policy(client):
    response = await client.get("/healthz")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_htmx_is_served_locally(client):
    response = await client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert "htmx" in response.text[:2000]


def test_a_route_declaring_no_permission_stops_the_app(tmp_path, monkeypatch):
    import types

    @get("/leaky")
    async def leaky() -> str:
        return "secret"

    module = types.ModuleType("leaky_plugin")
    module.plugin = Plugin(id="leaky", name="Leaky", version="0")

    @hookimpl
    def register_routes():
        return [leaky]

    module.register_routes = register_routes
    monkeypatch.setattr("core.loader.installed_plugins", lambda: {"leaky": module})
    from tests.conftest import settings_for_test

    rapport = Rapport(settings_for_test(tmp_path, f"sqlite:///{tmp_path}/x.db"), plugins=["leaky"])
    with pytest.raises(RouteDeclarationError, match=r"leaky.*'/leaky'.*declares neither"):
        build_litestar(rapport)


def test_routes_inside_a_router_are_checked_too(tmp_path, monkeypatch):
    import types

    from litestar import Router

    from tests.conftest import settings_for_test

    @get("/inside")
    async def inside() -> str:
        return "secret"

    @get("/declared", opt={"public": True})
    async def declared() -> str:
        return "ok"

    def app_with(router):
        module = types.ModuleType("router_plugin")
        module.plugin = Plugin(id="routed", name="Routed", version="0")
        module.register_routes = hookimpl(lambda: [router])
        monkeypatch.setattr("core.loader.installed_plugins", lambda: {"routed": module})
        settings = settings_for_test(tmp_path, f"sqlite:///{tmp_path}/x.db")
        return build_litestar(Rapport(settings, plugins=["routed"]))

    with pytest.raises(RouteDeclarationError, match=r"'/inside'"):
        app_with(Router(path="/r", route_handlers=[inside, declared]))
    # A router's own declaration covers the handlers it holds.
    app_with(Router(path="/r", route_handlers=[inside], opt={"permission": "core.dashboard.view"}))


async def test_a_browser_gets_a_page_for_what_does_not_exist_and_an_api_client_json(
        admin_client):
    page = await admin_client.get("/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text and "Back to the dashboard" in page.text
    # A record that is gone (or out of reach) inside a known route keeps the whole shell.
    missing = await admin_client.get("/customers/987654", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.text
    assert 'href="/contacts"' in missing.text
    api = await admin_client.get("/api/v1/no-such-thing", headers={"accept": "text/html"})
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/")


async def test_an_unexpected_error_is_logged_and_shown_as_a_page_without_details(
        make_rapport, monkeypatch):
    import logging
    import types

    from core import loader
    from tests.conftest import app_client

    @get("/explodes", opt={"public": True})
    async def explodes() -> str:
        raise RuntimeError("secret internals")

    module = types.ModuleType("broken_plugin")
    module.plugin = Plugin(id="broken", name="Broken", version="0")
    module.register_routes = hookimpl(lambda: [explodes])
    installed = loader.installed_plugins
    monkeypatch.setattr("core.loader.installed_plugins", lambda: {**installed(), "broken": module})
    logged: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = logged.append
    logging.getLogger("rapport.web").addHandler(catcher)
    async with app_client(await make_rapport(["broken"])) as client:
        page = await client.get("/explodes", headers={"accept": "text/html"})
        assert page.status_code == 500
        assert "Something went wrong" in page.text and "secret internals" not in page.text
        data = await client.get("/explodes", headers={"accept": "application/json"})
        assert data.status_code == 500 and "secret internals" not in data.text
    logging.getLogger("rapport.web").removeHandler(catcher)
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in logged)
