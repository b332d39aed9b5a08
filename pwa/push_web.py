"""Push endpoints: the public VAPID key, a user's devices (subscribe, list, remove) and the
topics they want to hear about. JSON under /api/v1/push/, a page at /field/devices."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Template

from core.api_schemas import accepts, nullable, obj, text
from core.identity.middleware import signed_in_by_token
from core.permissions import current_actor
from pwa import push

SIGNED_IN = {"permission": "authenticated"}


def problem(status: int, title: str, field: str | None = None, detail: str = "") -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail or title}
    if field:
        body["invalid_params"] = [{"name": field, "reason": detail or title}]
    return Response(body, status_code=status, media_type="application/problem+json")


def require_csrf_header(request: Request) -> None:
    """The API is outside the CSRF middleware (bearer tokens), but these endpoints are used
    with the session cookie: insist on the double-submitted token, like htmx sends it."""
    if signed_in_by_token(request.scope):
        return  # a browser never sends a bearer token on its own: nothing to forge
    cookie = request.cookies.get("csrftoken", "")
    header = request.headers.get("x-csrftoken", "")
    if not cookie or not hmac.compare_digest(cookie, header):
        raise PermissionDeniedException("missing or wrong x-csrftoken header")


@get("/api/v1/push/key", opt=SIGNED_IN, tags=["push"])
async def public_key(request: Request) -> dict[str, str]:
    """The VAPID public key to pass to ``pushManager.subscribe`` as applicationServerKey."""
    keys = push.vapid_keys(request.app.state.rapport)
    return {"public_key": keys.application_server_key}


@accepts(obj({"endpoint": text(2000, 1), "label": nullable(text(200)),
              "keys": obj({"p256dh": text(200, 1), "auth": text(100, 1)},
                          required=["p256dh", "auth"])},
             required=["endpoint", "keys"]))
@post("/api/v1/push/subscriptions", opt=SIGNED_IN, tags=["push"])
async def add_subscription(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Register this device (a PushSubscription's JSON) for the signed-in user."""
    require_csrf_header(request)
    actor = current_actor(request)
    try:
        row = await push.subscribe(request.app.state.rapport, actor.id, data,
                                   request.headers.get("user-agent", ""),
                                   api_token_id=actor.token_id)
    except push.PushError as exc:
        return problem(422, "Invalid subscription", exc.field, exc.message)
    return Response({"id": row["id"], "label": row["label"]}, status_code=201)


@get("/api/v1/push/subscriptions", opt=SIGNED_IN, tags=["push"])
async def list_subscriptions(request: Request) -> list[dict[str, Any]]:
    return [{**d, "created_at": d["created_at"].isoformat() if d["created_at"] else None,
             "last_success_at": d["last_success_at"].isoformat() if d["last_success_at"] else None,
             "last_failure_at": d["last_failure_at"].isoformat() if d["last_failure_at"] else None}
            for d in await push.devices(current_actor(request).id)]


@delete("/api/v1/push/subscriptions/{device_id:int}", opt=SIGNED_IN, tags=["push"],
        status_code=204)
async def remove_subscription(request: Request, device_id: FromPath[int]) -> None:
    require_csrf_header(request)
    if not await push.remove_device(current_actor(request).id, device_id):
        raise NotFoundException()


@get("/field/devices", opt=SIGNED_IN, include_in_schema=False)
async def devices_page(request: Request) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    return Template("pwa/devices.html", context={
        "devices": await push.devices(actor.id),
        "topics": push.known_topics(rapport),
        "chosen": await push.preferences(rapport, actor.id),
        "saved": request.query_params.get("saved"),
    })


@post("/field/devices/{device_id:int}/remove", opt=SIGNED_IN, include_in_schema=False,
      status_code=303)
async def remove_device_form(request: Request, device_id: FromPath[int]) -> Redirect:
    if not await push.remove_device(current_actor(request).id, device_id):
        raise NotFoundException()
    return Redirect("/field/devices?saved=removed", status_code=303)


@post("/field/devices/topics", opt=SIGNED_IN, include_in_schema=False, status_code=303)
async def save_topics(request: Request) -> Redirect:
    rapport = request.app.state.rapport
    form = await request.form()
    chosen = set(form.getall("topic", []))
    await push.set_preferences(rapport, current_actor(request).id,
                               chosen & set(push.known_topics(rapport)))
    return Redirect("/field/devices?saved=topics", status_code=303)


ROUTES = [public_key, add_subscription, list_subscriptions, remove_subscription, devices_page,
          remove_device_form, save_topics]
