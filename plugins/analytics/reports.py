"""What the analytics pages and API read: segment counts, the at-risk list, one customer's
figures, cohorts and the last run's accuracy, always from the summary tables and always
within the reader's row-level scope (``analytics.report.view`` on ``analytics_customer``,
which carries each customer's owner and team)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Count, Sum

from core.permissions import Actor, row_filter
from plugins.analytics.tables import CohortMonth, CustomerValue, SegmentMonth
from plugins.analytics.values import AT_RISK, SEGMENTS, latest_run

if TYPE_CHECKING:
    from core.app import Rapport

VIEW = "analytics.report.view"
MAX_ROWS = 1000  # a list pages through at most this many rows


@dataclass(frozen=True)
class Filters:
    """The dashboard's filters (all optional)."""

    segment: str = ""
    owner: int | None = None
    team: int | None = None
    tag: str = ""
    min_risk: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.segment or self.owner or self.team or self.tag
                    or self.min_risk is not None)


def _where(rapport: Rapport, actor: Actor, filters: Filters, permission: str = VIEW
           ) -> list[Any]:
    clauses = []
    scope = row_filter(rapport, actor, permission, CustomerValue)
    if scope is not None:
        clauses.append(scope)
    if filters.segment:
        clauses.append(CustomerValue.segment == filters.segment)
    if filters.owner:
        clauses.append(CustomerValue.owner == filters.owner)
    if filters.team:
        clauses.append(CustomerValue.team == filters.team)
    if filters.tag:
        clauses.append(WhereRaw(
            "analytics_customer.customer IN (SELECT customer FROM core_customer_tag "
            "WHERE tag = {})", filters.tag.strip().lower()[:64]))
    if filters.min_risk is not None:
        clauses.append(CustomerValue.churn_risk >= filters.min_risk)
    return clauses


def _apply(query: Any, clauses: list[Any]) -> Any:
    for clause in clauses:
        query = query.where(clause)
    return query


async def segments(rapport: Rapport, actor: Actor, filters: Filters) -> list[dict[str, Any]]:
    """Per named segment: customers, revenue, predicted value, customers at risk; in the
    order of :data:`SEGMENTS` (segments without customers included, with zeros)."""
    clauses = _where(rapport, actor, filters)
    if not clauses:
        # Everyone, unfiltered: the counts written by the last full refresh.
        latest = await SegmentMonth.select(SegmentMonth.month).order_by(
            SegmentMonth.month, ascending=False).first().run()
        rows = [] if latest is None else await SegmentMonth.select().where(
            SegmentMonth.month == latest["month"]).run()
    else:
        query = CustomerValue.select(
            CustomerValue.segment, Count(CustomerValue.id, alias="customers"),
            Sum(CustomerValue.revenue, alias="revenue"),
            Sum(CustomerValue.predicted_value, alias="predicted_value")).group_by(
            CustomerValue.segment)
        rows = await _apply(query, clauses).run()
        risky = await _apply(CustomerValue.select(
            CustomerValue.segment, Count(CustomerValue.id, alias="n")).where(
            CustomerValue.churn_risk >= AT_RISK).group_by(CustomerValue.segment), clauses).run()
        at_risk = {r["segment"]: r["n"] for r in risky}
        for row in rows:
            row["at_risk"] = at_risk.get(row["segment"], 0)
    found = {r["segment"]: r for r in rows}
    total = sum(r["customers"] for r in rows) or 0
    out = []
    for key, label, meaning in SEGMENTS:
        row = found.get(key, {})
        customers = row.get("customers") or 0
        out.append({"key": key, "label": label, "meaning": meaning, "customers": customers,
                    "share": customers / total if total else 0,
                    "revenue": row.get("revenue") or 0,
                    "predicted_value": row.get("predicted_value") or 0,
                    "at_risk": row.get("at_risk") or 0})
    return out


async def movement(limit_months: int = 6) -> dict[str, Any]:
    """Customers per segment at each of the last months' refreshes."""
    months = [r["month"] for r in await SegmentMonth.select(SegmentMonth.month).distinct()
              .order_by(SegmentMonth.month, ascending=False).limit(limit_months).run()]
    months.reverse()
    rows = await SegmentMonth.select(SegmentMonth.month, SegmentMonth.segment,
                                     SegmentMonth.customers).where(
        SegmentMonth.month.is_in(months or [""])).run()
    table = {(r["month"], r["segment"]): r["customers"] for r in rows}
    return {"months": months, "rows": [
        {"key": key, "label": label, "counts": [table.get((m, key), 0) for m in months]}
        for key, label, _ in SEGMENTS]}


CUSTOMER_COLUMNS = (
    CustomerValue.id, CustomerValue.customer, CustomerValue.customer.name.as_alias("name"),
    CustomerValue.owner.name.as_alias("owner_name"), CustomerValue.currency,
    CustomerValue.orders, CustomerValue.revenue, CustomerValue.average_order,
    CustomerValue.first_order_at, CustomerValue.last_order_at, CustomerValue.recency_days,
    CustomerValue.r_score, CustomerValue.f_score, CustomerValue.m_score, CustomerValue.segment,
    CustomerValue.previous_segment, CustomerValue.segment_since, CustomerValue.expected_orders,
    CustomerValue.predicted_value, CustomerValue.p_alive, CustomerValue.churn_risk,
    CustomerValue.reasons, CustomerValue.refreshed_at)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    try:
        row["reasons"] = json.loads(row.get("reasons") or "[]")
    except ValueError:
        row["reasons"] = []
    return row


async def customers(rapport: Rapport, actor: Actor, filters: Filters, *, limit: int = 50,
                    offset: int = 0, permission: str = VIEW) -> list[dict[str, Any]]:
    """Customers by churn risk then predicted value (highest first), within scope and
    filters; ``offset + limit`` is bounded by :data:`MAX_ROWS`."""
    limit = max(1, min(limit, MAX_ROWS))
    offset = max(0, min(offset, MAX_ROWS - limit))
    query = _apply(CustomerValue.select(*CUSTOMER_COLUMNS),
                   _where(rapport, actor, filters, permission))
    rows = await query.order_by(CustomerValue.churn_risk, CustomerValue.predicted_value,
                                CustomerValue.id, ascending=False).limit(limit).offset(
        offset).run()
    return [_decode(r) for r in rows]


async def customer(rapport: Rapport, actor: Actor, customer_id: int) -> dict[str, Any] | None:
    """One customer's figures, or None (no order yet, or out of the reader's scope)."""
    query = _apply(CustomerValue.select(*CUSTOMER_COLUMNS).where(
        CustomerValue.customer == customer_id), _where(rapport, actor, Filters()))
    row = await query.first().run()
    return _decode(row) if row else None


async def cohorts() -> list[dict[str, Any]]:
    """Cohort retention rows: ``cohort, size, ages`` (a percentage per month after the first,
    the first month being 100)."""
    rows = await CohortMonth.select().order_by(CohortMonth.cohort, CohortMonth.age).limit(
        400).run()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        label = datetime.strptime(row["cohort"], "%Y-%m").strftime("%b %Y")
        item = out.setdefault(row["cohort"], {"cohort": row["cohort"], "label": label,
                                              "size": row["size"], "ages": []})
        item["ages"].append(row["customers"] / row["size"] if row["size"] else 0)
    return list(out.values())


async def run_summary() -> dict[str, Any] | None:
    """The last full refresh with its parameters and accuracy decoded."""
    run = await latest_run()
    if run is None:
        return None
    for key in ("params", "accuracy"):
        try:
            run[key] = json.loads(run[key] or "{}")
        except ValueError:
            run[key] = {}
    cutoff = run["accuracy"].get("cutoff")
    if cutoff:
        moment = datetime.strptime(cutoff, "%Y-%m-%d")
        run["accuracy"]["cutoff_label"] = f"{moment.day} {moment:%b %Y}"
    return run


async def latest_run_brief() -> dict[str, Any] | None:
    return await latest_run()
