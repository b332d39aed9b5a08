"""The background work page: administrators see waiting, running, scheduled, failed and recent
jobs and the event deliveries that keep failing, with retry, cancel and discard buttons.

Lists are keyset pages on the id (indexed by status); nothing counts the whole tables except
the health line's per-state counts, which read only unfinished rows.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core import audit, events, jobs
from core.audit import client_ip
from core.permissions import current_actor
from core.plugin import NavItem, hookimpl

MANAGE = {"permission": "core.settings.manage"}
PAGE_SIZE = 50
TABS = (("waiting", "Waiting"), ("running", "Running"), ("scheduled", "Scheduled"),
        ("failed", "Failed"), ("recent", "Recently finished"), ("deliveries", "Event deliveries"))
MESSAGES = {
    "retried": "The job will run again shortly.",
    "not_retried": "That job is waiting or running already, or an identical one is waiting.",
    "cancelled": "The job was cancelled.",
    "cancelling": "The job is being stopped; it shows as cancelled once its worker stops it.",
    "not_cancelled": "That job had already finished.",
    "delivery_retried": "The event will be handed to that part of Rapport again shortly.",
    "delivery_discarded": "That event will not be handed to that part of Rapport again.",
    "delivery_unchanged": "That delivery had changed meanwhile; nothing was done.",
}


def _cursor(value: str | None) -> int | None:
    # A hand-made cursor beyond 64 bits would fail in the database: show the first page.
    if value and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _job_label(rapport: Any, name: str) -> str:
    job_type = jobs.job_types(rapport).get(name)
    if job_type is not None and job_type.description:
        return job_type.description
    return name


def _event_label(rapport: Any, name: str) -> str:
    event_type = rapport.event_types.get(name)
    return event_type.description if event_type is not None else name


def _subscriber_label(rapport: Any, subscriber: str) -> str:
    for plugin in rapport.plugins:
        if plugin.meta.id == subscriber:
            return plugin.meta.name
    if subscriber.startswith("pwa."):
        return "Field app notifications"
    return "Rapport core"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "nothing is waiting"
    if seconds < 90:
        return f"{int(seconds)} seconds"
    if seconds < 5400:
        return f"{int(seconds // 60)} minutes"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} hours"
    return f"{int(seconds // 86400)} days"


@get("/admin/jobs", name="jobs-page", opt=MANAGE)
async def jobs_page(request: Request) -> Template:
    rapport = request.app.state.rapport
    view = request.query_params.get("view", "waiting")
    if view not in {code for code, _ in TABS}:
        view = "waiting"
    after = _cursor(request.query_params.get("after"))
    if view == "deliveries":
        rows, next_after = await events.list_troubled(after=after, limit=PAGE_SIZE)
    else:
        rows, next_after = await jobs.list_jobs(view, after=after, limit=PAGE_SIZE)
    health = await jobs.health(rapport)
    message = MESSAGES.get(request.query_params.get("done", ""))
    return Template("jobs/list.html", context={
        "view": view,
        "tabs": TABS,
        "rows": rows,
        "health": health,
        "oldest": _age(health["oldest_queued_seconds"]),
        "worker_here": jobs.running_worker(rapport) is not None,
        "message": message,
        "next_url": (f"/admin/jobs?{urlencode({'view': view, 'after': next_after})}"
                     if next_after else None),
        "first_url": f"/admin/jobs?view={view}" if after is not None else None,
        "job_label": lambda name: _job_label(rapport, name),
        "event_label": lambda name: _event_label(rapport, name),
        "subscriber_label": lambda name: _subscriber_label(rapport, name),
    })


def _back(view: str, done: str) -> Redirect:
    view = view if view in {code for code, _ in TABS} else "waiting"
    return Redirect(f"/admin/jobs?{urlencode({'view': view, 'done': done})}", status_code=303)


async def _view(request: Request) -> str:
    form = await request.form()
    return str(form.get("view") or "waiting")


@post("/admin/jobs/{job_id:int}/retry", name="jobs-retry", opt=MANAGE, status_code=303)
async def retry_job(request: Request, job_id: FromPath[int]) -> Redirect:
    view = await _view(request)
    ok = await jobs.retry(request.app.state.rapport, job_id)
    if ok:
        await audit.record(current_actor(request), "update", "core_job", job_id,
                           summary="background job queued again", ip=client_ip(request))
    return _back(view, "retried" if ok else "not_retried")


@post("/admin/jobs/{job_id:int}/cancel", name="jobs-cancel", opt=MANAGE, status_code=303)
async def cancel_job(request: Request, job_id: FromPath[int]) -> Redirect:
    view = await _view(request)
    outcome = await jobs.cancel(job_id)
    if outcome:
        await audit.record(current_actor(request), "update", "core_job", job_id,
                           summary="background job cancelled", ip=client_ip(request))
    return _back(view, outcome or "not_cancelled")


@post("/admin/jobs/deliveries/{delivery_id:int}/retry", name="jobs-delivery-retry", opt=MANAGE,
      status_code=303)
async def retry_delivery(request: Request, delivery_id: FromPath[int]) -> Redirect:
    await _view(request)
    ok = await events.retry_delivery(request.app.state.rapport, delivery_id)
    if ok:
        await audit.record(current_actor(request), "update", "core_event_delivery", delivery_id,
                           summary="event delivery tried again", ip=client_ip(request))
    return _back("deliveries", "delivery_retried" if ok else "delivery_unchanged")


@post("/admin/jobs/deliveries/{delivery_id:int}/discard", name="jobs-delivery-discard",
      opt=MANAGE, status_code=303)
async def discard_delivery(request: Request, delivery_id: FromPath[int]) -> Redirect:
    await _view(request)
    ok = await events.discard_delivery(delivery_id)
    if ok:
        await audit.record(current_actor(request), "update", "core_event_delivery", delivery_id,
                           summary="event delivery discarded", ip=client_ip(request))
    return _back("deliveries", "delivery_discarded" if ok else "delivery_unchanged")


@hookimpl
def register_routes():
    return [jobs_page, retry_job, cancel_job, retry_delivery, discard_delivery]


@hookimpl
def register_nav_items():
    return [NavItem(label="Background jobs", href="/admin/jobs",
                    permission="core.settings.manage", order=910)]
