"""Who is asking, and what they may reach.

Row-level rules are query filters, never yes/no checks after loading: :func:`row_filter`
returns the where-clause for an actor, a permission and a table, and every list, search,
export, API endpoint, 360° view and count applies it (usually through :func:`scoped`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from piccolo.columns.combination import WhereRaw

if TYPE_CHECKING:
    from piccolo.table import Table

    from core.app import Rapport

Scope = Literal["own", "team", "all", "customer"]
# Every staff user may change their own account (notification topics, devices, calendar feed,
# notifications read): routes declaring "authenticated" need this to write. No role grants it:
# every user holds it, and an API token's scopes may withhold it like any other write.
SELF_SERVICE = "core.account.edit"
SCOPE_RANK = {"own": 1, "team": 2, "all": 3}


@dataclass(frozen=True)
class Actor:
    """The identity behind a request: a staff user, a portal customer, or nobody.

    ``grants`` maps permission name to scope; ``team_ids`` holds the user's teams and every
    team nested below them, so a manager's ``team`` scope covers the teams under theirs.
    """

    kind: Literal["staff", "portal", "anonymous"]
    id: int | None = None
    name: str = ""
    email: str = ""
    grants: Mapping[str, str] = field(default_factory=dict)
    team_ids: frozenset[int] = frozenset()
    customer_id: int | None = None
    account_id: int | None = None
    hidden_fields: frozenset[str] = frozenset()
    # A staff user's choices in My account ("" = the instance's): see core.local_time.
    time_zone: str = ""
    locale: str = ""
    # The API token the request came with (its grants are the user's, cut to its scopes).
    token_id: int | None = None
    # SELF_SERVICE, held by every staff user unless a token's scopes leave it out.
    account_edit: bool = True

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def region(self) -> str:
        """The country of the user's locale (``de-DE`` -> ``DE``), or ""."""
        parts = self.locale.replace("_", "-").split("-")
        return parts[1].upper() if len(parts) > 1 and len(parts[1]) == 2 else ""

    def can(self, permission: str) -> bool:
        if permission == SELF_SERVICE:
            return self.kind == "staff" and self.account_edit
        return permission in self.grants

    def scope_for(self, permission: str) -> str:
        try:
            return self.grants[permission]
        except KeyError:
            raise PermissionDeniedException(f"permission {permission!r} is required") from None


ANONYMOUS = Actor(kind="anonymous")


def current_actor(connection: ASGIConnection) -> Actor:
    user = connection.scope.get("user")
    return user if isinstance(user, Actor) else ANONYMOUS


_DENY_ALL = "1 = 0"


def row_filter(rapport: Rapport, actor: Actor, permission: str, table: type[Table]) -> Any | None:
    """The where-clause limiting ``table`` to what ``actor`` may reach with ``permission``.

    ``None`` means no limit (scope ``all``). Raises ``PermissionDeniedException`` when the
    permission is not granted at all.
    """
    if actor.kind == "portal":
        scope = "customer"
        if not actor.can(permission):
            raise PermissionDeniedException(f"permission {permission!r} is required")
    else:
        scope = actor.scope_for(permission)
        if scope == "all":
            return None
    custom = rapport.hook.row_filter(
        rapport=rapport, user=actor, permission=permission, table=table, scope=scope
    )
    if custom is not None:
        return custom
    columns = {c._meta.name: c for c in table._meta.columns}
    if scope == "customer":
        if "customer" in columns and actor.customer_id is not None:
            return columns["customer"] == actor.customer_id
        return WhereRaw(_DENY_ALL)
    owner = columns.get("owner")
    team = columns.get("team")
    if scope == "own":
        return owner == actor.id if owner is not None else WhereRaw(_DENY_ALL)
    if scope == "team":
        clauses = []
        if team is not None and actor.team_ids:
            clauses.append(team.is_in(sorted(actor.team_ids)))
        if owner is not None and actor.id is not None:
            clauses.append(owner == actor.id)
        if not clauses:
            return WhereRaw(_DENY_ALL)
        combined = clauses[0]
        for clause in clauses[1:]:
            combined = combined | clause
        return combined
    return WhereRaw(_DENY_ALL)


def scoped(query: Any, rapport: Rapport, actor: Actor, permission: str, table: type[Table]) -> Any:
    """Apply :func:`row_filter` to a Piccolo select/count/update/delete query."""
    where = row_filter(rapport, actor, permission, table)
    return query if where is None else query.where(where)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Permission names end with their verb (core/identity/roles.py); these only read.
READ_VERBS = frozenset({"view", "export", "use"})


def write_permission(opt: Mapping[str, Any]) -> str | None:
    """The permission a token must grant to send an unsafe request to a route: the route's
    ``write_permission`` or else its ``permission`` (``authenticated`` meaning
    :data:`SELF_SERVICE`); ``None`` when that only reads, so no token may write there."""
    declared = opt.get("write_permission") or opt.get("permission")
    if not declared:
        return None
    if declared == "authenticated":
        return SELF_SERVICE
    if declared.rsplit(".", 1)[-1] in READ_VERBS:
        return None
    return declared


def check_token_write(connection: ASGIConnection, opt: Mapping[str, Any], actor: Actor) -> None:
    """Deny by default a bearer-token request that may write (any method but GET, HEAD and
    OPTIONS) unless the route names a write permission the token's scopes kept."""
    if connection.scope.get("rapport_auth") != "bearer":
        return
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    needed = write_permission(opt)
    if needed is None:
        raise PermissionDeniedException("an API token cannot change anything through this route")
    if not actor.can(needed):
        raise PermissionDeniedException(
            f"permission {needed!r} is required (the API token's scopes do not grant it)")


def permission_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The one guard on every route: deny unless the handler is public or its permission is
    granted. Handlers declare ``opt={"permission": ...}`` or ``opt={"public": True}``; a route
    that writes while declaring a reading permission names what an API token needs to write
    there as ``opt={"write_permission": ...}`` (see :func:`check_token_write`)."""
    opt = handler.opt
    if opt.get("public"):
        return
    permission = opt.get("permission")
    actor = current_actor(connection)
    if not actor.is_authenticated:
        raise NotAuthorizedException("sign in first")
    if permission is None:
        # Unreachable in practice: the app refuses to start with such a route.
        raise PermissionDeniedException("this route declares no permission")
    if opt.get("portal"):
        if actor.kind != "portal":
            raise PermissionDeniedException("this page is for portal customers")
    elif actor.kind != "staff":
        raise PermissionDeniedException("this page is for staff")
    if permission != "authenticated" and not actor.can(permission):
        raise PermissionDeniedException(f"permission {permission!r} is required")
    check_token_write(connection, opt, actor)


def redact(actor: Actor, table_name: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` without the fields of ``table_name`` hidden from ``actor`` by field rules.

    Pages, API responses and exports pass every row through this (or :func:`redact_rows`)
    before showing it, so a hidden field is absent everywhere, not merely not displayed.
    """
    if not actor.hidden_fields:
        return dict(row)
    prefix = f"{table_name}."
    return {k: v for k, v in row.items() if f"{prefix}{k}" not in actor.hidden_fields}


def redact_rows(actor: Actor, table_name: str, rows: list[Mapping[str, Any]]) -> list[dict]:
    return [redact(actor, table_name, row) for row in rows]


def hidden_fields(actor: Actor, table_name: str) -> set[str]:
    """Names of ``table_name``'s fields hidden from ``actor`` (e.g. to leave columns out of a
    query or an export header)."""
    prefix = f"{table_name}."
    return {f[len(prefix):] for f in actor.hidden_fields if f.startswith(prefix)}
