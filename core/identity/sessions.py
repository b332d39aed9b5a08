"""Server-side staff sessions. The cookie carries a random key; the database keeps its hash,
so a leaked database backup does not hand out live sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from core.identity.tables import StaffSession

COOKIE = "rapport_session"
LIFETIME = timedelta(days=14)
# Between the password and the two-factor code: long enough to open an authenticator app.
SECOND_FACTOR_LIFETIME = timedelta(minutes=10)
PURGE_BATCH = 5000  # expired rows deleted per statement


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def start_session(user_id: int, ip: str = "", user_agent: str = "", *,
                        pending_second_factor: bool = False) -> str:
    """A new random session key (a fresh one at every sign-in, so a planted key is useless)."""
    key = secrets.token_urlsafe(32)
    lifetime = SECOND_FACTOR_LIFETIME if pending_second_factor else LIFETIME
    await StaffSession.insert(
        StaffSession(
            key_hash=_hash(key),
            user=user_id,
            expires_at=datetime.now(UTC) + lifetime,
            ip=ip[:64],
            user_agent=user_agent[:300],
            pending_second_factor=pending_second_factor,
        )
    ).run()
    return key


async def _session_user(key: str, *, pending: bool) -> int | None:
    row = await StaffSession.select(
        StaffSession.user, StaffSession.expires_at, StaffSession.pending_second_factor
    ).where(StaffSession.key_hash == _hash(key)).first().run()
    if row is None or row["expires_at"] <= datetime.now(UTC):
        return None
    if bool(row["pending_second_factor"]) != pending:
        return None
    return row["user"]


async def session_user_id(key: str) -> int | None:
    """The signed-in user of a session key; ``None`` if unknown, expired or still owing the
    two-factor code."""
    return await _session_user(key, pending=False)


async def pending_session_user_id(key: str) -> int | None:
    """The user who gave the right password and still owes the two-factor code."""
    return await _session_user(key, pending=True)


async def end_session(key: str) -> None:
    await StaffSession.delete().where(StaffSession.key_hash == _hash(key)).run()


async def end_all_sessions(user_id: int) -> None:
    await StaffSession.delete().where(StaffSession.user == user_id).run()


async def end_expired_sessions(*, batch: int = PURGE_BATCH, max_batches: int = 20) -> int:
    """Delete expired session rows in bounded batches (a large backlog never holds one long
    lock; the next round continues). Returns how many were deleted."""
    deleted = 0
    for _ in range(max_batches):
        expired = await StaffSession.select(StaffSession.id).where(
            StaffSession.expires_at <= datetime.now(UTC)).limit(batch).run()
        if not expired:
            break
        await StaffSession.delete().where(
            StaffSession.id.is_in([r["id"] for r in expired])).run()
        deleted += len(expired)
        if len(expired) < batch:
            break
    return deleted
