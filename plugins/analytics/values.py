"""Customer value: RFM scores and segments, historic and predicted value (MBG/NBD with
Gamma-Gamma, see :mod:`plugins.analytics.model`), churn risk with reasons, cohorts, and the
accuracy of the predictions measured on a hold-out period.

:func:`refresh_all` recomputes everything from the orders (read through the sales plugin's
``sales_read_api`` hook: without sales there is nothing to measure) into the summary tables;
:func:`refresh_customer` recomputes one customer with the last run's model and thresholds,
on each order event. Pages and the API read only the summary tables.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.customers.tables import Customer
from plugins.analytics import model
from plugins.analytics.tables import CohortMonth, CustomerValue, ModelRun, SegmentMonth

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger(__name__)

WEEK = 7 * 86400.0
HOLDOUT_WEEKS = 26  # the last half year is predicted from the rest to measure accuracy
HORIZON_WEEKS = 52  # predicted value and expected orders cover the next year
PAGE = 500
WRITE_BATCH = 500
COHORT_MONTHS = 12
AT_RISK = 50  # churn risk (percent) from which a customer is listed as at risk
CENT = Decimal("0.01")

# (key, label, what it means) in the order the dashboard lists them.
SEGMENTS = (
    ("champions", "Champions", "Bought recently, buy often and spend the most."),
    ("loyal", "Loyal", "Buy often and spend well; not in the last few weeks."),
    ("new", "New customers", "First order very recently."),
    ("potential", "Potential loyalists", "Recent customers with a few orders."),
    ("promising", "Promising", "Recent, but bought little so far."),
    ("attention", "Need attention", "Above average, but not lately."),
    ("about_to_sleep", "About to sleep", "Below average and not lately."),
    ("cannot_lose", "Can't lose them", "Were among the best; no order for a long time."),
    ("at_risk", "At risk", "Spent well and often, long ago."),
    ("hibernating", "Hibernating", "Few, small orders, long ago."),
    ("lost", "Lost", "Lowest recency, frequency and value."),
)
SEGMENT_LABELS = {key: label for key, label, _ in SEGMENTS}


def segment_of(r: int, f: int, m: int, orders: int) -> str:
    """The named segment of RFM scores (each 1 to 5)."""
    fm = (f + m + 1) // 2
    if r >= 4 and fm >= 4:
        return "champions"
    if r == 5 and orders == 1:
        return "new"
    if r >= 3 and fm >= 4:
        return "loyal"
    if r >= 4 and fm >= 2:
        return "potential"
    if r >= 4:
        return "promising"
    if r == 3:
        return "attention" if fm >= 2 else "about_to_sleep"
    if fm >= 5:
        return "cannot_lose"
    if fm >= 3:
        return "at_risk"
    if r == 2:
        return "hibernating"
    return "lost"


def quintiles(values: list[float]) -> list[float]:
    """The 20th, 40th, 60th and 80th percentiles (lower values) of ``values``."""
    if not values:
        return [0.0, 0.0, 0.0, 0.0]
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(len(ordered) * q / 5))] for q in (1, 2, 3, 4)]


def score(value: float, thresholds: list[float], *, lower_is_better: bool = False) -> int:
    """1 to 5: how many quintile boundaries ``value`` lies above (or, for recency, below)."""
    if lower_is_better:
        return 5 - sum(1 for t in thresholds if value > t)
    return 1 + sum(1 for t in thresholds if value > t)


@dataclass
class History:
    """One customer's orders, folded while reading (orders come newest first)."""

    first: float = 0.0  # epoch seconds
    last: float = 0.0
    orders: int = 0
    revenue: Decimal = Decimal(0)
    months: set[int] = field(default_factory=set)  # year * 12 + month - 1 of each order
    # Before the hold-out cutoff: first, last, count, revenue; in the hold-out: count, revenue.
    cal_first: float = 0.0
    cal_last: float = 0.0
    cal_orders: int = 0
    cal_revenue: Decimal = Decimal(0)
    hold_orders: int = 0
    hold_revenue: Decimal = Decimal(0)
    prev_orders: int = 0  # in the half year before the hold-out

    def add(self, moment: float, amount: Decimal, cutoff: float, previous: float,
            month: int) -> None:
        self.first = moment if not self.orders else min(self.first, moment)
        self.last = moment if not self.orders else max(self.last, moment)
        self.orders += 1
        self.revenue += amount
        self.months.add(month)
        if moment < cutoff:
            self.cal_first = moment if not self.cal_orders else min(self.cal_first, moment)
            self.cal_last = moment if not self.cal_orders else max(self.cal_last, moment)
            self.cal_orders += 1
            self.cal_revenue += amount
            if moment >= previous:
                self.prev_orders += 1
        else:
            self.hold_orders += 1
            self.hold_revenue += amount


def _sales(rapport: Rapport) -> Any | None:
    caller = getattr(rapport.hook, "sales_read_api", None)
    return caller(rapport=rapport) if caller is not None else None


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _month(moment: datetime) -> int:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.year * 12 + moment.month - 1


def _month_text(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _fold(histories: dict[int, History], order: dict[str, Any], currency: str, cutoff: float,
          previous: float) -> None:
    if order.get("status") == "cancelled" or order.get("currency") != currency:
        return
    moment = order.get("ordered_at")
    if moment is None:
        return
    amount = Decimal(str(order.get("net_amount") or 0))
    histories.setdefault(order["customer"], History()).add(
        _epoch(moment), amount, cutoff, previous, _month(moment))


async def read_histories(sales: Any, currency: str, now: datetime,
                         customer_id: int | None = None) -> tuple[dict[int, History], int]:
    """Every order (or one customer's) folded per customer; and how many orders were read."""
    cutoff = _epoch(now) - HOLDOUT_WEEKS * WEEK
    previous = cutoff - HOLDOUT_WEEKS * WEEK
    histories: dict[int, History] = {}
    after = None
    count = 0
    while True:
        page = await sales.orders(customer_id=customer_id, after=after, limit=PAGE)
        for order in page:
            _fold(histories, order, currency, cutoff, previous)
        count += len(page)
        if len(page) < PAGE:
            return histories, count
        after = page[-1]["id"]


@dataclass(frozen=True)
class Fitted:
    purchases: model.PurchaseModel
    spend: model.SpendModel
    thresholds: dict[str, list[float]]

    def as_json(self) -> str:
        return json.dumps({"bgnbd": self.purchases.as_dict(), "gamma_gamma": self.spend.as_dict(),
                           "thresholds": self.thresholds})

    @classmethod
    def from_json(cls, text: str) -> Fitted | None:
        try:
            data = json.loads(text or "{}")
            return cls(model.PurchaseModel(**data["bgnbd"]), model.SpendModel(**data["gamma_gamma"]),
                       data["thresholds"])
        except (KeyError, TypeError, ValueError):
            return None


def _weeks(seconds: float) -> float:
    return max(0.0, seconds / WEEK)


def measure_accuracy(histories: dict[int, History], now: float) -> dict[str, Any]:
    """Fit on the orders before the hold-out cutoff, predict the hold-out half year and
    compare: orders and revenue predicted against actual, churn AUC and precision at the top
    10 % (churned = no order in the hold-out)."""
    cutoff = now - HOLDOUT_WEEKS * WEEK
    known = [h for h in histories.values() if h.cal_orders]
    if len(known) < 10:
        return {"customers": len(known), "enough_data": False}
    summaries = [(h.cal_orders - 1, _weeks(h.cal_last - h.cal_first), _weeks(cutoff - h.cal_first))
                 for h in known]
    purchases = model.fit_purchases(summaries)
    spend = model.fit_spend([(h.cal_orders, float(h.cal_revenue) / h.cal_orders) for h in known])
    predicted_orders = predicted_revenue = 0.0
    actual_orders = actual_revenue = 0
    absolute_error = 0.0
    risks, churned = [], []
    for h, (x, t_x, T) in zip(known, summaries, strict=True):
        expected = purchases.expected(x, t_x, T, HOLDOUT_WEEKS)
        value = spend.expected_order_value(h.cal_orders, float(h.cal_revenue) / h.cal_orders)
        predicted_orders += expected
        predicted_revenue += expected * value
        actual_orders += h.hold_orders
        actual_revenue += float(h.hold_revenue)
        absolute_error += abs(expected - h.hold_orders)
        risks.append(1 - purchases.p_alive(x, t_x, T))
        churned.append(h.hold_orders == 0)
    return {
        "enough_data": True, "customers": len(known), "holdout_weeks": HOLDOUT_WEEKS,
        "cutoff": datetime.fromtimestamp(cutoff, UTC).date().isoformat(),
        "predicted_orders": round(predicted_orders, 1), "actual_orders": actual_orders,
        "orders_error": (predicted_orders - actual_orders) / actual_orders if actual_orders
        else None,
        "predicted_revenue": round(predicted_revenue, 2), "actual_revenue": round(actual_revenue, 2),
        "revenue_error": (predicted_revenue - actual_revenue) / actual_revenue
        if actual_revenue else None,
        "mae_orders": absolute_error / len(known),
        "churn_auc": model.auc(risks, churned),
        "churn_precision_top10": model.precision_at(risks, churned, 0.1),
        "churn_rate": sum(churned) / len(churned),
    }


def fit(histories: dict[int, History], now: float) -> Fitted:
    rows = list(histories.values())
    purchases = model.fit_purchases([(h.orders - 1, _weeks(h.last - h.first), _weeks(now - h.first))
                                     for h in rows])
    spend = model.fit_spend([(h.orders, float(h.revenue) / h.orders) for h in rows])
    thresholds = {
        "recency": quintiles([(now - h.last) / 86400 for h in rows]),
        "frequency": quintiles([float(h.orders) for h in rows]),
        "monetary": quintiles([float(h.revenue) for h in rows]),
    }
    return Fitted(purchases, spend, thresholds)


def _days(n: float) -> int:
    return int(n // 86400)


def reasons_for(h: History, risk: int, now: float) -> list[str]:
    """Short sentences saying why a customer's churn risk is what it is."""
    out = []
    idle = _days(now - h.last)
    if h.orders >= 2:
        usual = _days((h.last - h.first) / (h.orders - 1))
        if idle > max(usual, 1) * 1.5:
            out.append(f"No order for {idle} days (usually every {max(usual, 1)} days)")
    elif idle >= 60:
        out.append(f"Only one order, {idle} days ago")
    if h.prev_orders >= 2 and h.hold_orders < h.prev_orders / 2:
        out.append(f"{h.hold_orders} order{'' if h.hold_orders == 1 else 's'} in the last half "
                   f"year against {h.prev_orders} in the half year before")
    if not out and risk >= 50 and idle > 0:
        out.append(f"No order for {idle} days")
    return out


def customer_row(customer_id: int, h: History, fitted: Fitted, now: float,
                 currency: str) -> dict[str, Any]:
    x, t_x, T = h.orders - 1, _weeks(h.last - h.first), _weeks(now - h.first)
    recency = (now - h.last) / 86400
    th = fitted.thresholds
    r = score(recency, th["recency"], lower_is_better=True)
    f = score(float(h.orders), th["frequency"])
    m = score(float(h.revenue), th["monetary"])
    p_alive = fitted.purchases.p_alive(x, t_x, T)
    expected = p_alive * fitted.purchases.expected_if_alive(x, T, HORIZON_WEEKS)
    average = h.revenue / h.orders
    value = expected * fitted.spend.expected_order_value(h.orders, float(average))
    risk = max(0, min(100, round(100 * (1 - p_alive))))
    return {
        "customer": customer_id, "currency": currency,
        "first_order_at": datetime.fromtimestamp(h.first, UTC),
        "last_order_at": datetime.fromtimestamp(h.last, UTC),
        "orders": h.orders, "revenue": h.revenue.quantize(CENT),
        "average_order": average.quantize(CENT), "recency_days": int(recency),
        "r_score": r, "f_score": f, "m_score": m, "segment": segment_of(r, f, m, h.orders),
        "expected_orders": round(expected, 3),
        "predicted_value": Decimal(str(round(value, 2))).quantize(CENT),
        "p_alive": round(p_alive, 4), "churn_risk": risk,
        "reasons": json.dumps(reasons_for(h, risk, now)),
        "refreshed_at": datetime.fromtimestamp(now, UTC),
    }


async def _owners(ids: list[int]) -> dict[int, tuple[int | None, int | None]]:
    out: dict[int, tuple[int | None, int | None]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for row in await Customer.select(Customer.id, Customer.owner, Customer.team).where(
                Customer.id.is_in(chunk) & Customer.erased_at.is_null()).run():
            out[row["id"]] = (row["owner"], row["team"])
    return out


async def _existing_segments() -> dict[int, tuple[str, str, datetime]]:
    out: dict[int, tuple[str, str, datetime]] = {}
    after = 0
    while True:
        rows = await CustomerValue.select(
            CustomerValue.id, CustomerValue.customer, CustomerValue.segment,
            CustomerValue.previous_segment, CustomerValue.segment_since).where(
            CustomerValue.id > after).order_by(CustomerValue.id).limit(5000).run()
        for row in rows:
            out[row["customer"]] = (row["segment"], row["previous_segment"], row["segment_since"])
        if len(rows) < 5000:
            return out
        after = rows[-1]["id"]


def _carry_segment(row: dict[str, Any], before: tuple[str, str, datetime] | None,
                   now: datetime) -> None:
    if before is None:
        row.update(previous_segment="", segment_since=now)
    elif before[0] == row["segment"]:
        row.update(previous_segment=before[1], segment_since=before[2])
    else:
        row.update(previous_segment=before[0], segment_since=now)


def retention(histories: dict[int, History], now: datetime) -> dict[str, Any]:
    """Of the customers who ordered in the twelve months before the last twelve, how many
    ordered again in the last twelve (calendar months, the current one included)."""
    current = _month(now)
    recent = range(current - 11, current + 1)
    before = range(current - 23, current - 11)
    base = retained = 0
    for h in histories.values():
        if any(m in before for m in h.months):
            base += 1
            retained += any(m in recent for m in h.months)
    return {"retention_base": base, "retained": retained,
            "retention_rate": retained / base if base else None}


def cohorts(histories: dict[int, History], now: datetime) -> list[dict[str, Any]]:
    """Retention of the last twelve first-order months: per month after the first, the
    customers who ordered in it."""
    current = _month(now)
    first_months = range(current - COHORT_MONTHS + 1, current + 1)
    counts: dict[tuple[int, int], int] = {}
    sizes: dict[int, int] = {}
    for h in histories.values():
        start = min(h.months)
        if start not in first_months:
            continue
        sizes[start] = sizes.get(start, 0) + 1
        for month in h.months:
            counts[(start, month - start)] = counts.get((start, month - start), 0) + 1
    return [{"cohort": _month_text(start), "age": age, "size": sizes[start],
             "customers": counts.get((start, age), 0), "computed_on": now.date()}
            for start in sorted(sizes) for age in range(0, current - start + 1)]


async def refresh_all(rapport: Rapport, now: datetime | None = None) -> dict[str, Any] | None:
    """Recompute every customer's figures, the segment counts and the cohorts; return the
    run (None when the sales plugin is not enabled)."""
    sales = _sales(rapport)
    if sales is None:
        return None
    started = time.monotonic()
    now = now or datetime.now(UTC)
    currency = sales.default_currency
    histories, order_count = await read_histories(sales, currency, now)
    owners = await _owners(sorted(histories))
    histories = {cid: h for cid, h in histories.items() if cid in owners}
    epoch = _epoch(now)
    accuracy = measure_accuracy(histories, epoch)
    accuracy.update(retention(histories, now))
    fitted = fit(histories, epoch)
    before = await _existing_segments()
    rows = []
    for customer_id, h in histories.items():
        row = customer_row(customer_id, h, fitted, epoch, currency)
        row["owner"], row["team"] = owners[customer_id]
        _carry_segment(row, before.get(customer_id), now)
        rows.append(row)
    month = now.strftime("%Y-%m")
    per_segment: dict[str, dict[str, Any]] = {}
    for row in rows:
        s = per_segment.setdefault(row["segment"], {"customers": 0, "revenue": Decimal(0),
                                                    "predicted_value": Decimal(0), "at_risk": 0})
        s["customers"] += 1
        s["revenue"] += row["revenue"]
        s["predicted_value"] += row["predicted_value"]
        s["at_risk"] += row["churn_risk"] >= AT_RISK
    cohort_rows = cohorts(histories, now)
    async with CustomerValue._meta.db.transaction():
        await CustomerValue.delete(force=True).run()
        for start in range(0, len(rows), WRITE_BATCH):
            await CustomerValue.insert(*[CustomerValue(**r) for r in
                                         rows[start:start + WRITE_BATCH]]).run()
        await SegmentMonth.delete().where(SegmentMonth.month == month).run()
        if per_segment:
            await SegmentMonth.insert(*[SegmentMonth(month=month, segment=k, **v)
                                        for k, v in per_segment.items()]).run()
        await CohortMonth.delete(force=True).run()
        for start in range(0, len(cohort_rows), WRITE_BATCH):
            await CohortMonth.insert(*[CohortMonth(**r) for r in
                                       cohort_rows[start:start + WRITE_BATCH]]).run()
        run = (await ModelRun.insert(ModelRun(
            started_at=now, finished_at=datetime.now(UTC), complete=True, currency=currency,
            customers=len(rows), orders=order_count, params=fitted.as_json(),
            accuracy=json.dumps(accuracy), seconds=round(time.monotonic() - started, 3))
        ).returning(*ModelRun.all_columns()).run())[0]
    log.info("analytics refreshed %s customers from %s orders in %.1f s", len(rows),
             order_count, run["seconds"])
    return run


async def latest_run() -> dict[str, Any] | None:
    return await ModelRun.select().where(ModelRun.complete == True).order_by(  # noqa: E712
        ModelRun.id, ascending=False).first().run()


async def refresh_customer(rapport: Rapport, customer_id: int,
                           now: datetime | None = None) -> dict[str, Any] | None:
    """Recompute one customer with the last full run's model and RFM thresholds (returns the
    row, or None when there is no run yet, sales is off or the customer has no order)."""
    sales = _sales(rapport)
    run = await latest_run()
    if sales is None or run is None:
        return None
    fitted = Fitted.from_json(run["params"])
    if fitted is None:
        return None
    now = now or datetime.now(UTC)
    histories, _ = await read_histories(sales, run["currency"], now, customer_id=customer_id)
    owners = await _owners([customer_id])
    existing = await CustomerValue.select(
        CustomerValue.segment, CustomerValue.previous_segment, CustomerValue.segment_since
    ).where(CustomerValue.customer == customer_id).first().run()
    async with CustomerValue._meta.db.transaction():
        await CustomerValue.delete().where(CustomerValue.customer == customer_id).run()
        h = histories.get(customer_id)
        if h is None or customer_id not in owners:
            return None
        row = customer_row(customer_id, h, fitted, _epoch(now), run["currency"])
        row["owner"], row["team"] = owners[customer_id]
        _carry_segment(row, existing and (existing["segment"], existing["previous_segment"],
                                          existing["segment_since"]), now)
        await CustomerValue.insert(CustomerValue(**row)).run()
    return row
