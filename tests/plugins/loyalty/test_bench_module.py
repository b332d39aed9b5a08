"""The loyalty bench module (bench/plugins/loyalty.py) at a small scale: its bulk seed writes
members, ledger rows, summary rows and lots that agree, every scenario it names answers on the
seeded data, and the earning throughput driver earns each order once."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import app_client, make_user, sign_in

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


async def test_bench_seed_and_scenarios_at_small_scale(make_rapport, monkeypatch):
    from bench.plugins import loyalty as bench_loyalty
    from bench.seed import Seeded
    from plugins.loyalty.tables import Ledger, Lot, Member
    from tests.plugins.loyalty.conftest import new_customer

    monkeypatch.setattr(bench_loyalty, "MEMBERS", 30)
    monkeypatch.setattr(bench_loyalty, "LEDGER", 600)
    rapport = await make_rapport(["loyalty"])
    async with app_client(rapport) as client:
        user = await make_user("bench@example.test")
        customers = [await new_customer(f"Bench customer{i}") for i in range(40)]
        seeded = Seeded(token="", user_id=user, hot_customer_id=customers[0],
                        customer_ids=customers, search_term="Bench", customers=40,
                        interactions=0, seconds=0.0)
        facts = await bench_loyalty.seed(rapport.settings.database_url, seeded)
        assert await Member.count().run() == 30 and await Ledger.count().run() == 600
        for member in await Member.select().run():
            rows = await Ledger.select(Ledger.points).where(Ledger.member == member["id"]).run()
            lots = await Lot.select(Lot.remaining).where(Lot.member == member["id"]).run()
            assert member["balance"] == sum(r["points"] for r in rows) > 0
            assert sum(lot["remaining"] for lot in lots) == member["balance"]
        await sign_in(client, "bench@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        for name, scenario in bench_loyalty.SCENARIOS:
            request = scenario(seeded, facts)
            response = await client.request(request.method, request.path,
                                             content=request.body,
                                             headers=request.headers)
            assert response.status_code in (200, 201), (name, response.text[:300])
        rate = await bench_loyalty.earning_throughput(rapport, orders=20)
        assert rate > 0
        assert await Ledger.count().where(Ledger.source == "order").run() == 20
        await bench_loyalty.earning_throughput(rapport, orders=20)  # replayed: once
        assert await Ledger.count().where(Ledger.source == "order").run() == 20
