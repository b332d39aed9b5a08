"""Signing in to the portal: accepting an invitation, password, magic link, signing out.

These routes are public (mounted under ``/portal``); everything else there needs a portal
session. A single-use link is only spent by a POST, so mail scanners that open links do not
use it up.
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.mail import send_mail
from core.portal.identities import (
    COOKIE,
    PortalError,
    accept_invitation,
    check_password,
    create_login_link,
    end_session,
    invitation,
    note_time_zone,
    start_session,
    use_login_link,
)
from core.portal.middleware import PREFIX, portal_cookie
from core.portal.pages import FormData, render


def safe_portal_next(target: str | None) -> str:
    """After sign-in, only ever go to a portal page."""
    if (not target or not target.startswith(PREFIX + "/") or target.startswith("//")
            or "\\" in target):
        return PREFIX + "/"
    return target


async def _signed_in(request: Request, identity_id: int, target: str,
                     data: dict | None = None) -> Response:
    # The sign-in forms carry the browser's time zone (time-zone.js): times in it from now.
    await note_time_zone(identity_id, (data or {}).get("time_zone"))
    key = await start_session(identity_id)
    secure = request.app.state.rapport.settings.secure_cookies
    return Redirect(safe_portal_next(target), status_code=303,
                    cookies=[portal_cookie(key, secure=secure)])


def _login_context(**extra) -> dict:
    context = {"errors": {}, "email": "", "next": PREFIX + "/", "link_sent": False}
    context.update(extra)
    return context


@get("/login", name="portal-login", opt={"public": True})
async def portal_login_page(request: Request, next: FromQuery[str | None] = None) -> Template:
    return await render(request, "portal/login.html", _login_context(next=safe_portal_next(next)))


@post("/login", opt={"public": True}, status_code=303)
async def portal_login(request: Request, data: FormData) -> Response:
    target = safe_portal_next(data.get("next"))
    try:
        identity_id = await check_password(data.get("email", ""), data.get("password", ""),
                                           client_ip(request), rapport=request.app.state.rapport)
    except PortalError as exc:
        return await render(request, "portal/login.html", _login_context(
            errors={exc.field: exc.message}, email=data.get("email", ""), next=target),
            status_code=400)
    return await _signed_in(request, identity_id, target, data)


@post("/login/link", opt={"public": True})
async def portal_login_link_request(request: Request, data: FormData) -> Template:
    rapport = request.app.state.rapport
    email = data.get("email", "")
    try:
        found = await create_login_link(email, client_ip(request), rapport=rapport)
    except PortalError as exc:
        return await render(request, "portal/login.html", _login_context(
            errors={"link_email": exc.message}, email=email), status_code=429)
    if found is not None:
        _, token = found
        link = f"{rapport.settings.base_url}{PREFIX}/login/link/{token}"
        await send_mail(
            rapport, email.strip().lower(), f"Sign in to {rapport.settings.instance_name}",
            f"Hello,\n\nUse this link to sign in. It works once, for 15 minutes:\n{link}\n\n"
            "If you did not ask for it, you can ignore this message.\n",
        )
    # The same answer whether or not the address is known.
    return await render(request, "portal/login.html", _login_context(link_sent=True))


@get("/login/link/{token:str}", name="portal-login-link", opt={"public": True})
async def portal_login_link_page(request: Request, token: FromPath[str]) -> Template:
    return await render(request, "portal/login_link.html", {"token": token})


@post("/login/link/{token:str}", opt={"public": True}, status_code=303)
async def portal_login_link_use(request: Request, token: FromPath[str],
                                data: FormData) -> Response:
    identity_id = await use_login_link(token)
    if identity_id is None:
        return await render(request, "portal/login.html", _login_context(
            errors={"link_email": "That sign-in link has expired or was already used. "
                                  "Ask for a new one."}), status_code=400)
    return await _signed_in(request, identity_id, PREFIX + "/", data)


@get("/accept/{token:str}", name="portal-accept", opt={"public": True})
async def portal_accept_page(request: Request, token: FromPath[str]) -> Template:
    found = await invitation(token)
    return await render(request, "portal/accept.html",
                        {"token": token, "invitation": found, "errors": {}},
                        status_code=200 if found else 404)


@post("/accept/{token:str}", opt={"public": True}, status_code=303)
async def portal_accept(request: Request, token: FromPath[str], data: FormData) -> Response:
    try:
        identity_id = await accept_invitation(token, data.get("password", ""),
                                              data.get("confirm", ""))
    except PortalError as exc:
        found = await invitation(token)
        return await render(request, "portal/accept.html", {
            "token": token, "invitation": found, "errors": {exc.field: exc.message},
        }, status_code=400)
    return await _signed_in(request, identity_id, PREFIX + "/", data)


@post("/logout", opt={"permission": "core.portal.use"}, status_code=303)
async def portal_logout(request: Request) -> Response:
    key = request.cookies.get(COOKIE)
    if key:
        await end_session(key)
    response = Redirect(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


ROUTES = [portal_login_page, portal_login, portal_login_link_request, portal_login_link_page,
          portal_login_link_use, portal_accept_page, portal_accept, portal_logout]
