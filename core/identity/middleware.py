"""Puts the :class:`Actor` behind each request in ``scope["user"]`` (anonymous if none), and
applies CSRF protection to every request that a browser could be tricked into sending.

A request is authenticated either by ``Authorization: Bearer <token>`` (API clients; the
session cookie is then ignored) or by the session cookie. ``scope["rapport_auth"]`` says which:
``"bearer"``, ``"session"`` or ``None``. Only bearer requests skip CSRF checks: browsers never
attach that header on their own, whereas they do attach cookies.
"""

from __future__ import annotations

import hashlib
import os
import time

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
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ActorCache:
    """The actor built for a session key or API token, kept for a few seconds per worker.

    Building an actor takes five or six queries (session or token, user, grants, teams, field
    rules); a page view needs it on every request. The cache bounds how late a change is seen:

    - any request with an unsafe method (POST, PUT, PATCH, DELETE) handled by this worker
      empties the cache of this worker once it is answered, so signing out, ending sessions,
      changing roles, permissions, teams or users through the web or the API take effect on
      this worker's very next request;
    - everything else (another worker, the command line, a session expiring) takes effect
      within ``RAPPORT_ACTOR_CACHE_SECONDS`` (default 5; 0 turns the cache off).

    Only safe (read-only) requests are answered from the cache; unsafe ones always build the
    actor afresh, so no write is ever authorised by a stale actor.
    """

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, tuple[float, object]] = {}

    @staticmethod
    def key(kind: str, secret: str) -> str:
        # Hashed, so the cache holds no usable credential.
        return kind + hashlib.sha256(secret.encode()).hexdigest()

    def get(self, key: str):
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: str, actor) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()  # bounded memory; the next requests rebuild their actors
        self._entries[key] = (time.monotonic() + self.seconds, actor)

    def clear(self) -> None:
        self._entries.clear()


def _cache_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("RAPPORT_ACTOR_CACHE_SECONDS", "5")))
    except ValueError:
        return 5.0


def actor_cache(rapport) -> ActorCache:
    """The per-process actor cache of one Rapport instance."""
    cache = getattr(rapport, "_actor_cache", None)
    if cache is None:
        cache = ActorCache(_cache_seconds())
        rapport._actor_cache = cache
    return cache


_WRITE_LISTENERS: list = []


def on_write(listener) -> None:
    """Call ``listener()`` after this worker answers any write request (POST, PUT, PATCH,
    DELETE): how short-lived read caches elsewhere (list filter choices, ...) drop what the
    write may have changed."""
    if listener not in _WRITE_LISTENERS:
        _WRITE_LISTENERS.append(listener)


def forget_actors(rapport) -> None:
    """Drop every cached actor of ``rapport`` in this process (after a permission change made
    outside a web request, e.g. by a command)."""
    actor_cache(rapport).clear()


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


async def _actor_for(rapport, scope: Scope, cache: ActorCache | None):
    """(actor or None, "bearer" | "session" | None); raises for a bad bearer token."""
    token = bearer_token(scope)
    if token is not None:
        key = ActorCache.key("t", token)
        actor = cache.get(key) if cache is not None else None
        if actor is None:
            actor = await token_actor(rapport, token)
            if actor is None:
                # A bad token is an error, never a silent fall-back to anonymous.
                raise NotAuthorizedException("the API token is unknown, expired or revoked")
            if cache is not None:
                cache.put(key, actor)
        return actor, "bearer"
    session = _cookie(scope, COOKIE)
    if not session:
        return None, None
    key = ActorCache.key("s", session)
    actor = cache.get(key) if cache is not None else None
    if actor is None:
        user_id = await session_user_id(session)
        actor = await load_actor(rapport, user_id) if user_id is not None else None
        if actor is None:
            return None, None
        if cache is not None:
            cache.put(key, actor)
    return actor, "session"


def authentication_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        unsafe = False
        rapport = None
        if scope["type"] in ("http", "websocket"):
            scope["user"] = ANONYMOUS
            scope[AUTH_KEY] = None
            path = scope.get("path", "")
            if not path.startswith("/static/"):
                rapport = scope["app"].state.rapport
                cache = actor_cache(rapport)
                unsafe = scope["type"] == "http" and scope.get("method") not in SAFE_METHODS
                actor, how = await _actor_for(rapport, scope, None if unsafe else cache)
                if actor is not None:
                    scope["user"] = actor
                    scope[AUTH_KEY] = how
        if not unsafe:
            await app(scope, receive, send)
            return
        def forget() -> None:
            # Whatever this write changed (a sign-out, a role, a team), no actor cached before
            # it is used again by this worker.
            actor_cache(rapport).clear()
            for listener in _WRITE_LISTENERS:
                listener()

        async def send_after_forgetting(message) -> None:
            # Also before the response leaves: the client's next request may be served while
            # this one is still finishing its send.
            if message["type"] == "http.response.start":
                forget()
            await send(message)

        try:
            await app(scope, receive, send_after_forgetting)
        finally:
            forget()

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
