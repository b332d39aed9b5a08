"""Puts the :class:`Actor` behind each request in ``scope["user"]`` (anonymous if none)."""

from __future__ import annotations

from litestar.datastructures import Cookie
from litestar.types import ASGIApp, Receive, Scope, Send

from core.identity.sessions import COOKIE, session_user_id
from core.identity.users import load_actor
from core.permissions import ANONYMOUS


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == name:
                    return val
    return None


def authentication_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["user"] = ANONYMOUS
            path = scope.get("path", "")
            if not path.startswith("/static/"):
                rapport = scope["app"].state.rapport
                key = _cookie(scope, COOKIE)
                if key:
                    user_id = await session_user_id(key)
                    if user_id is not None:
                        scope["user"] = await load_actor(rapport, user_id) or ANONYMOUS
        await app(scope, receive, send)

    return middleware


def session_cookie(key: str, *, secure: bool) -> Cookie:
    from core.identity.sessions import LIFETIME

    return Cookie(key=COOKIE, value=key, httponly=True, secure=secure, samesite="lax",
                  max_age=int(LIFETIME.total_seconds()), path="/")
