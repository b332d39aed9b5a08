"""Demo quotes: a few open deals get a quote (drafts, sent ones waiting for the customer, a
declined one), so `make run` shows quotes in the list, on deals, in the 360° panel and the
portal with discounts and tax like real ones."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from plugins.sales import quotes
from plugins.sales.tables import Opportunity, Product, Quote

# (product SKU, quantity, discount %) per quote; tax 19 % as on the demo orders.
BASKETS = [
    [("CRM-PRO", "10", "10"), ("SVC-ONBOARD", "1", "0")],
    [("CRM-ENT", "25", "15"), ("SVC-ONBOARD", "2", "0"), ("SVC-TRAIN", "3", "5")],
    [("CRM-START", "5", "0"), ("HW-SCAN", "2", "0")],
    [("CRM-PRO", "4", "0"), ("SVC-TRAIN", "1", "0")],
]


async def seed(rapport, count: int = 8) -> None:
    rng = random.Random(11)
    skus = {p["sku"]: p["id"] for p in await Product.select(Product.id, Product.sku).run()}
    deals = await Opportunity.select(
        Opportunity.id, Opportunity.customer, Opportunity.owner, Opportunity.team).where(
        (Opportunity.status == "open") & Opportunity.customer.is_not_null()).order_by(
        Opportunity.id).limit(count).run()
    for n, deal in enumerate(deals):
        basket = BASKETS[n % len(BASKETS)]
        if any(sku not in skus for sku, _, _ in basket):
            continue
        row: dict[str, Any] = await quotes.create_quote(rapport, None, {
            "customer": deal["customer"], "opportunity": deal["id"], "owner": deal["owner"],
            "team": deal["team"], "valid_until": (date.today() + timedelta(
                days=rng.choice([14, 30, 45]))).isoformat(),
            "notes": "Prices include delivery and set-up.",
            "lines": [{"product": skus[sku], "quantity": quantity, "discount_percent": discount,
                       "tax_percent": "19"} for sku, quantity, discount in basket]})
        if n % 3 == 2:
            continue  # a draft still being written
        await quotes.send_quote(None, {**row, "status": "draft", "superseded": False})
        if n % 4 == 3:
            await Quote.update({Quote.status: "declined", Quote.decided_at: datetime.now(UTC),
                                Quote.decline_reason: "We chose a smaller package."}).where(
                Quote.id == row["id"]).run()
