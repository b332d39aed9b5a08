"""REST API for repair visits: ``/api/v1/service/cases/{id}/visits`` and
``/api/v1/service/visits``.

Same conventions as the cases API (:mod:`plugins.service.api`): errors are
``application/problem+json`` naming the field (a :class:`visits.VisitError` lists every
field it found wrong in ``errors``), a case the caller may not see answers 404 like one that
does not exist, one they may see but not change answers 403. Reading needs
``service.case.view``, scheduling, moving and cancelling ``service.case.edit``, as on the
case page. The work is :mod:`plugins.service.visits`'s: the agenda entry, the audit and the
case event move with every change exactly as from the pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Request, Response, get, patch, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody, Parameter

from core.api_schemas import accepts
from core.audit import client_ip
from core.interactions.service import as_utc
from core.permissions import current_actor, row_filter
from plugins.service import api_bodies as bodies
from plugins.service import cases as service
from plugins.service import visits
from plugins.service.api import API, MAX_LIMIT, CaseNotFound, problem
from plugins.service.tables import Case, Visit

VISIT_FIELDS = ("id", "case", "assignee", "assignee_name", "starts_at", "ends_at", "status",
                "interaction_id", "notes")
MAX_RANGE = timedelta(days=366)  # how far apart ?from= and ?to= may be: bounds a listing


def visit_error(request: Request, exc: visits.VisitError) -> Response:
    response = problem(422, "Invalid visit", f"{exc.field}: {exc.message}", field=exc.field)
    # Every field at once, as the form shows them, so a client can fix them together.
    response.content["errors"] = [{"field": f, "message": m} for f, m in exc.errors.items()]
    return response


VISITS_API: dict[str, Any] = {
    **API,
    "exception_handlers": {**API["exception_handlers"], visits.VisitError: visit_error},
}


def _visit(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in VISIT_FIELDS if k in row}
    out["url"] = f"/api/v1/service/visits/{row['id']}"
    out["case_url"] = f"/api/v1/service/cases/{row['case']}"
    return out


async def _case(request: Request, case_id: int, permission: str = "service.case.view"
                ) -> dict[str, Any]:
    """The case, 404 outside the caller's view scope, 403 outside their ``permission``'s."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    case = await service.visible_case(rapport, actor, case_id)
    if case is None:
        raise CaseNotFound("No such case")
    if permission != "service.case.view" and await service.visible_case(
            rapport, actor, case_id, permission) is None:
        raise PermissionDeniedException("you may not change this case")
    return case


async def _visit_and_case(request: Request, visit_id: int) -> tuple[dict, dict]:
    """A visit the caller may change (``service.case.edit`` on its case)."""
    visit = await Visit.select().where(Visit.id == visit_id).first().run()
    if visit is None:
        raise CaseNotFound("No such visit")
    try:
        case = await _case(request, visit["case"], "service.case.edit")
    except CaseNotFound:
        raise CaseNotFound("No such visit") from None
    return visit, case


def _object(data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise visits.VisitError({"body": "must be a JSON object"})
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise visits.VisitError({unknown[0]: "is not a field of a visit"})
    errors: dict[str, str] = {}
    value = data.get("assignee")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        errors["assignee"] = "must be a user id"
    for name in ("starts_at", "ends_at", "notes"):
        if data.get(name) is not None and not isinstance(data[name], str):
            errors[name] = "must be text" if name == "notes" else \
                "must be an ISO 8601 date and time, e.g. 2031-05-06T09:30:00Z"
    if errors:
        raise visits.VisitError(errors)
    return data


async def _reload(visit_id: int) -> dict[str, Any]:
    return await Visit.select(*Visit._meta.columns, Visit.assignee.name.as_alias(
        "assignee_name")).where(Visit.id == visit_id).first().run()


@get("/api/v1/service/cases/{case_id:int}/visits", opt={"permission": "service.case.view"},
     **VISITS_API, summary="List a case's visits with their reports")
async def api_case_visits(request: Request, case_id: FromPath[int]) -> dict[str, Any]:
    """The case's visits, newest first (at most 50), each with ``reports``: the field app's
    visit reports (notes, outcome, photo and signature file ids, check-in) matched to it."""
    case = await _case(request, case_id)
    rows = await visits.case_visits(case)
    return {"data": [{**_visit({**row, "case": case_id}), "reported": row["reported"],
                      "reports": row["reports"]} for row in rows], "next": None}


@accepts(bodies.VISIT)
@post("/api/v1/service/cases/{case_id:int}/visits", opt={"permission": "service.case.edit"},
      **VISITS_API, summary="Schedule a visit for a case")
async def api_visit_create(request: Request, case_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> Response:
    """Body: ``assignee`` (a user who may work cases and use the field app), ``starts_at``,
    optional ``ends_at`` (within 24 hours) and ``notes``. Times are ISO 8601; without a zone
    they are UTC. The visit goes into the representative's field agenda."""
    data = _object(data, {"assignee", "starts_at", "ends_at", "notes"})
    await _case(request, case_id, "service.case.edit")
    try:
        row = await visits.schedule(
            request.app.state.rapport, current_actor(request), case_id,
            assignee=data.get("assignee"), starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at") or None, notes=data.get("notes") or "",
            ip=client_ip(request))
    except LookupError:
        raise CaseNotFound("No such case") from None
    return Response(_visit(await _reload(row["id"])), status_code=201,
                    headers={"location": f"/api/v1/service/visits/{row['id']}"})


@accepts(bodies.VISIT_CHANGE)
@patch("/api/v1/service/visits/{visit_id:int}", opt={"permission": "service.case.edit"},
       **VISITS_API, summary="Reschedule a visit or change its notes")
async def api_visit_update(request: Request, visit_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Any of ``assignee``, ``starts_at``, ``ends_at`` (``null`` clears it), ``notes``; a
    missing key keeps its value. Only a scheduled visit can change; its agenda entry moves
    with it."""
    data = _object(data, {"assignee", "starts_at", "ends_at", "notes"})
    visit, _ = await _visit_and_case(request, visit_id)
    try:
        await visits.reschedule(
            request.app.state.rapport, current_actor(request), visit_id,
            starts_at=data["starts_at"] if "starts_at" in data else visit["starts_at"],
            ends_at=data["ends_at"] if "ends_at" in data else visit["ends_at"],
            assignee=data.get("assignee"),
            notes=data["notes"] if data.get("notes") is not None else None,
            ip=client_ip(request))
    except LookupError:
        raise CaseNotFound("No such visit") from None
    return _visit(await _reload(visit_id))


@post("/api/v1/service/visits/{visit_id:int}/cancel", opt={"permission": "service.case.edit"},
      **VISITS_API, summary="Cancel a visit", status_code=200)
async def api_visit_cancel(request: Request, visit_id: FromPath[int]) -> dict[str, Any]:
    """Cancel a scheduled visit: it leaves the agenda and the timeline; the visit stays,
    marked cancelled."""
    await _visit_and_case(request, visit_id)
    try:
        await visits.cancel(request.app.state.rapport, current_actor(request), visit_id,
                            ip=client_ip(request))
    except LookupError:
        raise CaseNotFound("No such visit") from None
    return _visit(await _reload(visit_id))


def _bound(value: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A range bound: a date alone is midnight UTC (``as_utc`` would make it 09:00, the
    default time of a visit, which would drop the morning's visits from a day's range)."""
    try:
        return datetime.combine(date.fromisoformat(value.strip()), time(0), tzinfo=UTC)
    except ValueError:
        return as_utc(value, field, errors)


def _parse_cursor(after: str) -> tuple[datetime, int] | None:
    """``<starts_at as microseconds since the epoch>-<id>``."""
    stamp, _, visit_id = after.partition("-")
    micros, last_id = service.cursor_id(stamp), service.cursor_id(visit_id)
    if micros is None or last_id is None:
        return None
    try:
        return datetime.fromtimestamp(micros / 1_000_000, UTC), last_id
    except (OverflowError, OSError, ValueError):
        return None


def _cursor(row: dict[str, Any]) -> str:
    at = row["starts_at"].astimezone(UTC)
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}-{row['id']}"


@get("/api/v1/service/visits", opt={"permission": "service.case.view"}, **VISITS_API,
     summary="List a representative's visits")
async def api_visits(
    request: Request,
    assignee: Annotated[int | None, Parameter(
        description="The representative's user id (default: the caller)")] = None,
    from_: Annotated[str | None, Parameter(
        query="from", description="Visits starting at or after (ISO 8601; a date alone is "
                                  "midnight UTC; default: now)")] = None,
    to: Annotated[str | None, Parameter(
        description="Visits starting before (ISO 8601; a date alone is midnight UTC; "
                    "default: 31 days after from)")] = None,
    status: Annotated[str | None, Parameter(
        description=f"One of {visits.VISIT_STATUSES}")] = None,
    after: Annotated[str | None, Parameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """The representative's visits in time order, of cases the caller may see, between
    ``from`` and ``to`` (at most a year apart). Follow ``next`` (a cursor for ``after``)
    until it is ``null``."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    errors: dict[str, str] = {}
    start = _bound(from_, "from", errors) if from_ else datetime.now(UTC)
    end = _bound(to, "to", errors) if to else None
    if status and status not in visits.VISIT_STATUSES:
        errors["status"] = f"must be one of {', '.join(visits.VISIT_STATUSES)}"
    if start is not None and end is None and "to" not in errors:
        end = start + timedelta(days=31)
    if start is not None and end is not None:
        if end <= start:
            errors.setdefault("to", "must be after from")
        elif end - start > MAX_RANGE:
            errors.setdefault("to", "must be within a year of from")
    cursor = _parse_cursor(after) if after else None
    if after and cursor is None:
        errors["after"] = "is not a cursor from this list"
    if errors:
        raise visits.VisitError(errors)
    query = Visit.select(*Visit._meta.columns, Visit.assignee.name.as_alias("assignee_name"),
                         Visit.case.number.as_alias("case_number"),
                         Visit.case.subject.as_alias("case_subject"),
                         Visit.case.customer.as_alias("customer"),
                         Visit.case.customer.name.as_alias("customer_name")).where(
        (Visit.assignee == (assignee if assignee is not None else actor.id))
        & (Visit.starts_at >= start) & (Visit.starts_at < end))
    if status:
        query = query.where(Visit.status == status)
    # Row scope of the cases: one sub-select, so a page costs one query whatever its size.
    where = row_filter(rapport, actor, "service.case.view", Case)
    if where is not None:
        query = query.where(Visit.case.is_in(Case.select(Case.id).where(where)))
    if cursor is not None:
        at, visit_id = cursor
        query = query.where((Visit.starts_at > at)
                            | ((Visit.starts_at == at) & (Visit.id > visit_id)))
    rows = await query.order_by(Visit.starts_at).order_by(Visit.id).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [{**_visit(r), "case_number": r["case_number"],
                      "case_subject": r["case_subject"], "customer": r["customer"],
                      "customer_name": r["customer_name"]} for r in rows],
            "next": _cursor(rows[-1]) if more else None}


ROUTES: list = [api_case_visits, api_visit_create, api_visit_update, api_visit_cancel,
                api_visits]
