"""Sales forecast: weighted pipeline, commit and best case per period, team and representative,
plus a statistical forecast from won history with its accuracy measured on past periods.

Categories (by the stage's win probability): *commit* is what sits in stages of at least
``COMMIT_AT`` percent, *best case* adds stages of at least ``BEST_CASE_AT`` percent, *pipeline*
is every open deal expected to close in the period, *weighted* is amount x probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from piccolo.query.functions.aggregate import Sum

from core.permissions import Actor, scoped
from plugins.sales.tables import Opportunity, Stage

COMMIT_AT = 75
BEST_CASE_AT = 50
HISTORY_PERIODS = 6  # past periods on which the statistical forecast's accuracy is measured
WINDOW = 3  # the statistical forecast is the mean of this many preceding periods


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    label: str
    kind: str = "month"  # or "quarter"

    def shifted(self, n: int) -> Period:
        return period_of(self.kind, _add_months(self.start, n * (3 if self.kind == "quarter"
                                                                 else 1)))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(kind: str, day: date) -> Period:
    if kind == "quarter":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        return Period(first, _add_months(first, 3), f"{first.year} Q{(first.month - 1) // 3 + 1}",
                      "quarter")
    first = date(day.year, day.month, 1)
    return Period(first, _add_months(first, 1), first.strftime("%Y-%m"), "month")


@dataclass
class Figures:
    pipeline: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    best_case: Decimal = Decimal(0)
    commit: Decimal = Decimal(0)
    won: Decimal = Decimal(0)
    deals: int = 0

    def add(self, amount: Decimal, probability: int) -> None:
        self.pipeline += amount
        self.weighted += amount * Decimal(probability) / Decimal(100)
        if probability >= BEST_CASE_AT:
            self.best_case += amount
        if probability >= COMMIT_AT:
            self.commit += amount
        self.deals += 1


@dataclass
class Forecast:
    period: Period
    currency: str
    total: Figures
    by_owner: dict[int | None, Figures] = field(default_factory=dict)
    by_team: dict[int | None, Figures] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    statistical: Decimal | None = None
    accuracy: Decimal | None = None  # 1 - mean absolute percentage error, on past periods


def _bounds(period: Period) -> tuple[datetime, datetime]:
    return (datetime.combine(period.start, time(), UTC), datetime.combine(period.end, time(), UTC))


async def _won_in(rapport, actor: Actor, period: Period, currency: str) -> Decimal:
    start, end = _bounds(period)
    query = Opportunity.select(Sum(Opportunity.amount_amount, alias="won")).where(
        (Opportunity.status == "won") & (Opportunity.amount_currency == currency)
        & (Opportunity.closed_at >= start) & (Opportunity.closed_at < end))
    row = await scoped(query, rapport, actor, "sales.opportunity.view", Opportunity).first().run()
    return Decimal(str((row or {}).get("won") or 0))


async def build_forecast(rapport, actor: Actor, period: Period, currency: str) -> Forecast:
    probabilities = {s["id"]: s["probability"] for s in await Stage.select(
        Stage.id, Stage.probability).run()}
    # One aggregate per (stage, owner, team): bounded by the number of reps and stages.
    query = Opportunity.select(
        Opportunity.stage, Opportunity.owner, Opportunity.team,
        Sum(Opportunity.amount_amount, alias="amount"),
    ).where((Opportunity.status == "open") & (Opportunity.amount_currency == currency)
            & (Opportunity.expected_close >= period.start)
            & (Opportunity.expected_close < period.end))
    query = scoped(query, rapport, actor, "sales.opportunity.view", Opportunity)
    grouped = await query.group_by(Opportunity.stage, Opportunity.owner, Opportunity.team).run()
    forecast = Forecast(period=period, currency=currency, total=Figures())
    for row in grouped:
        amount = Decimal(str(row["amount"] or 0))
        probability = probabilities.get(row["stage"], 0)
        for bucket in (forecast.total,
                       forecast.by_owner.setdefault(row["owner"], Figures()),
                       forecast.by_team.setdefault(row["team"], Figures())):
            bucket.add(amount, probability)
    forecast.total.won = await _won_in(rapport, actor, period, currency)
    await _statistical(rapport, actor, forecast)
    return forecast


async def _statistical(rapport, actor: Actor, forecast: Forecast) -> None:
    """Moving average of won amounts; its accuracy is measured by forecasting each of the last
    ``HISTORY_PERIODS`` periods from the ``WINDOW`` before it and comparing with what was won."""
    periods = [forecast.period.shifted(-n) for n in range(HISTORY_PERIODS + WINDOW, 0, -1)]
    won = [await _won_in(rapport, actor, p, forecast.currency) for p in periods]
    errors = []
    for i in range(WINDOW, len(periods)):
        predicted = sum(won[i - WINDOW:i], Decimal(0)) / WINDOW
        actual = won[i]
        forecast.history.append({"period": periods[i].label, "predicted": predicted,
                                 "won": actual})
        if actual > 0:
            errors.append(abs(predicted - actual) / actual)
    forecast.statistical = sum(won[-WINDOW:], Decimal(0)) / WINDOW
    if errors:
        mape = sum(errors, Decimal(0)) / len(errors)
        forecast.accuracy = max(Decimal(0), Decimal(1) - mape)
