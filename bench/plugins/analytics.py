"""Customer analytics at scale: the full refresh (every order read through the sales read
API, models fitted, every customer rescored and written), the per-customer refresh after an
order, and the pages and API, which read only the summary tables.

Two ways to run it:

- ``bench/run.py --plugins sales,analytics``: the sales bench seeds its orders (1,000,000 by
  default, ``RAPPORT_BENCH_SALES_ORDERS``), then :func:`seed` times the full refresh and the
  per-customer refresh and the harness drives :data:`SCENARIOS` over HTTP.
- Standalone, in process, for a quick figure on either database::

      .venv/bin/python -m bench.plugins.analytics --customers 20000 --orders 100000
      .venv/bin/python -m bench.plugins.analytics --customers 20000 --orders 100000 \\
          --database postgresql://postgres@127.0.0.1:5432/test

  It seeds customers (bench.seed) and orders with real buying rhythms (each customer buys at
  their own pace and may stop for good after an order), then prints the refresh times and
  each page's p95 over in-process requests. Issue 21 asks for 1,000,000 customers and orders.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.scenarios import HTML, Request
from bench.seed import _sqlite_value, bulk_insert, log

PLUGIN = "analytics"
SEED_AFTER = ("sales",)  # the refresh measures the sales bench's orders


async def _rapport_for(database_url: str):
    from core.app import Rapport
    from core.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    return Rapport(Settings.from_env({"RAPPORT_DATA_DIR": str(data_dir),
                                      "RAPPORT_DATABASE_URL": database_url,
                                      "RAPPORT_WORKER": "off"}),
                   plugins=["sales", "analytics"])


async def time_refreshes(rapport, samples: int = 200) -> dict:
    """The full refresh once, then the per-customer refresh of ``samples`` customers."""
    from plugins.analytics import values
    from plugins.analytics.tables import CustomerValue

    began = time.perf_counter()
    run = await values.refresh_all(rapport)
    full = time.perf_counter() - began
    if run is None:
        log("analytics: sales is not enabled: nothing to refresh")
        return {}
    log(f"analytics: full refresh of {run['customers']:,} customers from {run['orders']:,} "
        f"orders in {full:.1f} s")
    ids = [r["customer"] for r in await CustomerValue.select(CustomerValue.customer).order_by(
        CustomerValue.id).limit(samples).run()]
    one = []
    for customer_id in ids:
        began = time.perf_counter()
        await values.refresh_customer(rapport, customer_id)
        one.append(time.perf_counter() - began)
    p95 = _p95(one) * 1000
    log(f"analytics: per-customer refresh p95 {p95:.1f} ms over {len(one)} customers")
    hot = ids[0] if ids else 1
    return {"full_seconds": full, "one_p95_ms": p95, "customer": hot,
            "customers": run["customers"], "orders": run["orders"]}


async def seed(database_url: str, seeded) -> dict:
    """After the sales bench's orders: time the refreshes (facts for the scenarios)."""
    rapport = await _rapport_for(database_url)
    return await time_refreshes(rapport)


SCENARIOS = [
    ("analytics dashboard", lambda seeded, facts: Request("/analytics", headers=HTML)),
    ("analytics dashboard, one segment",
     lambda seeded, facts: Request("/analytics?segment=champions", headers=HTML)),
    ("customers at risk", lambda seeded, facts: Request("/analytics/at-risk", headers=HTML)),
    ("analytics API, at risk",
     lambda seeded, facts: Request("/api/v1/analytics/customers?at_risk=true")),
    ("360 panel: value and churn risk",
     lambda seeded, facts: Request(f"/analytics/panels/customer/{facts.get('customer', 1)}",
                                   headers=HTML)),
]


# --- standalone ------------------------------------------------------------------------------


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)] if ordered else 0.0


async def _scratch_url(database: str | None):
    if not database:
        path = Path(tempfile.mkdtemp(prefix="bench-analytics-")) / "bench.sqlite3"
        return f"sqlite:///{path}", None
    import asyncpg

    name = f"rapport_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, _ = database.rpartition("/")

    async def drop():
        conn = await asyncpg.connect(database)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return f"{base}/{name}", drop


def order_rows(customer_ids: list[int], total: int, now: datetime, sqlite: bool):
    """``total`` orders over three years: each customer buys at their own pace and stops
    for good after an order with their own probability; customers are visited again (a
    new spell of buying) until the total is reached."""
    rnd = random.Random(21)
    stamp = _sqlite_value if sqlite else (lambda at: at)
    number = 0
    while number < total:
        for customer in customer_ids:
            interval = rnd.choice([14, 30, 45, 60, 90, 180])
            dropout = rnd.choice([0.02, 0.05, 0.1, 0.2, 0.4])
            day = rnd.randint(1, 3 * 365)
            while day >= 0 and number < total:
                number += 1
                amount = Decimal(rnd.randint(20, 400))
                at = stamp(now - timedelta(days=day, minutes=rnd.randint(0, 600)))
                yield (number, f"BA-{number}", customer, "completed", "EUR", amount, amount,
                       at, at)
                if rnd.random() < dropout:
                    break
                day -= max(1, int(rnd.expovariate(1 / interval)))
            if number >= total:
                return


async def standalone(customers: int, orders: int, database: str | None, requests: int) -> None:
    import httpx

    from bench.seed import seed as core_seed
    from core import db
    from plugins.sales.tables import SalesOrder

    url, drop = await _scratch_url(database)
    backend = "postgresql" if database else "sqlite"
    rapport = await _rapport_for(url)
    await rapport.migrate()
    rapport.activate()
    await db.connect(rapport.engine, pool_size=4)
    try:
        seeded = await core_seed(rapport, customers, 0)
        # Ids 1..N in the fresh database (seeded.customer_ids is a sample of them).
        rows = list(order_rows(list(range(1, customers + 1)), orders, datetime.now(UTC),
                               url.startswith("sqlite")))
        await bulk_insert(url, SalesOrder, iter(rows), len(rows), columns=[
            "id", "number", "customer", "status", "currency", "net_amount", "total_amount",
            "ordered_at", "updated_at"])
        log(f"{backend}: {customers:,} customers, {len(rows):,} orders")
        facts = await time_refreshes(rapport)
        transport = httpx.ASGITransport(app=rapport.asgi)
        headers = {"Authorization": f"Bearer {seeded.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers=headers) as client:
            for name, scenario in SCENARIOS:
                request = scenario(seeded, facts)
                samples = []
                for _ in range(requests):
                    began = time.perf_counter()
                    response = await client.get(request.path, headers=request.headers or {})
                    samples.append(time.perf_counter() - began)
                    assert response.status_code == 200, (request.path, response.status_code)
                print(f"{backend}: {name}: p95 {_p95(samples) * 1000:.1f} ms, median "
                      f"{statistics.median(samples) * 1000:.1f} ms ({requests} requests, "
                      "in process)", flush=True)
    finally:
        await db.disconnect(rapport.engine)
        if drop is not None:
            await drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--database", default=None,
                        help="a PostgreSQL URL to create the scratch database beside "
                             "(default: SQLite)")
    parser.add_argument("--requests", type=int, default=50, help="requests per page")
    args = parser.parse_args()
    asyncio.run(standalone(args.customers, args.orders, args.database, args.requests))


if __name__ == "__main__":
    main()
