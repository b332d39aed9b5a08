"""Server-side staff sessions. The cookie carries a random key; the database keeps its hash,
so a leaked database backup does not hand out live sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from core.identity.tables import StaffSession

COOKIE = "rapport_session"
LIFETIME = timedelta(days=14)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def start_session(user_id: int, ip: str = "", user_agent: str = "") -> str:
    key = secrets.token_urlsafe(32)
    await StaffSession.insert(
        StaffSession(
            key_hash=_hash(key),
            user=user_id,
            expires_at=datetime.now(UTC) + LIFETIME,
            ip=ip[:64],
            user_agent=user_agent[:300],
        )
    ).run()
    return key


async def session_user_id(key: str) -> int | None:
    row = await StaffSession.select(StaffSession.user, StaffSession.expires_at).where(
        StaffSession.key_hash == _hash(key)).first().run()
    if row is None or row["expires_at"] <= datetime.now(UTC):
        return None
    return row["user"]


async def end_session(key: str) -> None:
    await StaffSession.delete().where(StaffSession.key_hash == _hash(key)).run()


async def end_all_sessions(user_id: int) -> None:
    await StaffSession.delete().where(StaffSession.user == user_id).run()
