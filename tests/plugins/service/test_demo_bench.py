"""The service bench module (bench/plugins/service.py) at a small scale: its bulk seed writes
open and closed cases with unique numbers and one long conversation, and every scenario it
names answers 200 on the seeded data."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import app_client, make_user, sign_in

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


async def test_bench_seed_and_scenarios_at_small_scale(service_rapport, monkeypatch):
    from bench.plugins import service as bench_service
    from bench.seed import Seeded
    from plugins.service.tables import Case, CaseMessage
    from tests.plugins.service.conftest import new_customer

    monkeypatch.setattr(bench_service, "OPEN", 300)
    monkeypatch.setattr(bench_service, "LONG_CONVERSATION", 40)
    async with app_client(service_rapport) as client:
        user = await make_user("bench@example.test")
        customers = [await new_customer(f"Bench customer {i}") for i in range(5)]
        seeded = Seeded(token="", user_id=user, hot_customer_id=customers[0],
                        customer_ids=customers, search_term="Bench", customers=5,
                        interactions=0, seconds=0.0)
        facts = await bench_service.seed(service_rapport.settings.database_url, seeded)

        assert await Case.count().where(Case.is_open == True).run() == 300  # noqa: E712
        assert await Case.count().run() == 330
        numbers = {r["number"] for r in await Case.select(Case.number).run()}
        assert len(numbers) == 330
        assert await CaseMessage.count().where(CaseMessage.case == facts["long_case"]
                                               ).run() == 40
        # A new case after the bulk insert still gets a fresh id (sequences moved on).
        from plugins.service.cases import open_case

        opened = await open_case(service_rapport, None, customer_id=customers[0],
                                 subject="After the bench")
        assert opened["id"] > max(r["id"] for r in await Case.select(Case.id).where(
            Case.id != opened["id"]).run())

        await sign_in(client, "bench@example.test")
        for name, scenario in bench_service.SCENARIOS:
            request = scenario(seeded, facts)
            response = await client.get(request.path, headers=request.headers)
            assert response.status_code == 200, (name, response.status_code)
        page = await client.get(f"/service/cases?queue={facts['queue']}")
        assert "CS-" in page.text
