"""Portal authentication: under ``/portal`` the actor comes from the portal cookie only.

It runs after the staff authentication middleware and replaces its answer on portal paths,
so a staff session (or API token) never acts in the portal, and the portal cookie (whose path
is ``/portal`` anyway) is never read anywhere else.
"""

from __future__ import annotations

from litestar.datastructures import Cookie
from litestar.types import ASGIApp, Receive, Scope, Send

from core.identity.middleware import _cookie
from core.permissions import ANONYMOUS
from core.portal.identities import COOKIE, SESSION_LIFETIME, session_actor

PREFIX = "/portal"
# The staff middleware's marker of how a request authenticated (see core.identity.middleware).
AUTH_KEY = "rapport_auth"


def is_portal_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def portal_authentication_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and is_portal_path(scope.get("path", "")):
            scope["user"] = ANONYMOUS
            # Never "bearer" here: portal forms always go through the CSRF check.
            scope[AUTH_KEY] = None
            key = _cookie(scope, COOKIE)
            if key:
                actor = await session_actor(scope["app"].state.rapport, key)
                if actor is not None:
                    scope["user"] = actor
                    scope[AUTH_KEY] = "portal"
        await app(scope, receive, send)

    return middleware


def portal_cookie(key: str, *, secure: bool) -> Cookie:
    return Cookie(key=COOKIE, value=key, httponly=True, secure=secure, samesite="lax",
                  max_age=int(SESSION_LIFETIME.total_seconds()), path=PREFIX)
