"""Staff pages: the analytics dashboard (segments with their movement, value, the model's
measured accuracy, cohorts), the customers-at-risk list (CSV, and a tag that turns it into a
call list or a campaign audience), the dashboard tile and the 360° panel.

Everything reads the summary tables within the reader's scope (see
:mod:`plugins.analytics.reports`); nothing here reads orders.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from core import jobs
from core.audit import client_ip
from core.customers import service as customer_service
from core.customers.service import CustomerError
from core.identity.tables import Team, User
from core.permissions import current_actor
from plugins.analytics import reports
from plugins.analytics.reports import Filters
from plugins.analytics.values import AT_RISK, SEGMENT_LABELS

VIEW = {"permission": "analytics.report.view"}
EXPORT = {"permission": "analytics.report.export"}
MANAGE = {"permission": "analytics.model.manage"}
PAGE = 50
TAG = "at-risk"


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2 ** 31 else None


def filters_from(segment: str = "", owner: str = "", team: str = "", tag: str = "",
                 min_risk: int | None = None) -> Filters:
    return Filters(segment=segment if segment in SEGMENT_LABELS else "", owner=_int(owner),
                   team=_int(team), tag=tag.strip()[:64], min_risk=min_risk)


def _query_string(filters: Filters) -> str:
    from urllib.parse import urlencode

    pairs = [("segment", filters.segment), ("owner", filters.owner), ("team", filters.team),
             ("tag", filters.tag)]
    if filters.min_risk is not None and filters.min_risk != AT_RISK:
        pairs.append(("risk", filters.min_risk))
    return urlencode({k: v for k, v in pairs if v})


async def _choices() -> dict[str, Any]:
    return {
        "owners": await User.select(User.id, User.name).where(User.is_active == True)  # noqa: E712
        .order_by(User.name).limit(200).run(),
        "teams": await Team.select(Team.id, Team.name).order_by(Team.name).limit(200).run(),
        "segment_labels": SEGMENT_LABELS,
    }


@get("/analytics", opt=VIEW, name="analytics-dashboard")
async def dashboard(request: Request, segment: FromQuery[str] = "", owner: FromQuery[str] = "",
                    team: FromQuery[str] = "", tag: FromQuery[str] = "") -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    filters = filters_from(segment, owner, team, tag)
    rows = await reports.segments(rapport, actor, filters)
    peak = max([r["customers"] for r in rows] + [1])
    run = await reports.run_summary()
    # The ten highest churn risks, whatever their level (the list page applies a threshold).
    risky = [r for r in await reports.customers(rapport, actor, filters, limit=10)
             if r["churn_risk"] > 0]
    return Template("analytics/dashboard.html", context={
        "segments": rows, "peak": peak, "run": run, "filters": filters,
        "query": _query_string(filters), "risky": risky,
        "total": sum(r["customers"] for r in rows),
        "revenue": sum(r["revenue"] for r in rows),
        "predicted": sum(r["predicted_value"] for r in rows),
        "at_risk": sum(r["at_risk"] for r in rows),
        "movement": await reports.movement(), "cohorts": await reports.cohorts(),
        "may_refresh": actor.can("analytics.model.manage"), "at_risk_level": AT_RISK,
        "may_export": actor.can("analytics.report.export"),
        "risk_levels": None,
        "queued": request.query_params.get("queued") == "1",
        **await _choices()})


RISK_LEVELS = (30, 50, 70, 90)


def risk_level(value: Any) -> int:
    level = _int(value)
    return level if level in RISK_LEVELS else AT_RISK


@get("/analytics/at-risk", opt=VIEW, name="analytics-at-risk")
async def at_risk(request: Request, segment: FromQuery[str] = "", owner: FromQuery[str] = "",
                  team: FromQuery[str] = "", tag: FromQuery[str] = "",
                  risk: FromQuery[str] = "", page: FromQuery[int] = 1) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    filters = filters_from(segment, owner, team, tag, risk_level(risk))
    page = max(1, min(page, reports.MAX_ROWS // PAGE))
    rows = await reports.customers(rapport, actor, filters, limit=PAGE + 1,
                                   offset=(page - 1) * PAGE)
    run = await reports.run_summary()
    return Template("analytics/at_risk.html", context={
        "rows": rows[:PAGE], "more": len(rows) > PAGE and page < reports.MAX_ROWS // PAGE,
        "page": page, "filters": filters, "query": _query_string(filters), "run": run,
        "threshold": filters.min_risk, "risk_levels": RISK_LEVELS, "tag": TAG, "tagged": request.query_params.get("tagged"),
        "may_export": actor.can("analytics.report.export"),
        **await _choices()})


@post("/analytics/at-risk/tag", opt=EXPORT, name="analytics-at-risk-tag")
async def tag_at_risk(request: Request) -> Redirect:
    """Tag the listed customers (the first 1,000 in scope) ``at-risk`` through core's bulk
    change, which checks ``core.customer.edit`` per customer and audits each."""
    form = await request.form()
    rapport = request.app.state.rapport
    actor = current_actor(request)
    filters = filters_from(str(form.get("segment", "")), str(form.get("owner", "")),
                           str(form.get("team", "")), str(form.get("tag", "")),
                           risk_level(form.get("risk")))
    rows = await reports.customers(rapport, actor, filters, limit=reports.MAX_ROWS,
                                   permission="analytics.report.export")
    changed = 0
    if rows:
        try:
            changed = await customer_service.bulk_change(
                rapport, actor, "add_tag", [r["customer"] for r in rows], TAG,
                ip=client_ip(request))
        except CustomerError:
            changed = 0
    query = _query_string(filters)
    return Redirect(f"/analytics/at-risk?{query}{'&' if query else ''}tagged={changed}",
                    status_code=303)


@get("/analytics/customers.csv", opt=EXPORT, name="analytics-customers-csv")
async def customers_csv(request: Request, segment: FromQuery[str] = "",
                        owner: FromQuery[str] = "", team: FromQuery[str] = "",
                        tag: FromQuery[str] = "", at_risk: FromQuery[bool] = False,
                        risk: FromQuery[str] = "") -> Stream:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    filters = filters_from(segment, owner, team, tag, risk_level(risk) if at_risk else None)
    rows = await reports.customers(rapport, actor, filters, limit=reports.MAX_ROWS,
                                   permission="analytics.report.export")

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["Customer id", "Customer", "Segment", "Recency score",
                         "Frequency score", "Monetary score", "Orders", "Last order",
                         "Revenue", "Predicted value (12 months)", "Currency",
                         "Churn risk (%)", "Reasons"])
        for r in rows:
            writer.writerow([r["customer"], r["name"], SEGMENT_LABELS.get(r["segment"], ""),
                             r["r_score"], r["f_score"], r["m_score"], r["orders"],
                             r["last_order_at"].date().isoformat() if r["last_order_at"] else "",
                             r["revenue"], r["predicted_value"], r["currency"],
                             r["churn_risk"], "; ".join(r["reasons"])])
        yield buffer.getvalue()

    return Stream(lines(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="customer-analytics.csv"'})


def _csv(header: list[str], rows: list[list[Any]], filename: str) -> Stream:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Stream(iter([buffer.getvalue()]), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@get("/analytics/segments.csv", opt=EXPORT, name="analytics-segments-csv")
async def segments_csv(request: Request, segment: FromQuery[str] = "", owner: FromQuery[str] = "",
                       team: FromQuery[str] = "", tag: FromQuery[str] = "") -> Stream:
    """The segment table as shown (same scope and filters)."""
    rows = await reports.segments(request.app.state.rapport, current_actor(request),
                                  filters_from(segment, owner, team, tag))
    run = await reports.run_summary()
    currency = run["currency"] if run else ""
    return _csv(["Segment", "Customers", "Share (%)", "Revenue", "Predicted value (12 months)",
                 "At risk", "Currency"],
                [[r["label"], r["customers"], round(100 * r["share"], 1), r["revenue"],
                  r["predicted_value"], r["at_risk"], currency] for r in rows],
                "customer-segments.csv")


@get("/analytics/cohorts.csv", opt=EXPORT, name="analytics-cohorts-csv")
async def cohorts_csv(request: Request) -> Stream:
    """Cohort retention: one row per first-order month, the share per month after it."""
    items = await reports.cohorts()
    width = max([len(c["ages"]) for c in items] + [1])
    return _csv(["First order month", "Customers"] + [f"Month +{i} (%)" for i in range(width)],
                [[c["cohort"], c["size"]] + [round(100 * v, 1) for v in c["ages"]]
                 for c in items], "cohort-retention.csv")


@post("/analytics/refresh", opt=MANAGE, name="analytics-refresh")
async def refresh_now(request: Request) -> Redirect:
    await jobs.enqueue(request.app.state.rapport, "analytics.refresh", {})
    return Redirect("/analytics?queued=1", status_code=303)


@get("/analytics/widgets/segments", opt=VIEW, name="analytics-widget-segments")
async def segments_widget(request: Request) -> Template:
    rows = await reports.segments(request.app.state.rapport, current_actor(request), Filters())
    return Template("analytics/widget.html", context={
        "segments": [r for r in rows if r["customers"]],
        "peak": max([r["customers"] for r in rows] + [1])})


@get("/analytics/panels/customer/{customer_id:int}", opt=VIEW, name="analytics-panel")
async def customer_panel(request: Request, customer_id: FromPath[int]) -> Template:
    row = await reports.customer(request.app.state.rapport, current_actor(request), customer_id)
    if row is None and not await _visible_customer(request, customer_id):
        raise NotFoundException("not found")
    return Template("analytics/panel.html", context={
        "row": row, "labels": SEGMENT_LABELS, "threshold": AT_RISK})


async def _visible_customer(request: Request, customer_id: int) -> bool:
    from core.customers.tables import Customer
    from core.permissions import scoped

    query = scoped(Customer.exists().where(Customer.id == customer_id),
                   request.app.state.rapport, current_actor(request), "core.customer.view",
                   Customer)
    return await query.run()


ROUTES = [dashboard, at_risk, tag_at_risk, customers_csv, segments_csv, cohorts_csv,
          refresh_now, segments_widget, customer_panel]
