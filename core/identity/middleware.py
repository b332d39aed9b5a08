"""Puts the :class:`Actor` behind each request in ``scope["user"]`` (anonymous if none), and
applies CSRF protection to every request that a browser could be tricked into sending.

A request is authenticated either by ``Authorization: Bearer <token>`` (API clients; the
session cookie is then ignored) or by the session cookie. ``scope["rapport_auth"]`` says which:
``"bearer"``, ``"session"`` or ``None``. Only bearer requests skip CSRF checks: browsers never
attach that header on their own, whereas they do attach cookies.
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from core.identity.sessions import COOKIE, session_user_id
from core.identity.tokens import token_actor
from core.identity.users import load_actor
from core.permissions import ANONYMOUS

AUTH_KEY = "rapport_auth"


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope.get("headers", []):
        if header == name:
            return value.decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == name:
                    return val
    return None


def bearer_token(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    kind, _, token = value.partition(" ")
    return token.strip() if kind.lower() == "bearer" else None


def authentication_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["user"] = ANONYMOUS
            scope[AUTH_KEY] = None
            path = scope.get("path", "")
            if not path.startswith("/static/"):
                rapport = scope["app"].state.rapport
                token = bearer_token(scope)
                if token is not None:
                    actor = await token_actor(rapport, token)
                    if actor is None:
                        # A bad token is an error, never a silent fall-back to anonymous.
                        raise NotAuthorizedException("the API token is unknown, expired or revoked")
                    scope["user"] = actor
                    scope[AUTH_KEY] = "bearer"
                else:
                    key = _cookie(scope, COOKIE)
                    if key:
                        user_id = await session_user_id(key)
                        if user_id is not None:
                            actor = await load_actor(rapport, user_id)
                            if actor is not None:
                                scope["user"] = actor
                                scope[AUTH_KEY] = "session"
        await app(scope, receive, send)

    return middleware


def csrf_middleware(app: ASGIApp, config: CSRFConfig) -> ASGIApp:
    """Litestar's CSRF check for everything except bearer-token requests (runs after
    :func:`authentication_middleware`, which marks them)."""
    protected = CSRFMiddleware(app=app, config=config)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get(AUTH_KEY) == "bearer":
            await app(scope, receive, send)
        else:
            await protected(scope, receive, send)

    return middleware


def signed_in_by_token(scope: Scope) -> bool:
    return scope.get(AUTH_KEY) == "bearer"


def session_cookie(key: str, *, secure: bool) -> Cookie:
    from core.identity.sessions import LIFETIME

    return Cookie(key=COOKIE, value=key, httponly=True, secure=secure, samesite="lax",
                  max_age=int(LIFETIME.total_seconds()), path="/")
