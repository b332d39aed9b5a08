"""REST API for outbound webhooks: /api/v1/webhooks (needs ``core.webhook.manage``).

The secret is in the answer to a create or a rotation only. Errors are
``application/problem+json`` naming the field; the delivery log pages by keyset
(``?before=<cursor>``), newest first.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, patch, post
from litestar.exceptions import ClientException
from litestar.params import FromPath, JSONBody, QueryParameter

from core import audit, webhooks
from core.api_schemas import BOOLEAN, accepts, array, obj, text
from core.audit import client_ip
from core.permissions import current_actor
from core.plugin import hookimpl
from core.problems import bad_request, problem
from core.webhooks import WebhookError

MANAGE = {"permission": webhooks.MANAGE}


class WebhookNotFound(LookupError):
    pass


def _invalid(request: Request, exc: WebhookError) -> Response:
    return problem(422, "Invalid webhook", f"{exc.field}: {exc.message}", field=exc.field)


def _not_found(request: Request, exc: WebhookNotFound) -> Response:
    return problem(404, "Not found", "No such webhook")


API: dict[str, Any] = {
    "exception_handlers": {WebhookError: _invalid, WebhookNotFound: _not_found,
                           ClientException: bad_request},
    "tags": ["webhooks"],
}


def _out(sub: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": sub["id"], "name": sub["name"], "url": sub["url"], "events": sub["events"],
        "enabled": sub["enabled"], "disabled_reason": sub["disabled_reason"],
        "owner": sub["owner"], "last_delivery_at": sub["last_delivery_at"],
        "last_status": sub["last_status"], "last_response_code": sub["last_response_code"],
        "consecutive_failures": sub["consecutive_failures"],
        "created_at": sub["created_at"], "updated_at": sub["updated_at"],
        "url_self": f"/api/v1/webhooks/{sub['id']}",
    }


def _delivery_out(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "event_id", "event_name", "status", "attempts",
                                "response_code", "response_ms", "error", "created_at",
                                "last_attempt_at")}


async def _sub(sub_id: int) -> dict[str, Any]:
    sub = await webhooks.get(sub_id)
    if sub is None:
        raise WebhookNotFound()
    return sub


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WebhookError("body", "must be a JSON object")
    return data


@get("/api/v1/webhooks/events", opt=MANAGE, **API, summary="Events a webhook can receive")
async def list_events(request: Request) -> dict[str, Any]:
    offered = webhooks.durable_events(request.app.state.rapport, current_actor(request))
    return {"data": [{"name": n, "description": d} for n, d in offered.items()]}


@get("/api/v1/webhooks", opt=MANAGE, **API, summary="List webhooks")
async def list_webhooks(
    request: Request,
    after: Annotated[int | None, QueryParameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    rows, next_after = await webhooks.list_subscriptions(after=after, limit=limit)
    return {"data": [_out(r) for r in rows], "next": next_after}


_WEBHOOK = {"name": text(200), "url": text(2000),
            "events": {"anyOf": [array(text(200), 200), text(5000)],
                       "description": "a list of event names (or one per line)"}}


@accepts(obj(_WEBHOOK, required=["name", "url", "events"]))
@post("/api/v1/webhooks", opt=MANAGE, **API, summary="Subscribe a URL to events",
      status_code=201)
async def create_webhook(request: Request, data: JSONBody[Any]) -> dict[str, Any]:
    """``{"name", "url", "events": [...]}``; the answer holds ``secret``, shown only now."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    sub, secret = await webhooks.create(rapport, actor, _body(data))
    await audit.record(actor, "create", "core_webhook", sub["id"],
                       summary=f"webhook {sub['name']} created", ip=client_ip(request))
    return {**_out(sub), "secret": secret}


@get("/api/v1/webhooks/{sub_id:int}", opt=MANAGE, **API, summary="One webhook")
async def get_webhook(request: Request, sub_id: FromPath[int]) -> dict[str, Any]:
    return _out(await _sub(sub_id))


@accepts(obj({**_WEBHOOK, "enabled": BOOLEAN}))
@patch("/api/v1/webhooks/{sub_id:int}", opt=MANAGE, **API, summary="Change a webhook")
async def update_webhook(request: Request, sub_id: FromPath[int],
                         data: JSONBody[Any]) -> dict[str, Any]:
    """Any of ``name``, ``url``, ``events``; ``"enabled": true`` switches it on again."""
    await _sub(sub_id)
    body = _body(data)
    actor = current_actor(request)
    await webhooks.update(request.app.state.rapport, actor, sub_id, body, partial=True)
    if body.get("enabled") is True:
        await webhooks.enable(sub_id)
    elif body.get("enabled") is False:
        await webhooks.disable(request.app.state.rapport, await _sub(sub_id),
                               "Switched off by an administrator.", notify=False)
    await audit.record(actor, "update", "core_webhook", sub_id,
                       summary="webhook changed", ip=client_ip(request))
    return _out(await _sub(sub_id))


@delete("/api/v1/webhooks/{sub_id:int}", opt=MANAGE, **API, summary="Delete a webhook",
        status_code=204)
async def delete_webhook(request: Request, sub_id: FromPath[int]) -> None:
    await _sub(sub_id)
    await webhooks.delete(sub_id)
    await audit.record(current_actor(request), "delete", "core_webhook", sub_id,
                       summary="webhook deleted", ip=client_ip(request))


@post("/api/v1/webhooks/{sub_id:int}/rotate-secret", opt=MANAGE, **API,
      summary="Give a webhook a new secret", status_code=200)
async def rotate_secret(request: Request, sub_id: FromPath[int]) -> dict[str, Any]:
    """The answer holds the new ``secret``; the old one also signs for 24 hours."""
    await _sub(sub_id)
    secret = await webhooks.rotate_secret(sub_id)
    await audit.record(current_actor(request), "update", "core_webhook", sub_id,
                       summary="webhook secret rotated", ip=client_ip(request))
    return {**_out(await _sub(sub_id)), "secret": secret}


@post("/api/v1/webhooks/{sub_id:int}/ping", opt=MANAGE, **API, summary="Send a test ping",
      status_code=200)
async def ping_webhook(request: Request, sub_id: FromPath[int]) -> dict[str, Any]:
    await _sub(sub_id)
    delivery = await webhooks.ping(request.app.state.rapport, sub_id)
    return _delivery_out(delivery or {})


@get("/api/v1/webhooks/{sub_id:int}/deliveries", opt=MANAGE, **API,
     summary="A webhook's delivery log")
async def list_deliveries(
    request: Request, sub_id: FromPath[int],
    before: Annotated[int | None, QueryParameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    await _sub(sub_id)
    rows, cursor = await webhooks.deliveries(sub_id, before=before, limit=limit)
    return {"data": [_delivery_out(r) for r in rows], "next": cursor}


@post("/api/v1/webhooks/{sub_id:int}/deliveries/{delivery_id:int}/send-again", opt=MANAGE,
      **API, summary="Send a delivery again", status_code=202)
async def send_again(request: Request, sub_id: FromPath[int],
                     delivery_id: FromPath[int]) -> dict[str, Any]:
    sub = await _sub(sub_id)
    delivery = await webhooks.get_delivery(delivery_id)
    if delivery is None or delivery["subscription"] != sub_id:
        raise WebhookNotFound()
    if not sub["enabled"]:
        raise WebhookError("enabled", "the webhook is switched off; switch it on first")
    await webhooks.send_again(request.app.state.rapport, delivery_id)
    await audit.record(current_actor(request), "update", "core_webhook", sub_id,
                       summary="webhook delivery queued again", ip=client_ip(request))
    return {"queued": True, "delivery_id": delivery_id}


ROUTES = [list_events, list_webhooks, create_webhook, get_webhook, update_webhook,
          delete_webhook, rotate_secret, ping_webhook, list_deliveries, send_again]


@hookimpl
def register_routes():
    return ROUTES
