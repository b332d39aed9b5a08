"""REST API under ``/api/v1/analytics``: segment counts, customers with their scores, value
and churn risk (filtered, within the caller's scope), one customer, and the last model run
with its measured accuracy. Read only; errors are ``application/problem+json``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery

from core.permissions import current_actor
from core.problems import bad_request, forbidden, problem
from plugins.analytics import reports
from plugins.analytics.values import AT_RISK, SEGMENT_LABELS
from plugins.analytics.values_web import filters_from

VIEW = {"permission": "analytics.report.view"}


def not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "Not found", "No figures for this customer (no order yet, or not "
                   "yours to see)")


API: dict[str, Any] = {
    "exception_handlers": {NotFoundException: not_found, PermissionDeniedException: forbidden,
                           ClientException: bad_request},
    "tags": ["analytics"],
}


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _customer(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("customer", "name", "segment", "r_score", "f_score", "m_score", "orders",
            "revenue", "average_order", "currency", "first_order_at", "last_order_at",
            "recency_days", "expected_orders", "predicted_value", "p_alive", "churn_risk",
            "reasons", "previous_segment", "segment_since", "refreshed_at")
    out = {k: _json(row.get(k)) for k in keys}
    out["segment_label"] = SEGMENT_LABELS.get(row["segment"], "")
    return out


def _check(segment: str, limit: int, offset: int) -> Response | None:
    if segment and segment not in SEGMENT_LABELS:
        return problem(400, "Invalid request", "segment: must be one of "
                       + ", ".join(SEGMENT_LABELS), field="segment")
    if not 1 <= limit <= 200:
        return problem(400, "Invalid request", "limit: must be between 1 and 200",
                       field="limit")
    if not 0 <= offset <= reports.MAX_ROWS - limit:
        return problem(400, "Invalid request", f"offset: must be between 0 and "
                       f"{reports.MAX_ROWS - limit} (filter to narrow the list)", field="offset")
    return None


@get("/api/v1/analytics/segments", opt=VIEW, name="api-analytics-segments", **API)
async def api_segments(request: Request, segment: FromQuery[str] = "", owner: FromQuery[str] = "",
                       team: FromQuery[str] = "", tag: FromQuery[str] = "") -> Response:
    error = _check(segment, 1, 0)
    if error:
        return error
    rows = await reports.segments(request.app.state.rapport, current_actor(request),
                                  filters_from(segment, owner, team, tag))
    run = await reports.latest_run_brief()
    return Response({"segments": [{k: _json(v) for k, v in r.items()} for r in rows],
                     "currency": run and run["currency"],
                     "computed_at": run and _json(run["finished_at"])})


@get("/api/v1/analytics/customers", opt=VIEW, name="api-analytics-customers", **API)
async def api_customers(request: Request, segment: FromQuery[str] = "",
                        owner: FromQuery[str] = "", team: FromQuery[str] = "",
                        tag: FromQuery[str] = "", at_risk: FromQuery[bool] = False,
                        limit: FromQuery[int] = 50, offset: FromQuery[int] = 0) -> Response:
    error = _check(segment, limit, offset)
    if error:
        return error
    rows = await reports.customers(
        request.app.state.rapport, current_actor(request),
        filters_from(segment, owner, team, tag, AT_RISK if at_risk else None),
        limit=limit + 1, offset=offset)
    more = len(rows) > limit and offset + limit < reports.MAX_ROWS
    return Response({"items": [_customer(r) for r in rows[:limit]],
                     "next_offset": offset + limit if more else None})


@get("/api/v1/analytics/customers/{customer_id:int}", opt=VIEW,
     name="api-analytics-customer", **API)
async def api_customer(request: Request, customer_id: FromPath[int]) -> Response:
    row = await reports.customer(request.app.state.rapport, current_actor(request), customer_id)
    if row is None:
        raise NotFoundException("not found")
    return Response(_customer(row))


@get("/api/v1/analytics/model", opt=VIEW, name="api-analytics-model", **API)
async def api_model(request: Request) -> Response:
    run = await reports.run_summary()
    if run is None:
        return Response({"computed_at": None})
    return Response({"computed_at": _json(run["finished_at"]), "currency": run["currency"],
                     "customers": run["customers"], "orders": run["orders"],
                     "seconds": run["seconds"], "parameters": run["params"],
                     "accuracy": run["accuracy"]})


ROUTES = [api_segments, api_customers, api_customer, api_model]
