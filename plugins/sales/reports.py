"""Figures for the dashboard: pipeline by stage and win rate, always within the user's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from piccolo.query.functions.aggregate import Count, Sum

from core.money import Money
from core.permissions import Actor, scoped
from plugins.sales.pipeline import default_pipeline, stages_of, weighted
from plugins.sales.tables import Opportunity


async def pipeline_by_stage(rapport, actor: Actor) -> list[dict[str, Any]]:
    """One row per open stage and currency: deals, total and weighted amount (x probability)."""
    pipeline = await default_pipeline()
    stages = [s for s in await stages_of(pipeline["id"]) if s["outcome"] == "open"]
    query = Opportunity.select(
        Opportunity.stage, Opportunity.amount_currency, Count(alias="deals"),
        Sum(Opportunity.amount_amount, alias="total"),
    ).where((Opportunity.status == "open") & (Opportunity.pipeline == pipeline["id"]))
    query = scoped(query, rapport, actor, "sales.opportunity.view", Opportunity)
    grouped = await query.group_by(Opportunity.stage, Opportunity.amount_currency).run()
    rows = []
    for stage in stages:
        for group in (g for g in grouped if g["stage"] == stage["id"]):
            total = Decimal(str(group["total"] or 0))
            currency = group["amount_currency"]
            rows.append({"stage": stage["name"], "probability": stage["probability"],
                         "deals": group["deals"], "total": Money(total, currency),
                         "weighted": Money(weighted(total, stage["probability"]), currency)})
        if not any(r["stage"] == stage["name"] for r in rows):
            rows.append({"stage": stage["name"], "probability": stage["probability"],
                         "deals": 0, "total": None, "weighted": None})
    return rows


async def win_rate(rapport, actor: Actor, days: int = 90) -> dict[str, Any]:
    """Deals won out of deals closed (won or lost) in the last ``days`` days."""
    since = datetime.now(UTC) - timedelta(days=days)
    query = Opportunity.select(Opportunity.status, Count(alias="deals")).where(
        Opportunity.status.is_in(["won", "lost"]) & (Opportunity.closed_at >= since))
    query = scoped(query, rapport, actor, "sales.opportunity.view", Opportunity)
    counts = {r["status"]: r["deals"] for r in await query.group_by(Opportunity.status).run()}
    won, lost = counts.get("won", 0), counts.get("lost", 0)
    rate = round(100 * won / (won + lost)) if won + lost else None
    return {"won": won, "lost": lost, "rate": rate, "days": days}
