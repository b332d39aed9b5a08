"""The public ends of the links in campaign e-mails (no sign-in; the signed token is the
key): one-click unsubscribe (RFC 8058), the opens pixel and click redirects.

``GET /campaigns/u/<token>`` asks for confirmation (link checkers that open every URL must
not unsubscribe anyone); ``POST`` to the same address unsubscribes at once: it is what the
recipient's button sends and what a mail client sends for ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click``, so it is exempt from CSRF (it carries no cookie).
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.audit import client_ip
from plugins.campaigns import tracking

PUBLIC = {"public": True}
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@get("/campaigns/u/{token:str}", opt=PUBLIC, name="campaigns-unsubscribe-ask")
async def unsubscribe_ask(request: Request, token: FromPath[str]) -> Template:
    message = await tracking.message_for(request.app.state.rapport, token)
    if message is None:
        raise NotFoundException("This unsubscribe link is not valid.")
    return Template("campaigns/unsubscribe.html", headers=NO_STORE, context={
        "token": token, "done": message["unsubscribed_at"] is not None,
        "email": message["email"]})


@post("/campaigns/u/{token:str}", opt={**PUBLIC, "exclude_from_csrf": True},
      name="campaigns-unsubscribe", status_code=200)
async def unsubscribe_now(request: Request, token: FromPath[str]) -> Template:
    message = await tracking.unsubscribe(request.app.state.rapport, token,
                                         ip=client_ip(request))
    if message is None:
        raise NotFoundException("This unsubscribe link is not valid.")
    return Template("campaigns/unsubscribe.html", headers=NO_STORE, context={
        "token": token, "done": True, "email": message["email"]})


@get("/campaigns/o/{token:str}", opt=PUBLIC, name="campaigns-open")
async def opened(request: Request, token: FromPath[str]) -> Response:
    await tracking.record_open(request.app.state.rapport, token)
    return Response(tracking.PIXEL, media_type="image/gif", headers=NO_STORE)


@get("/campaigns/r/{token:str}/{index:int}", opt=PUBLIC, name="campaigns-click")
async def clicked(request: Request, token: FromPath[str], index: FromPath[int]) -> Redirect:
    target = await tracking.record_click(request.app.state.rapport, token, index)
    if target is None:
        raise NotFoundException("This link is not valid.")
    return Redirect(target, status_code=302, headers=NO_STORE)


ROUTES = [unsubscribe_ask, unsubscribe_now, opened, clicked]
