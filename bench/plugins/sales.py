"""Sales at scale: 100,000 open opportunities on the pipeline board, 1,000,000 orders (with
lines) and two years of won deals behind the forecast; bundles mined from the latest orders.

Sizes can be lowered for a smoke run with ``RAPPORT_BENCH_SALES_OPEN`` and
``RAPPORT_BENCH_SALES_ORDERS``.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bench.scenarios import HTML, Request
from bench.seed import bulk_insert, log

PLUGIN = "sales"

OPEN = int(os.environ.get("RAPPORT_BENCH_SALES_OPEN", 100_000))
CLOSED = OPEN // 2  # won and lost deals over two years: the forecast's history
ORDERS = int(os.environ.get("RAPPORT_BENCH_SALES_ORDERS", 1_000_000))
PRODUCTS = 300


async def _next_id(table) -> int:
    row = await table.select(table.id).order_by(table.id, ascending=False).first().run()
    return (row["id"] if row else 0) + 1


async def seed(database_url: str, seeded) -> dict:
    from plugins.sales import bundles
    from plugins.sales.pipeline import default_pipeline, stages_of
    from plugins.sales.tables import (
        Opportunity,
        OrderLine,
        PriceBook,
        Product,
        ProductPrice,
        SalesOrder,
    )

    rnd = random.Random(23)
    pipeline = await default_pipeline()
    stages = await stages_of(pipeline["id"])
    open_stages = [s for s in stages if s["outcome"] == "open"]
    won = next(s for s in stages if s["outcome"] == "won")
    lost = next(s for s in stages if s["outcome"] == "lost")
    customers = seeded.customer_ids
    user = seeded.user_id
    now = datetime.now(UTC)
    today = now.date()

    book = (await PriceBook.insert(PriceBook(name="Bench list prices", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    first_product = await _next_id(Product)
    prices = {}
    await Product.insert(*[Product(sku=f"B-{i}", name=f"Bench product {i}",
                                   description="A product for the benchmark.")
                           for i in range(PRODUCTS)]).run()
    product_ids = list(range(first_product, first_product + PRODUCTS))
    for pid in product_ids:
        prices[pid] = Decimal(rnd.randrange(10, 2000))
    await ProductPrice.insert(*[ProductPrice(price_book=book, product=p, currency="EUR",
                                             unit_price=prices[p]) for p in product_ids]).run()

    first = await _next_id(Opportunity)

    def opportunities():
        for i in range(OPEN + CLOSED):
            oid = first + i
            amount = Decimal(rnd.randrange(500, 50_000))
            if i < OPEN:
                stage = rnd.choice(open_stages)
                close = today + timedelta(days=rnd.randrange(-30, 200))
                status, closed_at = "open", None
                touched = now - timedelta(days=rnd.randrange(0, 40))
            else:
                stage = won if rnd.random() < 0.4 else lost
                closed_at = now - timedelta(days=rnd.randrange(0, 730), minutes=rnd.randrange(
                    1440))
                close, status, touched = closed_at.date(), stage["outcome"], closed_at
            yield {"id": oid, "name": f"Deal {oid}", "customer": rnd.choice(customers),
                   "pipeline": pipeline["id"], "stage": stage["id"], "status": status,
                   "amount_amount": amount, "amount_currency": "EUR", "expected_close": close,
                   "owner": user, "competitors": "", "close_reason": "bench" if
                   status == "lost" else "", "last_activity_at": touched, "closed_at": closed_at,
                   "created_at": touched, "updated_at": touched}

    log(f"sales: {OPEN:,} open and {CLOSED:,} closed opportunities")
    await bulk_insert(database_url, Opportunity, opportunities(), OPEN + CLOSED)

    # Orders: baskets of 1-4 products; a few "kits" are bought together far more often than
    # chance, so the bundle miner has something real to find.
    kits = [tuple(rnd.sample(product_ids, 3)) for _ in range(20)]
    first_order = await _next_id(SalesOrder)
    first_line = await _next_id(OrderLine)
    baskets: list[tuple[int, ...]] = []

    def basket() -> tuple[int, ...]:
        if rnd.random() < 0.3:
            kit = rnd.choice(kits)
            return kit if rnd.random() < 0.5 else kit[:2]
        return tuple(rnd.sample(product_ids, rnd.randint(1, 4)))

    def orders():
        start = now - timedelta(days=3 * 365)
        for i in range(ORDERS):
            items = basket()
            baskets.append(items)
            at = start + timedelta(minutes=3 * 365 * 24 * 60 * i // ORDERS)
            total = sum((prices[p] for p in items), Decimal(0))
            yield {"id": first_order + i, "number": f"BO-{first_order + i}",
                   "customer": rnd.choice(customers), "owner": user, "status": "open",
                   "currency": "EUR", "total_amount": total, "net_amount": total,
                   "ordered_at": at, "updated_at": at}

    def lines():
        line_id = first_line
        for i, items in enumerate(baskets):
            for p in items:
                yield {"id": line_id, "sales_order": first_order + i, "product": p,
                       "description": f"Bench product {p - first_product}", "quantity":
                       Decimal(1), "unit_price": prices[p], "net_amount": prices[p]}
                line_id += 1

    log(f"sales: {ORDERS:,} orders")
    await bulk_insert(database_url, SalesOrder, orders(), ORDERS)
    total_lines = sum(len(b) for b in baskets)
    log(f"sales: {total_lines:,} order lines")
    await bulk_insert(database_url, OrderLine, lines(), total_lines)
    began = time.monotonic()
    mined = await bundles.refresh(bundles.Thresholds())
    log(f"sales: {mined['bundles']:,} bundles from the latest {mined['orders']:,} orders in "
        f"{time.monotonic() - began:.1f} s")
    # A quarter target for the bench user, so the widget has won + weighted to set against it.
    from plugins.sales.forecast import period_of
    from plugins.sales.tables import SalesTarget

    await SalesTarget.insert(SalesTarget(period_kind="quarter",
                                         period_start=period_of("quarter", today).start,
                                         owner=user, currency="EUR",
                                         amount=Decimal(50_000_000))).run()
    kit_buyer = customers[len(customers) // 3]
    return {"open": OPEN, "orders": ORDERS, "order_lines": total_lines,
            "bundles": mined["bundles"], "bundle_seconds": round(time.monotonic() - began, 1),
            "customer": kit_buyer, "opportunity": first, "today": date.today().isoformat()}


def board(seeded, facts) -> Request:
    """The pipeline board over 100,000 open deals (each column: its latest 50)."""
    return Request("/sales/board", headers=HTML)


def opportunity_list(seeded, facts) -> Request:
    """The first page of open opportunities."""
    return Request("/sales/opportunities?status=open", headers=HTML)


def forecast(seeded, facts) -> Request:
    """The quarter's forecast: weighted pipeline over the open deals, won and the statistical
    forecast over nine past quarters of closed deals."""
    return Request("/sales/forecast?period=quarter", headers=HTML)


def suggestions(seeded, facts) -> Request:
    """Suggested products (cross-sell, up-sell, bundles) on a customer's 360 view."""
    return Request(f"/sales/panels/customer/{facts.get('customer', seeded.hot_customer_id)}"
                   "/suggestions", headers=HTML)


def forecast_widget(seeded, facts) -> Request:
    """The dashboard's forecast vs target widget."""
    return Request("/sales/widgets/forecast-target", headers=HTML)


SCENARIOS = [
    ("pipeline board (100k open)", board),
    ("opportunity list", opportunity_list),
    ("forecast (quarter)", forecast),
    ("forecast vs target widget", forecast_widget),
    ("360 suggested products", suggestions),
]
