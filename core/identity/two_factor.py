"""Optional TOTP two-factor authentication (RFC 6238, as authenticator apps implement it)."""

from __future__ import annotations

import hmac
import time

import pyotp

from core.identity.tables import User


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def code_is_valid(secret: str | None, code: str) -> bool:
    """Accept the current code and its neighbours (30 s each way) for clock drift."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not secret or len(code) != 6:
        return False
    return pyotp.TOTP(secret).verify(code, valid_window=1)


def matching_step(secret: str | None, code: str, at: float | None = None) -> int | None:
    """The time step (``unix time // 30``) whose code ``code`` is: the current one or a
    neighbour (clock drift), else ``None``."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not secret or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    step = int((time.time() if at is None else at) // totp.interval)
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


async def use_code(user_id: int, code: str, at: float | None = None) -> bool:
    """Accept a code for signing in at most once: its time step must be later than the last
    one this user signed in with (RFC 6238 section 5.2), so a code seen over someone's
    shoulder or in a proxy log cannot be replayed within its window. The step is claimed with
    one conditional UPDATE, so two workers racing with the same code cannot both win."""
    row = await User.select(User.totp_secret).where(User.id == user_id).first().run()
    step = matching_step(row["totp_secret"] if row else None, code, at)
    if step is None:
        return False
    claimed = await User.update({User.totp_last_step: step}).where(
        (User.id == user_id)
        & (User.totp_last_step.is_null() | (User.totp_last_step < step))
    ).returning(User.id).run()
    return bool(claimed)


def qr_svg_data_uri(uri: str) -> str | None:
    """The otpauth URI as an SVG QR code (a data: image the CSP allows), if segno is present."""
    try:
        import segno
    except ImportError:  # the secret and URI are shown as text anyway
        return None
    return segno.make(uri, error="m").svg_data_uri(scale=4)


async def start_enrolment(user_id: int) -> str:
    """Keep a fresh secret for the user, not yet enabled until confirmed with a code."""
    secret = new_secret()
    await User.update({User.totp_secret: secret, User.totp_enabled: False,
                       User.totp_last_step: None}).where(User.id == user_id).run()
    return secret


async def confirm(user_id: int, code: str) -> bool:
    row = await User.select(User.totp_secret).where(User.id == user_id).first().run()
    if not row or not code_is_valid(row["totp_secret"], code):
        return False
    await User.update({User.totp_enabled: True}).where(User.id == user_id).run()
    return True


async def disable(user_id: int, code: str) -> bool:
    row = await User.select(User.totp_secret, User.totp_enabled).where(
        User.id == user_id).first().run()
    if not row or not row["totp_enabled"] or not code_is_valid(row["totp_secret"], code):
        return False
    await User.update({User.totp_secret: None, User.totp_enabled: False}).where(
        User.id == user_id).run()
    return True
