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
    assert response.json() == {"status": "ok"}


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
