"""``rapport demo`` with the service plugin: a working help desk to click through, and a second
run that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import connected


async def test_demo_seeds_a_help_desk_and_a_second_run_changes_nothing(make_rapport):
    from core.identity.users import load_actor
    from plugins.service.tables import (
        Article,
        BusinessCalendar,
        Case,
        CaseMessage,
        EmailTemplate,
        Holiday,
        Queue,
        QueueMember,
        RoutingRule,
        SlaPolicy,
        Visit,
    )
    from pwa.field import agenda

    rapport = await make_rapport(["service"])
    async with connected(rapport):
        await rapport.acollect("seed_demo_data", rapport=rapport, customers=60)

        assert {q["name"]: q["assignment"] for q in await Queue.select().run()} == {
            "Front line": "round_robin", "Complaints": "least_loaded",
            "Field repairs": "named"}
        assert await QueueMember.count().run() >= 4
        assert {p["priority"] for p in await SlaPolicy.select().run()} == {
            "urgent", "high", "normal", "low"}
        assert await BusinessCalendar.count().run() == 1 and await Holiday.count().run() >= 10
        rules = await RoutingRule.select().order_by(RoutingRule.position).run()
        assert [r["case_type"] for r in rules][:3] == ["complaint", "complaint", "maintenance"]
        assert any(r["customer_tag"] == "gold" and r["set_priority"] == "high" for r in rules)
        assert {t["key"] for t in await EmailTemplate.select().run()} >= {
            "acknowledgement", "reply", "resolved"}
        articles = await Article.select().run()
        assert 10 <= len(articles) <= 15
        assert {a["audience"] for a in articles} == {"public", "internal"}

        cases = await Case.select().run()
        assert len(cases) >= 12
        assert {c["status"] for c in cases} == {"new", "open", "waiting", "resolved", "closed"}
        assert all(c["number"].startswith("CS-") for c in cases)
        assert any(c["satisfaction"] for c in cases)
        assert await CaseMessage.count().where(CaseMessage.kind == "note").run() >= 1
        assert await CaseMessage.count().run() > len(cases)

        visits = await Visit.select(Visit.assignee.email, Visit.starts_at).run()
        assert len(visits) == 2
        assert {v["assignee.email"] for v in visits} == {"field@example.com"}
        field = await load_actor(rapport, (await Visit.select(Visit.assignee).first().run()
                                           )["assignee"])
        today = datetime.now(UTC).date()
        assert [i for i in await agenda(rapport, field, today) if i.kind == "visit"]
        # The visited customers are the representative's own, so their cards are offline too.
        from core.customers.tables import Customer

        visited = await Visit.select(Visit.case.customer).run()
        owners = {r["owner"] for r in await Customer.select(Customer.owner).where(
            Customer.id.is_in([v["case.customer"] for v in visited])).run()}
        assert owners == {field.id}

        before = (await Case.count().run(), await Article.count().run(),
                  await Queue.count().run(), await Visit.count().run())
        await rapport.acollect("seed_demo_data", rapport=rapport, customers=60)
        assert (await Case.count().run(), await Article.count().run(),
                await Queue.count().run(), await Visit.count().run()) == before
