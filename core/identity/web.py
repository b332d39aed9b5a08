"""Signing in (password, then the two-factor code when enrolled) and out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Response, Template

from core import audit, local_time
from core.audit import client_ip
from core.identity import lockout, two_factor
from core.identity.middleware import session_cookie
from core.identity.passwords import DUMMY_HASH, verify_password
from core.identity.sessions import (
    COOKIE,
    end_session,
    pending_session_user_id,
    start_session,
)
from core.identity.tables import User
from core.identity.users import load_actor, normalise_email

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
WRONG = "Wrong email or password."


def safe_next(target: str | None) -> str:
    """Only ever redirect within this site after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target



def _login_page(target: str, email: str, error: str | None, status: int = 200,
                notice: str | None = None) -> Template:
    return Template("identity/login.html", status_code=status,
                    context={"next": target, "error": error, "email": email, "notice": notice})


@get("/login", name="login", opt={"public": True})
async def login_page(request: Request, next: FromQuery[str | None] = None,
                     notice: FromQuery[str | None] = None) -> Template:
    notices = {"reset": "Your password has been changed. Sign in with the new one.",
               "password": "Your password has been changed. Sign in again."}
    return _login_page(safe_next(next), "", None, notice=notices.get(notice or ""))


async def _signed_in(request: Request, user_id: int, target: str) -> Response:
    """Start a fresh session (never reuse the key the browser came with) and audit it."""
    old = request.cookies.get(COOKIE)
    if old:
        await end_session(old)
    key = await start_session(user_id, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent", ""))
    rapport = request.app.state.rapport
    actor = await load_actor(rapport, user_id)
    await audit.record(actor, "login", "core_user", user_id, ip=client_ip(request))
    return Redirect(target, status_code=303,
                    cookies=[session_cookie(key, secure=rapport.settings.secure_cookies)])


async def _browser_defaults(user_id: int, data: dict[str, str]) -> None:
    """A user who has not chosen a time zone or locale gets their browser's (sent by
    time-zone.js in hidden sign-in fields); a choice made in My account is never replaced."""
    zone = local_time.valid_zone(data.get("time_zone"))
    locale = local_time.browser_locale(data.get("locale"))
    if zone:
        await User.update({User.time_zone: zone}).where(
            (User.id == user_id) & (User.time_zone == "")).run()
    if locale:
        await User.update({User.locale: locale}).where(
            (User.id == user_id) & (User.locale == "")).run()


@post("/login", opt={"public": True}, status_code=303)
async def login(request: Request, data: Form) -> Response:
    email = normalise_email(data.get("email", ""))
    password = data.get("password", "")
    target = safe_next(data.get("next"))
    ip = client_ip(request)
    rapport = request.app.state.rapport
    if not await lockout.reserve_ip(rapport, ip):
        return _login_page(target, email, "Too many sign-in attempts from your network. "
                           "Wait a few minutes, then try again.", status=429)
    user = await User.select(User.id, User.password_hash, User.is_active, User.locked_until,
                             User.totp_enabled).where(User.email == email).first().run()
    locked, number = await lockout.reserve_account(rapport, email, user)
    if locked is not None:
        # Even the right password waits: otherwise the lockout would not stop guessing.
        await lockout.note_attempt(email, ip, succeeded=False)
        return _login_page(target, email, _locked_message(locked), status=429)
    ok = verify_password(user["password_hash"] if user else DUMMY_HASH, password)
    if not user or not ok or not user["is_active"]:
        reason = "unknown email" if not user else (
            "wrong password" if not ok else "inactive account")
        if await lockout.note_failure(email, ip, user["id"] if user else None, reason,
                                      number=number):
            return _login_page(target, email, _locked_message(lockout.LOCKOUT), status=429)
        return _login_page(target, email, WRONG, status=400)
    await lockout.note_success(rapport, email, ip, user["id"])
    await _browser_defaults(user["id"], data)
    if user["totp_enabled"]:
        key = await start_session(user["id"], ip=ip, pending_second_factor=True,
                                  user_agent=request.headers.get("user-agent", ""))
        rapport = request.app.state.rapport
        return Redirect(f"/login/verify?{urlencode({'next': target})}", status_code=303,
                        cookies=[session_cookie(key, secure=rapport.settings.secure_cookies)])
    return await _signed_in(request, user["id"], target)


def _locked_message(remaining) -> str:
    return (f"Too many failed sign-in attempts. This account is locked for "
            f"{lockout.minutes(remaining)} more minute(s); try again later or reset your "
            "password.")


@get("/login/verify", opt={"public": True})
async def verify_page(request: Request, next: FromQuery[str | None] = None) -> Response:
    key = request.cookies.get(COOKIE)
    if not key or await pending_session_user_id(key) is None:
        return Redirect("/login", status_code=303)
    return Template("identity/verify.html", context={"next": safe_next(next), "error": None})


@post("/login/verify", opt={"public": True}, status_code=303)
async def verify(request: Request, data: Form) -> Response:
    target = safe_next(data.get("next"))
    key = request.cookies.get(COOKIE)
    user_id = await pending_session_user_id(key) if key else None
    if user_id is None:
        return Redirect("/login", status_code=303)
    user = await User.select(User.email, User.totp_secret, User.locked_until).where(
        User.id == user_id).first().run()
    ip = client_ip(request)
    locked, number = await lockout.reserve_account(request.app.state.rapport, user["email"],
                                                   {"id": user_id})
    if locked is not None:
        await end_session(key)
        return _login_page(target, user["email"], _locked_message(locked), status=429)
    if not await two_factor.use_code(user_id, data.get("code", "")):
        # Wrong codes count towards the lockout like wrong passwords: 6 digits are guessable.
        if await lockout.note_failure(user["email"], ip, user_id, "wrong two-factor code",
                                      number=number):
            await end_session(key)
            return _login_page(target, user["email"], _locked_message(lockout.LOCKOUT),
                               status=429)
        return Template("identity/verify.html", status_code=400,
                        context={"next": target, "error": "That code is not right. Use the "
                                 "current code from your authenticator app."})
    await lockout.clear_lockout(user_id)
    return await _signed_in(request, user_id, target)


@post("/logout", opt={"permission": "authenticated"}, status_code=303)
async def logout(request: Request) -> Response:
    key = request.cookies.get(COOKIE)
    if key:
        await end_session(key)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
