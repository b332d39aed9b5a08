"""Login rate limiting and temporary lockout, kept in the database so that every worker
(and every server behind a load balancer) sees the same counts.

- An account is locked for :data:`LOCKOUT` after :data:`MAX_FAILURES` consecutive failures
  (``core_user.failed_logins`` / ``locked_until``). Unknown addresses are counted in
  ``core_login_attempt`` and answered the same way, so a lockout reveals no account.
- One IP address may fail at most :data:`MAX_FAILURES_PER_IP` times per :data:`IP_WINDOW`.

Each attempt is counted *before* the password or code is checked, atomically
(:mod:`core.rate_limits`, a conditional ``UPDATE ... RETURNING``), so parallel guesses cannot
all pass a check made before any of them is recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core import audit, rate_limits
from core.identity.tables import LoginAttempt, User
from core.permissions import Actor

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_FAILURES_PER_IP = 30
IP_WINDOW = timedelta(minutes=15)


def now() -> datetime:
    return datetime.now(UTC)


async def reserve_ip(rapport, ip: str) -> bool:
    """Reserve one of the address's failures before checking anything (atomic, so parallel
    guesses cannot all pass); ``False`` when the address is throttled. A successful sign-in
    gives its reservation back (:func:`note_success`)."""
    return await rate_limits.allow(rapport, "login-ip", ip[:64], MAX_FAILURES_PER_IP, IP_WINDOW)


async def reserve_account(rapport, email: str, user: dict | None) -> tuple[timedelta | None, int]:
    """Count this attempt against the account before its password or code is checked:
    ``(how much longer it stays locked, None when not locked; the attempt's number)``.

    One atomic UPDATE (or counter) per attempt, so of 16 parallel guesses only the first
    :data:`MAX_FAILURES` are checked at all; the rest are answered as locked. A success resets
    the count (:func:`note_success`), a failure numbered :data:`MAX_FAILURES` locks."""
    if user is None:
        # Unknown addresses are counted and answered the same way, so a lockout reveals no
        # account.
        number = await rate_limits.hit(rapport, "login-email", email[:254], LOCKOUT)
        if number > MAX_FAILURES:
            return LOCKOUT, number
        return None, number
    rows = await User.update({User.failed_logins: User.failed_logins + 1}).where(
        (User.id == user["id"]) & (User.locked_until.is_null() | (User.locked_until <= now()))
    ).returning(User.failed_logins).run()
    if not rows:
        until = await User.select(User.locked_until).where(User.id == user["id"]).first().run()
        remaining = (until or {}).get("locked_until")
        return (remaining - now() if remaining and remaining > now() else LOCKOUT), 0
    number = int(rows[0]["failed_logins"])
    if number > MAX_FAILURES:
        return LOCKOUT, number
    return None, number


async def note_attempt(email: str, ip: str, succeeded: bool) -> None:
    # Old attempts count for nothing; dropping them keeps the table small (indexed delete).
    await LoginAttempt.delete().where(LoginAttempt.attempted_at < now() - timedelta(days=1)).run()
    await LoginAttempt.insert(LoginAttempt(attempted_at=now(), email=email[:254], ip=ip[:64],
                                           succeeded=succeeded)).run()


async def note_failure(email: str, ip: str, user_id: int | None, reason: str, *,
                       number: int) -> bool:
    """Record a failed sign-in whose attempt :func:`reserve_account` numbered ``number``; the
    failure numbered :data:`MAX_FAILURES` locks the account. Returns whether it is locked."""
    await note_attempt(email, ip, succeeded=False)
    who = Actor(kind="anonymous", email=email)
    await audit.record(who, "login_failed", "core_user", user_id or "", summary=reason, ip=ip)
    if number < MAX_FAILURES:
        return False
    if user_id is None:
        return True
    await User.update({User.failed_logins: 0, User.locked_until: now() + LOCKOUT}).where(
        User.id == user_id).run()
    await audit.record(who, "lockout", "core_user", user_id,
                       summary=f"locked for {int(LOCKOUT.total_seconds() // 60)} minutes "
                               f"after {MAX_FAILURES} failed sign-ins", ip=ip)
    return True


async def note_success(rapport, email: str, ip: str, user_id: int) -> None:
    await note_attempt(email, ip, succeeded=True)
    await rate_limits.give_back(rapport, "login-ip", ip[:64], IP_WINDOW)
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
