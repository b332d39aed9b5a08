"""Signing in and out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Response, Template

from core.identity.middleware import session_cookie
from core.identity.passwords import DUMMY_HASH, verify_password
from core.identity.sessions import COOKIE, end_session, start_session
from core.identity.tables import User
from core.identity.users import normalise_email


def safe_next(target: str | None) -> str:
    """Only ever redirect within this site after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@get("/login", name="login", opt={"public": True})
async def login_page(
    request: Request, next: FromQuery[str | None] = None
) -> Template:
    return Template("identity/login.html", context={"next": safe_next(next), "error": None,
                                                     "email": ""})


@post("/login", opt={"public": True}, status_code=303)
async def login(
    request: Request,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response:
    email = normalise_email(data.get("email", ""))
    password = data.get("password", "")
    target = safe_next(data.get("next"))
    user = await User.select(User.id, User.password_hash, User.is_active).where(
        User.email == email).first().run()
    ok = verify_password(user["password_hash"] if user else DUMMY_HASH, password)
    if not user or not ok or not user["is_active"]:
        return Template(
            "identity/login.html",
            context={"next": target, "error": "Wrong email or password.", "email": email},
            status_code=400,
        )
    await User.update({User.last_login_at: datetime.now(UTC), User.failed_logins: 0}).where(
        User.id == user["id"]).run()
    key = await start_session(user["id"], ip=request.client.host if request.client else "",
                              user_agent=request.headers.get("user-agent", ""))
    rapport = request.app.state.rapport
    return Redirect(target, status_code=303,
                    cookies=[session_cookie(key, secure=rapport.settings.secure_cookies)])


@post("/logout", opt={"permission": "authenticated"}, status_code=303)
async def logout(request: Request) -> Response:
    key = request.cookies.get(COOKIE)
    if key:
        await end_session(key)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
