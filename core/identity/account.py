"""A staff user's own account: password, two-factor authentication and API tokens.

These pages refuse requests authenticated by an API token: a token must never be able to
change its user's password or mint itself wider tokens.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Response, Template

from core import audit, local_time
from core.audit import client_ip
from core.identity import two_factor
from core.identity.middleware import session_cookie, signed_in_by_token
from core.identity.passwords import verify_password
from core.identity.sessions import start_session
from core.identity.tables import User
from core.identity.tokens import create_token, list_tokens, revoke_token
from core.identity.users import UserError, set_password
from core.permissions import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
SIGNED_IN = {"permission": "authenticated"}


def _me(request: Request):
    if signed_in_by_token(request.scope):
        raise PermissionDeniedException("account pages cannot be used with an API token")
    return current_actor(request)



async def _account_context(actor, **extra) -> dict:
    row = await User.select(User.totp_enabled, User.time_zone, User.locale).where(
        User.id == actor.id).first().run()
    context = {"me": actor, "totp_enabled": bool(row and row["totp_enabled"]), "errors": {},
               "notice": None, "time_zones": local_time.time_zones(),
               "locales": local_time.LOCALES, "instance_zone": local_time.instance_zone(),
               "prefs": {"time_zone": (row or {}).get("time_zone") or "",
                         "locale": (row or {}).get("locale") or ""}}
    context.update(extra)
    return context


@get("/account", name="account", opt=SIGNED_IN)
async def account_page(request: Request) -> Template:
    actor = _me(request)
    notice = {"password": "Your password has been changed; other devices were signed out.",
              "2fa-on": "Two-factor authentication is on.",
              "2fa-off": "Two-factor authentication is off.",
              "preferences": "Your time zone and locale are saved: times are shown in it."}.get(request.query_params.get("done", ""))
    return Template("identity/account.html", context=await _account_context(actor, notice=notice))


@post("/account/password", opt=SIGNED_IN, status_code=303)
async def change_password(request: Request, data: Form) -> Response:
    actor = _me(request)
    row = await User.select(User.password_hash).where(User.id == actor.id).first().run()
    errors: dict[str, str] = {}
    if not verify_password(row["password_hash"], data.get("current", "")):
        errors["current"] = "This is not your current password."
    elif data.get("password", "") != data.get("confirm", ""):
        errors["confirm"] = "The two new passwords differ."
    else:
        try:
            await set_password(actor.id, data.get("password", ""))
        except UserError as exc:
            errors["password"] = f"The new password {exc.message}."
    if errors:
        return Template("identity/account.html", status_code=400,
                        context=await _account_context(actor, errors=errors))
    await audit.record(actor, "password_change", "core_user", actor.id, ip=client_ip(request))
    # Every session ended with the change; this browser continues on a fresh one.
    key = await start_session(actor.id, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent", ""))
    rapport = request.app.state.rapport
    return Redirect("/account?done=password", status_code=303,
                    cookies=[session_cookie(key, secure=rapport.settings.secure_cookies)])


@post("/account/preferences", opt=SIGNED_IN, status_code=303)
async def save_preferences(request: Request, data: Form) -> Response:
    """The time zone times are shown and typed in, and the locale (empty: the instance's)."""
    actor = _me(request)
    zone, locale = data.get("time_zone", "").strip(), data.get("locale", "").strip()
    errors: dict[str, str] = {}
    if zone and not local_time.valid_zone(zone):
        errors["time_zone"] = "Choose a time zone from the list, like Europe/Berlin."
    if locale and not local_time.valid_locale(locale):
        errors["locale"] = "Choose a locale from the list."
    if errors:
        return Template("identity/account.html", status_code=400,
                        context=await _account_context(actor, errors=errors))
    before = await User.select(User.time_zone, User.locale).where(
        User.id == actor.id).first().run()
    await User.update({User.time_zone: zone, User.locale: locale}).where(
        User.id == actor.id).run()
    changes = {k: [before[k], v] for k, v in (("time_zone", zone), ("locale", locale))
               if before[k] != v}
    if changes:
        await audit.record(actor, "update", "core_user", actor.id, changes=changes,
                           summary="time zone and locale", ip=client_ip(request))
    return Redirect("/account?done=preferences", status_code=303)


# --- two-factor ------------------------------------------------------------------------------


async def _enrolment(request: Request, actor, secret: str, error: str | None = None,
                     status: int = 200) -> Template:
    rapport = request.app.state.rapport
    uri = two_factor.provisioning_uri(secret, actor.email, rapport.settings.instance_name)
    return Template("identity/two_factor.html", status_code=status, context={
        "secret": secret, "uri": uri, "qr": two_factor.qr_svg_data_uri(uri), "error": error})


@post("/account/two-factor", opt=SIGNED_IN, status_code=200)
async def start_two_factor(request: Request) -> Response:
    actor = _me(request)
    row = await User.select(User.totp_enabled).where(User.id == actor.id).first().run()
    if row["totp_enabled"]:
        return Redirect("/account", status_code=303)
    secret = await two_factor.start_enrolment(actor.id)
    return await _enrolment(request, actor, secret)


@post("/account/two-factor/confirm", opt=SIGNED_IN, status_code=303)
async def confirm_two_factor(request: Request, data: Form) -> Response:
    actor = _me(request)
    if await two_factor.confirm(actor.id, data.get("code", "")):
        await audit.record(actor, "two_factor_enabled", "core_user", actor.id, ip=client_ip(request))
        return Redirect("/account?done=2fa-on", status_code=303)
    row = await User.select(User.totp_secret, User.totp_enabled).where(
        User.id == actor.id).first().run()
    if not row["totp_secret"] or row["totp_enabled"]:
        return Redirect("/account", status_code=303)
    return await _enrolment(request, actor, row["totp_secret"], status=400,
                            error="That code is not right. Enter the current 6-digit code.")


@post("/account/two-factor/disable", opt=SIGNED_IN, status_code=303)
async def disable_two_factor(request: Request, data: Form) -> Response:
    actor = _me(request)
    if await two_factor.disable(actor.id, data.get("code", "")):
        await audit.record(actor, "two_factor_disabled", "core_user", actor.id, ip=client_ip(request))
        return Redirect("/account?done=2fa-off", status_code=303)
    return Template("identity/account.html", status_code=400, context=await _account_context(
        actor, errors={"disable_code": "That code is not right; two-factor stays on."}))


# --- API tokens ------------------------------------------------------------------------------


async def _tokens_page(request: Request, actor, **extra) -> Template:
    rapport = request.app.state.rapport
    context = {"tokens": await list_tokens(actor.id), "new_token": None, "errors": {},
               "form": {}, "permissions": sorted(actor.grants)}
    context.update(extra)
    status = 400 if context["errors"] else 200
    context["prefixes"] = sorted({p.rsplit(".", 1)[0] + ".*" for p in rapport.permissions})
    return Template("identity/tokens.html", context=context, status_code=status)


@get("/account/tokens", name="account-tokens", opt=SIGNED_IN)
async def tokens_page(request: Request) -> Template:
    return await _tokens_page(request, _me(request))


@post("/account/tokens", opt=SIGNED_IN, status_code=200)
async def create_token_page(request: Request, data: Form) -> Template:
    actor = _me(request)
    rapport = request.app.state.rapport
    scopes = (data.get("scopes") or "*").replace(",", " ").split()
    days = (data.get("expires_days") or "").strip()
    try:
        expires = int(days) if days else None
    except ValueError:
        return await _tokens_page(request, actor, form=data,
                                  errors={"expires_days": "Enter a whole number of days."})
    try:
        token, row = await create_token(rapport, actor.id, name=data.get("name", ""),
                                        scopes=scopes, expires_days=expires)
    except UserError as exc:
        return await _tokens_page(request, actor, form=data, errors={exc.field: exc.message})
    await audit.record(actor, "token_create", "core_api_token", row["id"],
                       summary=f"{row['name']} ({row['prefix']}…) scopes {' '.join(scopes)}",
                       ip=client_ip(request))
    return await _tokens_page(request, actor, new_token=token)


@post("/account/tokens/{token_id:int}/revoke", opt=SIGNED_IN, status_code=303)
async def revoke_token_page(request: Request, token_id: FromPath[int]) -> Response:
    actor = _me(request)
    if await revoke_token(actor.id, token_id):
        await audit.record(actor, "token_revoke", "core_api_token", token_id, ip=client_ip(request))
    return Redirect("/account/tokens", status_code=303)


ROUTES = [account_page, change_password, save_preferences, start_two_factor, confirm_two_factor,
          disable_two_factor, tokens_page, create_token_page, revoke_token_page]
