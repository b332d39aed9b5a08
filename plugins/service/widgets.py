"""Dashboard widgets: the open backlog, SLA attainment over 30 days and the satisfaction trend.

Each is a few aggregate queries, every one limited to the cases the user may see
(``core.permissions.scoped`` with service.case.view) and bounded by an indexed column
(``is_open`` or ``created_at``), so a large case table does not slow the dashboard.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.response import Template
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Count

from core.permissions import current_actor, scoped
from plugins.service.tables import PRIORITIES, Case, Queue

PERM = {"permission": "service.case.view"}
SLA_DAYS = 30
CSAT_WEEKS = 12
MAX_RATINGS = 20_000  # ratings read for the trend; far above what 12 weeks hold in practice
TOP_QUEUES = 8


def _scoped(request: Request, query):
    return scoped(query, request.app.state.rapport, current_actor(request), "service.case.view",
                  Case)


async def _count(request: Request, where) -> int:
    return await _scoped(request, Case.count().where(where)).run()


async def backlog(request: Request) -> dict[str, Any]:
    is_open = Case.is_open == True  # noqa: E712
    by_priority = await _scoped(request, Case.select(
        Case.priority, Count(Case.id, alias="n")).where(is_open).group_by(Case.priority)).run()
    counts = {r["priority"]: r["n"] for r in by_priority}
    by_queue = await _scoped(request, Case.select(
        Case.queue, Count(Case.id, alias="n")).where(is_open).group_by(Case.queue)).run()
    by_queue.sort(key=lambda r: -r["n"])
    ids = [r["queue"] for r in by_queue[:TOP_QUEUES] if r["queue"] is not None]
    names = {q["id"]: q["name"] for q in await Queue.select(Queue.id, Queue.name).where(
        Queue.id.is_in(ids)).run()} if ids else {}
    unassigned = await _count(request, is_open & Case.owner.is_null())
    return {
        "priorities": [(p, counts.get(p, 0)) for p in reversed(PRIORITIES)],
        "queues": [(names.get(r["queue"], "No queue") if r["queue"] else "No queue", r["n"])
                   for r in by_queue[:TOP_QUEUES]],
        "more_queues": max(0, len(by_queue) - TOP_QUEUES),
        "total": sum(counts.values()), "unassigned": unassigned,
    }


def _share(met: int, total: int) -> int | None:
    return round(100 * met / total) if total else None


async def attainment(request: Request, now: datetime | None = None) -> dict[str, Any]:
    """Of the cases opened in the last 30 days that have an SLA: the share answered within
    the first-response target (of those answered) and resolved within the resolution target
    (of those resolved); plus how many open ones are already past a deadline."""
    now = now or datetime.now(UTC)
    recent = (Case.created_at >= now - timedelta(days=SLA_DAYS)) & Case.sla_policy.is_not_null()
    answered = recent & Case.first_responded_at.is_not_null() & \
        Case.first_response_due.is_not_null()
    answered_total = await _count(request, answered)
    answered_met = await _count(request, answered & (
        Case.first_response_breached == False)  # noqa: E712
        & WhereRaw("first_responded_at <= first_response_due"))
    resolved = recent & Case.resolved_at.is_not_null() & Case.resolution_due.is_not_null()
    resolved_total = await _count(request, resolved)
    resolved_met = await _count(request, resolved & (
        Case.resolution_breached == False))  # noqa: E712
    overdue = await _count(request, recent & (Case.is_open == True) & (  # noqa: E712
        (Case.first_response_breached == True) | (Case.resolution_breached == True)))  # noqa: E712
    return {
        "days": SLA_DAYS,
        "response": {"met": answered_met, "total": answered_total,
                     "share": _share(answered_met, answered_total)},
        "resolution": {"met": resolved_met, "total": resolved_total,
                       "share": _share(resolved_met, resolved_total)},
        "overdue": overdue,
    }


def _week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


async def csat_trend(request: Request, now: datetime | None = None) -> dict[str, Any]:
    """Average satisfaction (1–5) and number of ratings per week, oldest first."""
    now = now or datetime.now(UTC)
    first = _week_start(now) - timedelta(weeks=CSAT_WEEKS - 1)
    # Ratings come after cases are opened: bounding by created_at keeps to the index.
    rows = await _scoped(request, Case.select(Case.rated_at, Case.satisfaction).where(
        (Case.created_at >= first - timedelta(weeks=CSAT_WEEKS)) & (Case.rated_at >= first)
        & Case.satisfaction.is_not_null()).limit(MAX_RATINGS)).run()
    weeks = [first + timedelta(weeks=i) for i in range(CSAT_WEEKS)]
    sums = {w: [0, 0] for w in weeks}
    for row in rows:
        bucket = sums.get(_week_start(row["rated_at"]))
        if bucket is not None:
            bucket[0] += row["satisfaction"]
            bucket[1] += 1
    trend = [{"week": w.date(), "count": sums[w][1],
              "average": round(sums[w][0] / sums[w][1], 2) if sums[w][1] else None}
             for w in weeks]
    rated = sum(t["count"] for t in trend)
    overall = round(sum(sums[w][0] for w in weeks) / rated, 2) if rated else None
    return {"weeks": trend, "rated": rated, "average": overall}


@get("/service/widgets/backlog", opt=PERM, include_in_schema=False)
async def widget_backlog(request: Request) -> Template:
    return Template("service/widgets/backlog.html", context=await backlog(request))


@get("/service/widgets/sla", opt=PERM, include_in_schema=False)
async def widget_sla(request: Request) -> Template:
    return Template("service/widgets/sla.html", context=await attainment(request))


@get("/service/widgets/csat", opt=PERM, include_in_schema=False)
async def widget_csat(request: Request) -> Template:
    return Template("service/widgets/csat.html", context=await csat_trend(request))


ROUTES: list = [widget_backlog, widget_sla, widget_csat]
