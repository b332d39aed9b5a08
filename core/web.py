"""The staff web shell: the dashboard and the navigation entry for it."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.response import Template

from core.permissions import current_actor
from core.plugin import NavItem, hookimpl


@get("/", name="dashboard", opt={"permission": "core.dashboard.view"})
async def dashboard(request: Request) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    widgets = [
        w
        for w in await rapport.acollect("dashboard_widgets", rapport=rapport, user=actor)
        if w.permission is None or actor.can(w.permission)
    ]
    widgets.sort(key=lambda w: (w.order, w.title))
    return Template("dashboard.html", context={"widgets": widgets})


@get("/healthz", name="health", opt={"public": True}, include_in_schema=False)
async def health(request: Request) -> Response:
    """200 when the database, Redis (if configured), the live channel and the job worker are
    all there, else 503; each one's state in ``checks`` (core.health)."""
    from core.health import check

    ok, checks = await check(request.app.state.rapport)
    return Response({"status": "ok" if ok else "fail", "checks": checks},
                    status_code=200 if ok else 503, headers={"cache-control": "no-store"})


@hookimpl
def register_routes():
    return [dashboard, health]


@hookimpl
def register_nav_items():
    return [NavItem(label="Dashboard", href="/", permission="core.dashboard.view", order=0)]
