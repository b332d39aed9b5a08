"""Assemble the Litestar application from core and the enabled plugins."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from core import db
from core.api_schemas import body_guard
from core.identity.middleware import authentication_middleware, csrf_middleware
from core.input_limits import (
    INT32,
    INT64,
    UnacceptableInput,
    input_guard,
    is_integer_overflow,
    offending_field,
)
from core.money import jinja_filters as money_filters
from core.navigation import nav_groups
from core.openapi import keep_only_api_routes, openapi_config
from core.permissions import permission_guard
from core.portal.middleware import is_portal_path, portal_authentication_middleware
from core.problems import bad_request

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.web")

ROOT = Path(__file__).resolve().parent.parent
THEMES = ROOT / "themes"
CORE_STATIC = Path(__file__).resolve().parent / "static"

# No inline scripts or styles anywhere: htmx's own indicator style is turned off in base.html.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), geolocation=(self), microphone=()"),
]


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.url.path.startswith("/api/")


def problem_response(status: int, title: str, detail: str) -> Response:
    """An API error as RFC 9457 problem details (``status_code`` kept for older clients)."""
    return Response({"type": "about:blank", "title": title, "status": status, "detail": detail,
                     "status_code": status},
                    status_code=status, media_type="application/problem+json")


def not_signed_in(request: Request, exc: NotAuthorizedException) -> Response:
    """Browsers go to the sign-in page (and come back afterwards); API clients get a 401."""
    if wants_html(request) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = "/portal/login" if is_portal_path(request.url.path) else "/login"
        return Redirect(f"{login}?{urlencode({'next': target})}", status_code=303)
    return problem_response(401, "Unauthorized", exc.detail)


def forbidden(request: Request, exc: PermissionDeniedException) -> Response:
    if wants_html(request):
        return Template("errors/403.html", context={"detail": exc.detail}, status_code=403)
    return problem_response(403, "Forbidden", exc.detail)


def not_found(request: Request, exc: NotFoundException) -> Response:
    """A page of the shell for browsers (a bare JSON body is no help to a person)."""
    if wants_html(request):
        return Template("errors/404.html", status_code=404)
    return problem_response(404, "Not found", str(exc.detail))


def unacceptable_input(request: Request, exc: UnacceptableInput) -> Response:
    """422 naming the field, for every route (core.input_limits)."""
    if wants_html(request):
        return Template("errors/422.html", context={"field": exc.field, "message": exc.message},
                        status_code=422)
    return Response({"type": "about:blank", "title": "Invalid input", "status": 422,
                     "detail": exc.detail, "field": exc.field,
                     "errors": [{"field": exc.field, "message": exc.message}],
                     "invalid_params": [{"name": exc.field, "reason": exc.message}]},
                    status_code=422, media_type="application/problem+json")


def database_refused_number(request: Request, exc: Exception) -> Response:
    """An integer the database could not hold that got past core.input_limits (e.g. a JSON or
    form value beyond a 32-bit column on PostgreSQL): 422 naming it, not a 500."""
    if not is_integer_overflow(exc):
        return server_error(request, exc)
    values = request.scope.get("rapport_input") or {}
    postgres = request.app.state.rapport.settings.database_url.startswith("postgres")
    bounds = INT32 if postgres else INT64
    field = offending_field(values, bounds) or "number"
    return unacceptable_input(request, UnacceptableInput(
        field, f"must be a whole number between {bounds[0]} and {bounds[1]}"))


def server_error(request: Request, exc: Exception) -> Response:
    """Unexpected failures: logged with their stack, never shown; the person gets a page."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if wants_html(request):
        return Template("errors/500.html", status_code=500)
    return Response({"status_code": 500, "detail": "Internal Server Error"}, status_code=500)


def _database_data_errors() -> dict:
    try:
        from asyncpg.exceptions import DataError
    except ImportError:  # SQLite-only installs
        return {}
    # PostgreSQL: "value out of int32 range" (asyncpg) or "integer out of range" (server).
    return {DataError: database_refused_number}


class RouteDeclarationError(Exception):
    """A route declares neither a permission nor ``public``: deny by default, loudly."""


def iter_route_handlers(handlers: list[Any], inherited: dict | None = None):
    """Yield (handler, effective opt) for every HTTP route handler inside handlers,
    controllers and routers; a router's or controller's opt applies to what it holds."""
    from litestar import Controller

    inherited = inherited or {}
    for item in handlers:
        if isinstance(item, HTTPRouteHandler):
            yield item, {**inherited, **(item.opt or {})}
        elif isinstance(item, Router):
            opt = {**inherited, **(item.opt or {})}
            for route in item.routes:
                for handler in getattr(route, "route_handlers", []):
                    if isinstance(handler, HTTPRouteHandler):
                        yield handler, {**opt, **(handler.opt or {})}
        elif isinstance(item, type) and issubclass(item, Controller):
            opt = {**inherited, **(getattr(item, "opt", None) or {})}
            for value in vars(item).values():
                if isinstance(value, HTTPRouteHandler):
                    yield value, {**opt, **(value.opt or {})}


def check_route_declarations(handlers: list[Any], origin: str) -> None:
    for handler, opt in iter_route_handlers(handlers):
        if not opt.get("public") and not opt.get("permission"):
            raise RouteDeclarationError(
                f"{origin}: route {handler.handler_name!r} {sorted(handler.paths)} declares "
                "neither opt={'permission': ...} nor opt={'public': True}"
            )


def security_headers_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def template_environment(rapport: Rapport) -> Environment:
    theme = THEMES / rapport.settings.theme / "templates"
    default = THEMES / "default" / "templates"
    plugin_dirs = [Path(p) for p in rapport.collect("register_template_dirs", rapport=rapport)]
    loaders = [FileSystemLoader(str(theme))] if theme != default else []
    loaders += [FileSystemLoader(str(d)) for d in plugin_dirs]
    loaders.append(FileSystemLoader(str(default)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default_for_string=True, default=True),
        enable_async=False,
    )
    env.globals["rapport"] = rapport
    env.globals["nav_groups"] = lambda request: nav_groups(rapport, request)
    env.globals["instance_name"] = rapport.settings.instance_name
    # money, number, percent, count: one way to show amounts (core.money).
    env.filters.update(money_filters())
    from core.customers.service import display_phone

    env.filters["phone"] = display_phone  # "+49 30 123456", never raw E.164
    from core.local_time import jinja_filters as time_filters

    env.filters.update(time_filters())  # local_time, local_date, local_input: the user's zone
    return env


def static_routers(rapport: Rapport) -> list[Router]:
    theme_static = THEMES / rapport.settings.theme / "static"
    default_static = THEMES / "default" / "static"
    core_dirs = [d for d in (theme_static, default_static, CORE_STATIC) if d.is_dir()]
    routers = [
        create_static_files_router(
            path="/static", directories=list(dict.fromkeys(core_dirs)), opt={"public": True},
            name="static",
        )
    ]
    prefixes: dict[str, Path] = {}
    for mapping in rapport.collect("register_static_dirs", rapport=rapport):
        for prefix, directory in mapping.items():
            prefix = prefix.strip("/")
            if prefix in prefixes:
                raise RouteDeclarationError(f"static prefix /static/{prefix}/ is registered twice")
            prefixes[prefix] = Path(directory)
    # Longest prefixes first so /static/plugins/x is not shadowed by /static.
    for prefix, directory in sorted(prefixes.items(), key=lambda kv: -len(kv[0])):
        routers.insert(
            0,
            create_static_files_router(
                path=f"/static/{prefix}", directories=[directory], opt={"public": True},
                name=f"static-{prefix}",
            ),
        )
    return routers


def build_litestar(rapport: Rapport) -> Litestar:
    handlers: list[Any] = []
    for plugin_name, result in rapport.call_in_order("register_routes", rapport=rapport):
        routes = list(result or [])
        check_route_declarations(routes, plugin_name)
        handlers.extend(routes)
    portal_routes: list[Any] = []
    for plugin_name, result in rapport.call_in_order("register_portal_routes", rapport=rapport):
        routes = list(result or [])
        check_route_declarations(routes, plugin_name)
        portal_routes.extend(routes)
    if portal_routes:
        handlers.append(Router(path="/portal", route_handlers=portal_routes, opt={"portal": True}))

    @asynccontextmanager
    async def lifespan(app: Litestar):
        rapport.activate()
        await db.connect(rapport.engine)
        try:
            await db.ensure_migrated(rapport.piccolo_apps())
            await rapport.acollect("startup", rapport=rapport)
            yield
        finally:
            try:
                await rapport.acollect("shutdown", rapport=rapport)
            finally:
                await db.disconnect(rapport.engine)

    env = template_environment(rapport)
    app = Litestar(
        route_handlers=handlers + static_routers(rapport),
        # Permissions first, so input checks tell an anonymous caller nothing.
        guards=[permission_guard, input_guard, body_guard],
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(authentication_middleware),
            # Under /portal the portal cookie alone decides who is asking (core/portal).
            DefineMiddleware(portal_authentication_middleware),
            # CSRF on every cookie-authenticated request, /api/ included; only requests
            # authenticated by a bearer token skip it (see core/identity/middleware.py).
            DefineMiddleware(
                csrf_middleware,
                config=CSRFConfig(
                    secret=rapport.settings.secret_key,
                    cookie_secure=rapport.settings.secure_cookies,
                    cookie_httponly=False,  # htmx reads it to send the x-csrftoken header
                    cookie_samesite="strict",
                ),
            ),
        ],
        exception_handlers={
            NotAuthorizedException: not_signed_in,
            PermissionDeniedException: forbidden,
            NotFoundException: not_found,
            UnacceptableInput: unacceptable_input,
            # Litestar's own parameter and body checks: problem+json naming the parameter
            # (plugins' routers may still answer them their own way).
            ClientException: bad_request,
            OverflowError: database_refused_number,  # SQLite: beyond 64 bits
            **_database_data_errors(),
            # In debug mode Litestar's own page shows the traceback instead.
            **({} if rapport.settings.debug else {500: server_error}),
        },
        template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(env)),
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        openapi_config=openapi_config(rapport),  # /schema: local Swagger UI, public
        state=State({"rapport": rapport}),
        debug=rapport.settings.debug,
    )
    keep_only_api_routes(app)
    # Around the whole application, not per route: Litestar answers an unknown path (404) or
    # method (405) before any route's middleware runs, and those answers need the headers too.
    app.asgi_handler = security_headers_middleware(app.asgi_handler)
    if rapport.settings.trusted_proxies:
        # Outermost, so every part of the app (audit, rate limits, Secure cookies) sees the
        # client's address and scheme; forwarded headers from anyone else are ignored.
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.asgi_handler = ProxyHeadersMiddleware(
            app.asgi_handler, trusted_hosts=list(rapport.settings.trusted_proxies))
    return app
