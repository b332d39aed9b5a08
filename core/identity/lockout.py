"""Login rate limiting and temporary lockout, kept in the database so that every worker
(and every server behind a load balancer) sees the same counts.

- An account is locked for :data:`LOCKOUT` after :data:`MAX_FAILURES` consecutive failures
  (``core_user.failed_logins`` / ``locked_until``). Unknown addresses are counted in
  ``core_login_attempt`` and answered the same way, so a lockout reveals no account.
- One IP address may fail at most :data:`MAX_FAILURES_PER_IP` times per :data:`IP_WINDOW`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core import audit
from core.identity.tables import LoginAttempt, User
from core.permissions import Actor

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_FAILURES_PER_IP = 30
IP_WINDOW = timedelta(minutes=15)


def now() -> datetime:
    return datetime.now(UTC)


async def ip_is_throttled(ip: str) -> bool:
    if not ip:
        return False
    failures = await LoginAttempt.count().where(
        (LoginAttempt.ip == ip[:64])
        & (LoginAttempt.succeeded == False)  # noqa: E712 (Piccolo builds SQL from ==)
        & (LoginAttempt.attempted_at > now() - IP_WINDOW)
    ).run()
    return failures >= MAX_FAILURES_PER_IP


async def locked_for(email: str, user: dict | None) -> timedelta | None:
    """How much longer ``email`` stays locked, or ``None``."""
    if user is not None:
        until = user.get("locked_until")
        if until is not None and until > now():
            return until - now()
        return None
    recent = await LoginAttempt.select(LoginAttempt.attempted_at).where(
        (LoginAttempt.email == email[:254])
        & (LoginAttempt.succeeded == False)  # noqa: E712
        & (LoginAttempt.attempted_at > now() - LOCKOUT)
    ).order_by(LoginAttempt.attempted_at, ascending=False).limit(MAX_FAILURES).run()
    if len(recent) >= MAX_FAILURES:
        return recent[-1]["attempted_at"] + LOCKOUT - now()
    return None


async def note_attempt(email: str, ip: str, succeeded: bool) -> None:
    # Old attempts count for nothing; dropping them keeps the table small (indexed delete).
    await LoginAttempt.delete().where(LoginAttempt.attempted_at < now() - timedelta(days=1)).run()
    await LoginAttempt.insert(LoginAttempt(attempted_at=now(), email=email[:254], ip=ip[:64],
                                           succeeded=succeeded)).run()


async def note_failure(email: str, ip: str, user_id: int | None, reason: str) -> bool:
    """Record a failed sign-in; lock the account on the last allowed failure. Returns whether
    this failure locked it."""
    await note_attempt(email, ip, succeeded=False)
    who = Actor(kind="anonymous", email=email)
    await audit.record(who, "login_failed", "core_user", user_id or "", summary=reason, ip=ip)
    if user_id is None:
        return False
    # One atomic UPDATE, so two workers failing at once both count.
    rows = await User.update({User.failed_logins: User.failed_logins + 1}).where(
        User.id == user_id).returning(User.failed_logins).run()
    if rows and rows[0]["failed_logins"] >= MAX_FAILURES:
        await User.update({User.failed_logins: 0, User.locked_until: now() + LOCKOUT}).where(
            User.id == user_id).run()
        await audit.record(who, "lockout", "core_user", user_id,
                           summary=f"locked for {int(LOCKOUT.total_seconds() // 60)} minutes "
                                   f"after {MAX_FAILURES} failed sign-ins", ip=ip)
        return True
    return False


async def note_success(email: str, ip: str, user_id: int) -> None:
    await note_attempt(email, ip, succeeded=True)
    await User.update({User.failed_logins: 0, User.locked_until: None,
                       User.last_login_at: now()}).where(User.id == user_id).run()


async def clear_lockout(user_id: int) -> None:
    await User.update({User.failed_logins: 0, User.locked_until: None}).where(
        User.id == user_id).run()


async def unlock(admin: Actor, user_id: int, *, ip: str = "") -> bool:
    """An administrator lifts a lockout before it runs out (audited as ``unlock``, naming
    until when it would have lasted). Returns ``False`` when the account was not locked."""
    async with User._meta.db.transaction():
        row = await User.select(User.locked_until, User.failed_logins).where(
            User.id == user_id).first().run()
        if row is None or row["locked_until"] is None or row["locked_until"] <= now():
            return False
        await clear_lockout(user_id)
        await audit.record(admin, "unlock", "core_user", user_id,
                           {"locked_until": [row["locked_until"].isoformat(), None]},
                           summary="account unlocked by an administrator", ip=ip)
    return True


def minutes(delta: timedelta) -> int:
    return max(1, int((delta.total_seconds() + 59) // 60))
