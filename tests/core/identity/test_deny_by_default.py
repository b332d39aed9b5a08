"""Deny by default: every route declares a permission or is public, anonymous callers are
refused everywhere else, and each built-in role reaches exactly what its grants allow.

Routes are found by walking the built app (core and every built-in plugin), so routes added
later are covered without touching this file.
"""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute

from core.identity.roles import BUILTIN_ROLES, expand_grants
from core.loader import installed_plugins
from tests.conftest import app_client, csrf_headers, make_user, sign_in

PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
SAMPLE = {"int": "1", "str": "x", "uuid": "00000000-0000-0000-0000-000000000001",
          "path": "x", "float": "1.0", "date": "2026-01-01", "datetime": "2026-01-01T00:00:00"}


def builtin_plugins() -> list[str]:
    return sorted(pid for pid, module in installed_plugins().items()
                  if module.__name__.startswith("plugins."))


def concrete(path: str) -> str:
    return PARAM.sub(lambda m: SAMPLE.get(m.group(2) or "str", "x"), path)


def http_routes(app):
    """(method, path template, handler) for every HTTP route the app serves."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                if method in {"HEAD", "OPTIONS"}:
                    continue
                yield method, route.path, handler


@pytest.fixture
async def full_client(make_rapport):
    instance = await make_rapport(builtin_plugins())
    async with app_client(instance) as c:
        yield c


async def test_every_route_declares_a_permission_or_public(full_client):
    routes = list(http_routes(full_client.rapport.asgi))
    assert len(routes) > 10
    for method, path, handler in routes:
        opt = handler.opt or {}
        assert opt.get("public") or opt.get("permission"), f"{method} {path} declares neither"


def _refused(response) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code in (302, 303) and "login" in response.headers.get("location", "")


async def test_anonymous_requests_to_non_public_routes_are_refused(full_client):
    c = full_client
    headers = {**await csrf_headers(c), "accept": "application/json"}
    checked = 0
    for method, path, handler in http_routes(c.rapport.asgi):
        if (handler.opt or {}).get("public"):
            continue
        url = concrete(path)
        response = await c.request(method, url, headers=headers, follow_redirects=False)
        assert _refused(response), f"{method} {url} answered {response.status_code}"
        html = await c.request(method, url, headers={**headers, "accept": "text/html"},
                               follow_redirects=False)
        assert _refused(html) or html.status_code == 401, f"{method} {url} (html)"
        checked += 1
    assert checked > 5


# --- the authorisation matrix ----------------------------------------------------------------

ALL_ROLES = list(BUILTIN_ROLES)
ADMIN_ONLY = {"administrator"}
FAMILIES = {
    # family: (path, roles allowed)
    "dashboard": ("/", set(ALL_ROLES)),
    "admin users": ("/admin/users", ADMIN_ONLY),
    "admin teams": ("/admin/teams", ADMIN_ONLY),
    "admin roles": ("/admin/roles", ADMIN_ONLY),
    "permission matrix": ("/admin/roles/matrix", ADMIN_ONLY),
    "own account": ("/account", set(ALL_ROLES)),
    "own tokens": ("/account/tokens", set(ALL_ROLES)),
    "api: me": ("/api/v1/me", set(ALL_ROLES)),
    "api: users": ("/api/v1/users", ADMIN_ONLY),
}


@pytest.mark.parametrize("role", ALL_ROLES)
async def test_each_role_against_each_route_family(full_client, role):
    c = full_client
    await make_user(f"{role}@example.test", roles=[role])
    await sign_in(c, f"{role}@example.test")
    for family, (path, allowed) in FAMILIES.items():
        response = await c.get(path, headers={"accept": "application/json"})
        if role in allowed:
            assert response.status_code == 200, f"{role} should reach {family}"
        else:
            assert response.status_code == 403, f"{role} should be refused {family}"


def streams_forever(handler) -> bool:
    from litestar.response import ServerSentEvent

    return handler.parsed_fn_signature.return_type.annotation is ServerSentEvent


@pytest.mark.parametrize("role", ALL_ROLES)
async def test_each_role_reaches_exactly_the_pages_its_grants_allow(full_client, role):
    """Every parameterless GET route, including those added later by any area or plugin."""
    c = full_client
    rapport = c.rapport
    grants = expand_grants(BUILTIN_ROLES[role]["grants"], rapport.permissions)
    await make_user(f"{role}@example.test", roles=[role])
    await sign_in(c, f"{role}@example.test")
    for method, path, handler in http_routes(rapport.asgi):
        opt = handler.opt or {}
        if method != "GET" or "{" in path or opt.get("public") or opt.get("portal"):
            continue
        permission = opt["permission"]
        allowed = permission == "authenticated" or permission in grants
        if allowed and streams_forever(handler):
            continue  # an event stream the role may open never ends; refusals are still checked
        response = await c.get(path, headers={"accept": "application/json"})
        if allowed:
            assert response.status_code not in (401, 403), f"{role} refused {path}"
        else:
            assert response.status_code == 403, f"{role} reached {path} ({permission})"
