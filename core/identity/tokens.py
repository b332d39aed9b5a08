"""Personal API tokens: shown once, stored as a SHA-256 hash, scoped, expiring, revocable.

A token acts as its user, restricted to its scopes: the actor's grants are the user's grants
whose permission names match one of the token's patterns (``*``, ``core.customer.*``,
``*.view``). A token never gains what its user lacks.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from core.identity.tables import ApiToken, User
from core.identity.users import UserError, load_actor, normalise_email
from core.permissions import SELF_SERVICE, Actor

if TYPE_CHECKING:
    from core.app import Rapport

PREFIX = "rpt_"
# Writing last_used_at on every request would make each API call a write; a minute is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_scopes(scopes: list[str], permissions) -> list[str]:
    """Clean the scope patterns; each must match at least one declared permission."""
    cleaned = [s.strip() for s in scopes if s and s.strip()] or ["*"]
    names = [*permissions, SELF_SERVICE]
    for pattern in cleaned:
        if not any(fnmatchcase(name, pattern) for name in names):
            raise UserError("scope", f"{pattern!r} matches no permission")
    return cleaned


async def create_token(rapport: Rapport, user_id: int, name: str = "",
                       scopes: list[str] | None = None,
                       expires_days: int | None = None) -> tuple[str, dict]:
    """Create a token for a user; return ``(token, row)``. The token is never stored."""
    cleaned = check_scopes(list(scopes or []), rapport.permissions)
    if expires_days is not None and expires_days < 1:
        raise UserError("expires_days", "must be at least 1 day")
    token = PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    rows = await ApiToken.insert(ApiToken(
        user=user_id,
        name=(name.strip() or "API token")[:100],
        token_hash=token_hash(token),
        prefix=token[:12],
        scopes=json.dumps(cleaned),
        created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
    )).returning(ApiToken.id, ApiToken.name, ApiToken.prefix, ApiToken.expires_at).run()
    return token, rows[0]


async def create_token_for_email(rapport: Rapport, email: str, **kwargs) -> tuple[str, dict]:
    user = await User.select(User.id, User.is_active).where(
        User.email == normalise_email(email)).first().run()
    if user is None:
        raise UserError("user", f"no user with email {normalise_email(email)}")
    if not user["is_active"]:
        raise UserError("user", "this user is deactivated")
    return await create_token(rapport, user["id"], **kwargs)


def restrict(actor: Actor, scopes: list[str], token_id: int | None = None) -> Actor:
    grants = {name: scope for name, scope in actor.grants.items()
              if any(fnmatchcase(name, pattern) for pattern in scopes)}
    keeps_account = any(fnmatchcase(SELF_SERVICE, pattern) for pattern in scopes)
    return replace(actor, grants=grants, token_id=token_id, account_edit=keeps_account)


async def token_actor(rapport: Rapport, token: str) -> Actor | None:
    """The actor a bearer token acts as, or ``None`` if unknown, expired or revoked."""
    if not token.startswith(PREFIX):
        return None
    row = await ApiToken.select().where(ApiToken.token_hash == token_hash(token)).first().run()
    now = datetime.now(UTC)
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    actor = await load_actor(rapport, row["user"])
    if actor is None:
        return None
    if row["last_used_at"] is None or row["last_used_at"] < now - LAST_USED_PRECISION:
        await ApiToken.update({ApiToken.last_used_at: now}).where(ApiToken.id == row["id"]).run()
    return restrict(actor, json.loads(row["scopes"]), row["id"])


async def list_tokens(user_id: int) -> list[dict]:
    rows = await ApiToken.select(
        ApiToken.id, ApiToken.name, ApiToken.prefix, ApiToken.scopes, ApiToken.created_at,
        ApiToken.expires_at, ApiToken.revoked_at, ApiToken.last_used_at,
    ).where(ApiToken.user == user_id).order_by(ApiToken.id, ascending=False).limit(200).run()
    now = datetime.now(UTC)
    for row in rows:
        row["scopes"] = json.loads(row["scopes"])
        row["expired"] = row["expires_at"] is not None and row["expires_at"] <= now
    return rows


async def revoke_token(user_id: int, token_id: int) -> bool:
    """Revoke one of the user's own tokens; ``False`` if it is not theirs or already revoked."""
    rows = await ApiToken.update({ApiToken.revoked_at: datetime.now(UTC)}).where(
        (ApiToken.id == token_id) & (ApiToken.user == user_id)
        & ApiToken.revoked_at.is_null()
    ).returning(ApiToken.id).run()
    return bool(rows)
