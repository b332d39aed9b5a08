"""Administration → Webhooks: the list with status and last delivery, create and edit with the
events to send, one webhook's page with its delivery log (keyset pages, newest first), test
ping, send again, new secret, switch off and on, delete. Every change is in the audit log."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core import audit, webhooks
from core.audit import client_ip
from core.permissions import current_actor
from core.plugin import NavItem, hookimpl

MANAGE = {"permission": webhooks.MANAGE}
PAGE_SIZE = 50
LOG_PAGE_SIZE = 25
STATUS_LABELS = {
    "pending": "Waiting", "succeeded": "Delivered", "retrying": "Failed, will retry",
    "failed": "Failed", "skipped": "Not sent",
}
MESSAGES = {
    "saved": "Saved.",
    "pinged_ok": "Test message delivered.",
    "pinged_failed": "The test message was not delivered; see the first line of the log.",
    "enabled": "The webhook is on again. Events from now on are sent; use “Send again” for "
               "ones it missed.",
    "disabled": "The webhook is switched off.",
    "queued": "The delivery will be sent again shortly.",
    "not_queued": "Switch the webhook on before sending again.",
    "deleted": "The webhook was deleted.",
}


def _cursor(value: str | None) -> int | None:
    if value and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


async def _sub_or_404(sub_id: int) -> dict[str, Any]:
    sub = await webhooks.get(sub_id)
    if sub is None:
        raise NotFoundException("no such webhook")
    return sub


def _event_label(rapport: Any, name: str) -> str:
    if name == webhooks.PING_EVENT:
        return "Test message"
    event_type = rapport.event_types.get(name)
    return event_type.staff_label if event_type is not None else name


def _event_groups(rapport: Any, actor: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """The events ``actor`` may send, as staff read them: (area, [(name, label)]), areas in
    alphabetical order, events in the order their plugin lists them."""
    groups: dict[str, list[tuple[str, str]]] = {}
    offered = webhooks.durable_events(rapport, actor)
    for event_type in rapport.event_types.values():
        if event_type.name in offered:
            groups.setdefault(event_type.staff_area, []).append(
                (event_type.name, event_type.staff_label))
    return sorted(groups.items())


async def _owner_names(user_ids: set[int]) -> dict[int, str]:
    from core.identity.tables import User

    if not user_ids:
        return {}
    rows = await User.select(User.id, User.name).where(User.id.is_in(sorted(user_ids))).run()
    return {r["id"]: r["name"] for r in rows}


@get("/admin/webhooks", name="webhooks-list", opt=MANAGE)
async def list_page(request: Request) -> Template:
    after = _cursor(request.query_params.get("after"))
    rows, next_after = await webhooks.list_subscriptions(after=after, limit=PAGE_SIZE)
    owners = await _owner_names({r["owner"] for r in rows})
    return Template("webhooks/list.html", context={
        "rows": rows, "owners": owners, "status_labels": STATUS_LABELS,
        "message": MESSAGES.get(request.query_params.get("done", "")),
        "next_url": f"/admin/webhooks?{urlencode({'after': next_after})}" if next_after else None,
        "first_url": "/admin/webhooks" if after is not None else None,
    })


def _form_context(request: Request, sub: dict | None, form: dict, errors: dict) -> dict:
    rapport = request.app.state.rapport
    return {"sub": sub, "form": form, "errors": errors,
            "event_groups": _event_groups(rapport, current_actor(request))}


async def _read_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {"name": str(form.get("name") or ""), "url": str(form.get("url") or ""),
            "events": [str(e) for e in form.getall("events")] if "events" in form else []}


@get("/admin/webhooks/new", name="webhooks-new", opt=MANAGE)
async def new_page(request: Request) -> Template:
    return Template("webhooks/form.html",
                    context=_form_context(request, None, {"events": []}, {}))


@post("/admin/webhooks/new", name="webhooks-create", opt=MANAGE, status_code=200)
async def create(request: Request) -> Template:
    data = await _read_form(request)
    actor = current_actor(request)
    try:
        sub, secret = await webhooks.create(request.app.state.rapport, actor, data)
    except webhooks.WebhookError as exc:
        return Template("webhooks/form.html", status_code=422, context=_form_context(
            request, None, data, {exc.field: exc.message}))
    await audit.record(actor, "create", "core_webhook", sub["id"],
                       summary=f"webhook {sub['name']} created", ip=client_ip(request))
    return await _detail(request, sub, secret=secret)


async def _detail(request: Request, sub: dict[str, Any], *, secret: str | None = None,
                  status_code: int = 200) -> Template:
    rapport = request.app.state.rapport
    before = _cursor(request.query_params.get("before"))
    rows, cursor = await webhooks.deliveries(sub["id"], before=before, limit=LOG_PAGE_SIZE)
    owners = await _owner_names({sub["owner"]})
    return Template("webhooks/detail.html", status_code=status_code, context={
        "sub": sub, "secret": secret, "deliveries": rows, "owner_name": owners.get(sub["owner"]),
        "status_labels": STATUS_LABELS,
        "event_label": lambda name: _event_label(rapport, name),
        "message": MESSAGES.get(request.query_params.get("done", "")),
        "older_url": (f"/admin/webhooks/{sub['id']}?{urlencode({'before': cursor})}"
                      if cursor else None),
        "newest_url": f"/admin/webhooks/{sub['id']}" if before is not None else None,
    })


@get("/admin/webhooks/{sub_id:int}", name="webhooks-detail", opt=MANAGE)
async def detail_page(request: Request, sub_id: FromPath[int]) -> Template:
    return await _detail(request, await _sub_or_404(sub_id))


@get("/admin/webhooks/{sub_id:int}/edit", name="webhooks-edit", opt=MANAGE)
async def edit_page(request: Request, sub_id: FromPath[int]) -> Template:
    sub = await _sub_or_404(sub_id)
    return Template("webhooks/form.html", context=_form_context(request, sub, sub, {}))


@post("/admin/webhooks/{sub_id:int}/edit", name="webhooks-update", opt=MANAGE, status_code=303)
async def update(request: Request, sub_id: FromPath[int]) -> Any:
    sub = await _sub_or_404(sub_id)
    data = await _read_form(request)
    actor = current_actor(request)
    try:
        await webhooks.update(request.app.state.rapport, actor, sub_id, data)
    except webhooks.WebhookError as exc:
        return Template("webhooks/form.html", status_code=422, context=_form_context(
            request, sub, data, {exc.field: exc.message}))
    await audit.record(actor, "update", "core_webhook", sub_id, summary="webhook changed",
                       ip=client_ip(request))
    return Redirect(f"/admin/webhooks/{sub_id}?done=saved", status_code=303)


@post("/admin/webhooks/{sub_id:int}/ping", name="webhooks-ping", opt=MANAGE, status_code=303)
async def ping(request: Request, sub_id: FromPath[int]) -> Redirect:
    await _sub_or_404(sub_id)
    delivery = await webhooks.ping(request.app.state.rapport, sub_id)
    ok = delivery is not None and delivery["status"] == webhooks.SUCCEEDED
    return Redirect(f"/admin/webhooks/{sub_id}?done={'pinged_ok' if ok else 'pinged_failed'}",
                    status_code=303)


@post("/admin/webhooks/{sub_id:int}/rotate", name="webhooks-rotate", opt=MANAGE,
      status_code=200)
async def rotate(request: Request, sub_id: FromPath[int]) -> Template:
    await _sub_or_404(sub_id)
    secret = await webhooks.rotate_secret(sub_id)
    await audit.record(current_actor(request), "update", "core_webhook", sub_id,
                       summary="webhook secret rotated", ip=client_ip(request))
    return await _detail(request, await _sub_or_404(sub_id), secret=secret)


@post("/admin/webhooks/{sub_id:int}/enable", name="webhooks-enable", opt=MANAGE,
      status_code=303)
async def enable(request: Request, sub_id: FromPath[int]) -> Redirect:
    await _sub_or_404(sub_id)
    await webhooks.enable(sub_id)
    await audit.record(current_actor(request), "update", "core_webhook", sub_id,
                       summary="webhook switched on", ip=client_ip(request))
    return Redirect(f"/admin/webhooks/{sub_id}?done=enabled", status_code=303)


@post("/admin/webhooks/{sub_id:int}/disable", name="webhooks-disable", opt=MANAGE,
      status_code=303)
async def disable(request: Request, sub_id: FromPath[int]) -> Redirect:
    sub = await _sub_or_404(sub_id)
    await webhooks.disable(request.app.state.rapport, sub, "Switched off by an administrator.",
                           notify=False)
    await audit.record(current_actor(request), "update", "core_webhook", sub_id,
                       summary="webhook switched off", ip=client_ip(request))
    return Redirect(f"/admin/webhooks/{sub_id}?done=disabled", status_code=303)


@post("/admin/webhooks/{sub_id:int}/delete", name="webhooks-delete", opt=MANAGE,
      status_code=303)
async def delete(request: Request, sub_id: FromPath[int]) -> Redirect:
    sub = await _sub_or_404(sub_id)
    await webhooks.delete(sub_id)
    await audit.record(current_actor(request), "delete", "core_webhook", sub_id,
                       summary=f"webhook {sub['name']} deleted", ip=client_ip(request))
    return Redirect("/admin/webhooks?done=deleted", status_code=303)


@post("/admin/webhooks/{sub_id:int}/deliveries/{delivery_id:int}/send-again",
      name="webhooks-send-again", opt=MANAGE, status_code=303)
async def send_again(request: Request, sub_id: FromPath[int],
                     delivery_id: FromPath[int]) -> Redirect:
    await _sub_or_404(sub_id)
    delivery = await webhooks.get_delivery(delivery_id)
    if delivery is None or delivery["subscription"] != sub_id:
        raise NotFoundException("no such delivery")
    ok = await webhooks.send_again(request.app.state.rapport, delivery_id)
    if ok:
        await audit.record(current_actor(request), "update", "core_webhook", sub_id,
                           summary="webhook delivery queued again", ip=client_ip(request))
    return Redirect(f"/admin/webhooks/{sub_id}?done={'queued' if ok else 'not_queued'}",
                    status_code=303)


@hookimpl
def register_routes():
    return [list_page, new_page, create, detail_page, edit_page, update, ping, rotate, enable,
            disable, delete, send_again]


@hookimpl
def register_nav_items():
    return [NavItem(label="Webhooks", href="/admin/webhooks", permission=webhooks.MANAGE,
                    order=915)]
