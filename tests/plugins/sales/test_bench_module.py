"""The sales bench module (bench/plugins/sales.py) at a small scale: its bulk seed writes open
and closed deals and orders with lines, mines bundles from them, and every scenario it names
answers 200 on the seeded data."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import app_client, make_user, sign_in

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


async def test_bench_seed_and_scenarios_at_small_scale(make_rapport, monkeypatch):
    from bench.plugins import sales as bench_sales
    from bench.seed import Seeded
    from plugins.sales.tables import Opportunity, OrderLine, SalesOrder
    from tests.plugins.sales.conftest import new_customer

    monkeypatch.setattr(bench_sales, "OPEN", 200)
    monkeypatch.setattr(bench_sales, "CLOSED", 100)
    monkeypatch.setattr(bench_sales, "ORDERS", 400)
    rapport = await make_rapport(["sales"])
    async with app_client(rapport) as client:
        user = await make_user("bench@example.test")
        customers = [await new_customer(f"Bench customer {i}") for i in range(8)]
        seeded = Seeded(token="", user_id=user, hot_customer_id=customers[0],
                        customer_ids=customers, search_term="Bench", customers=8,
                        interactions=0, seconds=0.0)
        facts = await bench_sales.seed(rapport.settings.database_url, seeded)

        assert await Opportunity.count().where(Opportunity.status == "open").run() == 200
        assert await SalesOrder.count().run() == 400
        assert await OrderLine.count().run() == facts["order_lines"] > 400

        await sign_in(client, "bench@example.test")
        for name, scenario in bench_sales.SCENARIOS:
            request = scenario(seeded, facts)
            response = await client.get(request.path, headers=request.headers)
            assert response.status_code == 200, (name, response.status_code)
