"""Routing: rules in order decide the queue; queues hand cases to a named agent, in turn, or
to the least busy available member."""

from __future__ import annotations

import asyncio
import collections

from tests.conftest import connected
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.routing_helpers import (
    agent,
    insert_case,
    queue,
    rule,
    tag,
)


async def test_first_matching_rule_by_position_decides_the_queue(service_rapport):
    from plugins.service import routing

    async with connected(service_rapport):
        general = await queue("General", "none")
        complaints = await queue("Complaints", "none")
        email = await queue("E-mail", "none")
        await rule(general, position=90)  # matches everything, but comes last
        await rule(email, position=20, channel="email")
        await rule(complaints, position=10, case_type="complaint")
        customer = await new_customer()

        def case(**values):
            return {"customer": customer, "case_type": "service_request", "priority": "normal",
                    "channel": "phone", **values}

        assert (await routing.route(service_rapport, case(case_type="complaint",
                                                          channel="email")))["queue"] == complaints
        assert (await routing.route(service_rapport, case(channel="email")))["queue"] == email
        assert (await routing.route(service_rapport, case()))["queue"] == general


async def test_no_rule_matches_leaves_the_case_alone(service_rapport):
    from plugins.service import routing

    async with connected(service_rapport):
        returns = await queue("Returns", "none")
        await rule(returns, case_type="product_return")
        customer = await new_customer()
        assert await routing.route(service_rapport, {
            "customer": customer, "case_type": "complaint", "priority": "low",
            "channel": "phone"}) == {}


async def test_gold_tag_on_the_account_routes_and_raises_priority(service_rapport):
    from plugins.service import routing

    async with connected(service_rapport):
        vip_agent = await agent("vip@example.test")
        vip = await queue("VIP", "named", named_assignee=vip_agent)
        general = await queue("General", "none")
        await rule(vip, position=1, customer_tag="Gold", set_priority="high")
        await rule(general, position=2)
        account = await new_customer("Acme", kind="account")
        await tag(account, "gold")
        contact = await new_customer("Wile E.")
        from core.customers.tables import Customer

        await Customer.update({Customer.account: account}).where(Customer.id == contact).run()
        plain = await new_customer("Nobody")

        routed = await routing.route(service_rapport, {
            "customer": contact, "case_type": "complaint", "priority": "normal",
            "channel": "phone"})
        assert routed == {"queue": vip, "owner": vip_agent, "team": None, "priority": "high",
                          "priority_rank": 1}
        other = await routing.route(service_rapport, {
            "customer": plain, "case_type": "complaint", "priority": "normal",
            "channel": "phone"})
        assert other["queue"] == general and other["priority"] == "normal"


async def test_priority_condition_and_rule_assignee_override(service_rapport):
    from plugins.service import routing

    async with connected(service_rapport):
        first = await agent("first@example.test")
        boss = await agent("boss2@example.test")
        urgent = await queue("Urgent", "round_robin", members=[first])
        await rule(urgent, priority="urgent", assignee=boss)
        customer = await new_customer()
        routed = await routing.route(service_rapport, {
            "customer": customer, "priority": "urgent", "case_type": "complaint",
            "channel": "phone"})
        assert routed["owner"] == boss and routed["priority_rank"] == 0
        assert await routing.route(service_rapport, {
            "customer": customer, "priority": "high", "case_type": "complaint",
            "channel": "phone"}) == {}


async def test_round_robin_takes_turns_and_skips_away_agents(service_rapport):
    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        bob = await agent("bob@example.test")
        cid = await agent("cid@example.test")
        support = await queue("Support", "round_robin",
                              members=[ann, (bob, False), cid])
        await rule(support)
        customer = await new_customer()
        owners = [(await insert_case(service_rapport, customer))["owner"] for _ in range(5)]
        assert owners == [ann, cid, ann, cid, ann]  # Bob is away

        from plugins.service.tables import QueueMember

        await QueueMember.update({QueueMember.available: True}).where(
            QueueMember.user == bob).run()
        owners = [(await insert_case(service_rapport, customer))["owner"] for _ in range(3)]
        assert owners == [bob, cid, ann]  # resumes after Ann, the last one assigned


async def test_round_robin_with_nobody_available_leaves_the_case_in_the_queue(service_rapport):
    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        support = await queue("Support", "round_robin", members=[(ann, False)])
        await rule(support)
        case = await insert_case(service_rapport, await new_customer())
        assert case["queue"] == support and case["owner"] is None


async def test_deactivated_users_get_no_cases(service_rapport):
    from core.identity.tables import User

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        gone = await agent("gone@example.test")
        await User.update({User.is_active: False}).where(User.id == gone).run()
        support = await queue("Support", "round_robin", members=[ann, gone])
        named = await queue("Named", "named", named_assignee=gone)
        await rule(named, position=1, case_type="complaint")
        await rule(support, position=2)
        customer = await new_customer()
        owners = {(await insert_case(service_rapport, customer))["owner"] for _ in range(3)}
        assert owners == {ann}
        complaint = await insert_case(service_rapport, customer, case_type="complaint")
        assert complaint["queue"] == named and complaint["owner"] is None


async def test_least_loaded_picks_the_member_with_fewest_open_cases(service_rapport):
    from plugins.service.tables import Case

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        bob = await agent("bob@example.test")
        cid = await agent("cid@example.test", )
        pool = await queue("Pool", "least_loaded", members=[ann, bob, (cid, False)])
        manual = await queue("Manual", "none")
        await rule(manual, position=1, channel="chat")
        await rule(pool, position=2)
        customer = await new_customer()
        # Ann already has two open cases and one closed; Bob one open.
        for owner, is_open in ((ann, True), (ann, True), (ann, False), (bob, True)):
            row = await insert_case(service_rapport, customer, channel="chat")
            await Case.update({Case.owner: owner, Case.is_open: is_open}).where(
                Case.id == row["id"]).run()
        owners = [(await insert_case(service_rapport, customer))["owner"] for _ in range(3)]
        # Bob (1) first, then both have 2: Ann is next in turn after Bob, then Bob again.
        assert owners == [bob, ann, bob]


async def test_team_of_the_queue_goes_on_the_case(service_rapport):
    from core.identity.tables import Team

    async with connected(service_rapport):
        ann = await agent("ann@example.test", teams=["Helpdesk"])
        team = (await Team.select(Team.id).where(Team.name == "Helpdesk").first().run())["id"]
        support = await queue("Support", "round_robin", members=[ann], team=team)
        await rule(support)
        case = await insert_case(service_rapport, await new_customer())
        assert (case["queue"], case["owner"], case["team"]) == (support, ann, team)


async def test_inactive_queue_is_skipped_for_the_next_rule(service_rapport):
    async with connected(service_rapport):
        closed = await queue("Closed", "none", active=False)
        general = await queue("General", "none")
        await rule(closed, position=1)
        await rule(general, position=2)
        case = await insert_case(service_rapport, await new_customer())
        assert case["queue"] == general


async def test_round_robin_is_fair_under_concurrent_case_creation(service_rapport, backend):
    """Cases created at the same moment (separate transactions, as in two workers) still go
    to each member in turn: none is given the same 'next' agent twice."""
    async with connected(service_rapport):
        members = [await agent(f"a{i}@example.test") for i in range(3)]
        support = await queue("Support", "round_robin", members=members)
        await rule(support)
        customer = await new_customer()

        async def create():
            for attempt in range(20):
                try:
                    return await insert_case(service_rapport, customer)
                except Exception as exc:  # SQLite: "database is locked" for a writer in a race
                    if "locked" not in str(exc) or attempt == 19:
                        raise
                    await asyncio.sleep(0.05)

        created = await asyncio.gather(*[create() for _ in range(12)])
        counts = collections.Counter(c["owner"] for c in created)
        assert counts == {m: 4 for m in members}
        assert all(c["queue"] == support for c in created)
