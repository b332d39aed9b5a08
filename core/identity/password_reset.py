"""Password reset by a single-use link that expires after an hour.

Only the SHA-256 of the link's token is stored. "Forgot password" answers the same whether
or not the address belongs to an account, so it cannot be used to find out who works here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Response, Template

from core import audit, rate_limits
from core.audit import client_ip
from core.identity.tables import PasswordReset, User
from core.identity.users import UserError, normalise_email, set_password
from core.mail import send_mail
from core.permissions import Actor

LIFETIME = timedelta(hours=1)
MAX_LINKS_PER_HOUR = 3
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
SENT = ("If an account exists for that address, we have sent it a link to choose a new "
        "password. The link works once, within an hour.")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def request_reset(rapport, email: str, ip: str = "") -> None:
    """Mail a reset link to an active user with this address; silently nothing otherwise."""
    email = normalise_email(email)
    user = await User.select(User.id, User.name, User.email).where(
        (User.email == email) & (User.is_active == True)  # noqa: E712
    ).first().run()
    if user is None:
        return
    now = datetime.now(UTC)
    # A few links an hour is plenty; more would let anyone flood a colleague's inbox. Counted
    # atomically before sending, so parallel requests cannot all pass.
    if not await rate_limits.allow(rapport, "password-reset", str(user["id"]),
                                   MAX_LINKS_PER_HOUR, LIFETIME):
        return
    token = secrets.token_urlsafe(32)
    await PasswordReset.insert(PasswordReset(user=user["id"], token_hash=_hash(token),
                                             created_at=now, expires_at=now + LIFETIME)).run()
    link = f"{rapport.settings.base_url}/password/reset/{token}"
    name = rapport.settings.instance_name
    await send_mail(
        rapport, user["email"], f"Reset your {name} password",
        f"Hello {user['name']},\n\nSomeone (hopefully you) asked to reset your {name} "
        f"password. Choose a new one here within the next hour:\n\n{link}\n\n"
        "The link works once. If you did not ask for this, ignore this message: your "
        "password stays as it is.\n",
    )
    await audit.record(Actor(kind="anonymous", email=email), "password_reset_requested",
                       "core_user", user["id"], ip=ip)


async def valid_reset(token: str) -> dict | None:
    return await PasswordReset.select(PasswordReset.id, PasswordReset.user).where(
        (PasswordReset.token_hash == _hash(token)) & PasswordReset.used_at.is_null()
        & (PasswordReset.expires_at > datetime.now(UTC))
    ).first().run()


async def use_reset(token: str, password: str) -> int | None:
    """Set the new password if the link is still good; return the user id, or ``None``.

    Marking the link used is one conditional UPDATE, so two workers cannot both use it.
    Raises :class:`UserError` for a password the policy refuses (the link stays usable).
    """
    from core.identity.passwords import password_problem

    if problem := password_problem(password):
        raise UserError("password", problem)
    async with PasswordReset._meta.db.transaction():
        rows = await PasswordReset.update({PasswordReset.used_at: datetime.now(UTC)}).where(
            (PasswordReset.token_hash == _hash(token)) & PasswordReset.used_at.is_null()
            & (PasswordReset.expires_at > datetime.now(UTC))
        ).returning(PasswordReset.user).run()
        if not rows:
            return None
        user_id = rows[0]["user"]
        await set_password(user_id, password)
        # Any other outstanding link for this user is now pointless: retire it too.
        await PasswordReset.update({PasswordReset.used_at: datetime.now(UTC)}).where(
            (PasswordReset.user == user_id) & PasswordReset.used_at.is_null()).run()
    return user_id



@get("/password/forgot", opt={"public": True})
async def forgot_page() -> Template:
    return Template("identity/forgot.html", context={"sent": False})


@post("/password/forgot", opt={"public": True}, status_code=200)
async def forgot(request: Request, data: Form) -> Template:
    await request_reset(request.app.state.rapport, data.get("email", ""), ip=client_ip(request))
    return Template("identity/forgot.html", context={"sent": True, "message": SENT})


@get("/password/reset/{token:str}", opt={"public": True})
async def reset_page(token: FromPath[str]) -> Template:
    ok = await valid_reset(token) is not None
    return Template("identity/reset.html", status_code=200 if ok else 410,
                    context={"token": token, "valid": ok, "errors": {}})


@post("/password/reset/{token:str}", opt={"public": True}, status_code=303)
async def reset(request: Request, token: FromPath[str], data: Form) -> Response:
    password = data.get("password", "")
    errors: dict[str, str] = {}
    user_id = None
    if password != data.get("confirm", ""):
        errors["confirm"] = "The two passwords differ."
    else:
        try:
            user_id = await use_reset(token, password)
        except UserError as exc:
            errors["password"] = f"The password {exc.message}."
    if errors:
        return Template("identity/reset.html", status_code=400,
                        context={"token": token, "valid": True, "errors": errors})
    if user_id is None:
        return Template("identity/reset.html", status_code=410,
                        context={"token": token, "valid": False, "errors": {}})
    await audit.record(Actor(kind="anonymous"), "password_reset", "core_user", user_id,
                       ip=client_ip(request))
    return Redirect("/login?notice=reset", status_code=303)


ROUTES = [forgot_page, forgot, reset_page, reset]
