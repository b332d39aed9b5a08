"""Rules, tiers, expiry notices, bonuses, pooling, merging and privacy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.jobs_tables import OutboxEvent
from plugins.loyalty import customers, expiry, ledger, purchases, rules, tiers, touch_points
from plugins.loyalty.members import enrol, set_pool
from plugins.loyalty.programs import LoyaltyError, create_program
from plugins.loyalty.tables import Ledger, Lot, Member
from tests.plugins.loyalty.conftest import (
    balance,
    enrolled,
    new_customer,
    new_program,
    order_event,
)


async def test_invalid_rules_and_programs_are_refused_naming_the_field(loyalty_rapport):
    program = await new_program()
    for data, field in (({"kind": "per_currency_unit", "points": "-1"}, "points"),
                        ({"kind": "promotion", "multiplier": "2"}, "starts_on"),
                        ({"kind": "product_multiplier", "multiplier": "2"}, "product_id"),
                        ({"kind": "touch_point", "points": "5"}, "touch_kind"),
                        ({"kind": "birthday", "points": "10", "starts_on": "2026-12-31",
                          "ends_on": "2026-01-01"}, "ends_on"),
                        ({"kind": "magic"}, "kind")):
        with pytest.raises(LoyaltyError) as refused:
            await rules.create_rule(None, program["id"], data)
        assert refused.value.field == field
    with pytest.raises(LoyaltyError) as bad:
        await create_program(None, {"name": "X", "currency": "euro"})
    assert bad.value.field == "currency"


async def test_promotions_and_product_multipliers_explain_themselves(loyalty_rapport):
    program = await new_program()
    today = datetime.now(UTC).date()
    await rules.create_rule(None, program["id"], {
        "kind": "promotion", "name": "Double points week", "multiplier": "2",
        "starts_on": (today - timedelta(days=1)).isoformat(),
        "ends_on": (today + timedelta(days=1)).isoformat()})
    await rules.create_rule(None, program["id"], {"kind": "product_multiplier",
                                                  "name": "Coffee beans", "sku": "BEANS",
                                                  "multiplier": "3"})
    member = await enrolled(loyalty_rapport, program)
    event = order_event(1, member["customer"], [("10.00", 1), ("5.00", 1)])
    event.payload["lines"][1]["sku"] = "BEANS"
    await purchases.on_order_event(loyalty_rapport, event)
    row = await Ledger.select().where(Ledger.kind == "earn").first().run()
    # (10 + 5 x 3) x 2 = 50
    assert row["explanation"] == ("50 points: 1 per euro on SO-1001, ×3 Coffee beans, "
                                  "×2 Double points week")


async def test_first_purchase_and_referral_bonuses_both_sides_after_the_first_order(
        loyalty_rapport):
    program = await new_program()
    await rules.create_rule(None, program["id"], {"kind": "first_purchase", "points": "200"})
    await rules.create_rule(None, program["id"], {"kind": "referral", "points": "250",
                                                  "extra_points": "100"})
    ada = await enrolled(loyalty_rapport, program)
    bob = await enrolled(loyalty_rapport, program, name="Bob Babbage",
                         referral_code=ada["referral_code"].lower())
    assert await balance(ada["id"]) == (0, 0)
    for n in (1, 2):
        await purchases.on_order_event(loyalty_rapport, order_event(
            n, bob["customer"], [("10.00", 1)]))
    assert await balance(bob["id"]) == (10 + 200 + 100 + 10, 0)
    assert await balance(ada["id"]) == (250, 0)


async def test_a_cancelled_first_order_takes_its_bonuses_back_and_the_next_order_earns_them(
        loyalty_rapport):
    program = await new_program()
    await rules.create_rule(None, program["id"], {"kind": "first_purchase", "points": "200",
                                                  "name": "Welcome bonus"})
    await rules.create_rule(None, program["id"], {"kind": "referral", "points": "250",
                                                  "extra_points": "100", "name": "Referral"})
    ada = await enrolled(loyalty_rapport, program)
    bob = await enrolled(loyalty_rapport, program, name="Bob Babbage",
                         referral_code=ada["referral_code"])
    await purchases.on_order_event(loyalty_rapport, order_event(1, bob["customer"],
                                                                [("10.00", 1)]))
    assert await balance(bob["id"]) == (310, 0) and await balance(ada["id"]) == (250, 0)
    cancelled = order_event(1, bob["customer"], [], name="sales.order.cancelled",
                            whole_order=True, event_id=41)
    await purchases.on_order_event(loyalty_rapport, cancelled)
    await purchases.on_order_event(loyalty_rapport, cancelled)  # redelivered: once
    assert await balance(bob["id"]) == (0, 0) and await balance(ada["id"]) == (0, 0)
    back = await Ledger.select(Ledger.explanation).where(
        (Ledger.kind == "reverse") & (Ledger.earned_by == bob["id"])).order_by(Ledger.id).run()
    assert [r["explanation"] for r in back] == [
        "10 points taken back: order cancelled on SO-1001",
        "200 points taken back: Welcome bonus (order cancelled on SO-1001)",
        "100 points taken back: Referral: welcome bonus for joining through a friend "
        "(order cancelled on SO-1001)"]
    # The next order is the first purchase that stands: the bonuses are given again, once.
    for n in (2, 3):
        await purchases.on_order_event(loyalty_rapport, order_event(
            n, bob["customer"], [("20.00", 1)]))
    assert await balance(bob["id"]) == (20 + 200 + 100 + 20, 0)
    assert await balance(ada["id"]) == (250, 0)
    # A partial return of an order keeps the bonuses; returning all of it takes them back.
    returned = order_event(2, bob["customer"], [], name="sales.order.returned", event_id=42,
                           return_id=7, return_number="R-7")
    returned.payload["lines"] = [{"line_id": 201, "quantity": "1"}]
    await purchases.on_order_event(loyalty_rapport, returned)
    assert await balance(bob["id"]) == (20, 0) and await balance(ada["id"]) == (0, 0)


async def test_tiers_upgrade_at_once_and_downgrade_after_the_grace(loyalty_rapport):
    program = await new_program(tier_grace_days=30)
    silver = await tiers.save_tier(None, program["id"], {"name": "Silver", "threshold": 100})
    gold = await tiers.save_tier(None, program["id"], {"name": "Gold", "threshold": 500})
    member = await enrolled(loyalty_rapport, program)
    await purchases.on_order_event(loyalty_rapport, order_event(1, member["customer"],
                                                                [("520.00", 1)]))
    await tiers.evaluate_all(loyalty_rapport)
    fresh = await Member.select().where(Member.id == member["id"]).first().run()
    assert fresh["tier"] == gold["id"]
    all_tiers = await tiers.tiers_of(program["id"])
    assert tiers.progress(all_tiers, silver["id"], 120)["missing"] == 380
    # A year later the window is empty: a grace period first, then down.
    later = datetime.now(UTC) + timedelta(days=400)
    await tiers.evaluate_all(loyalty_rapport, at=later)
    fresh = await Member.select().where(Member.id == member["id"]).first().run()
    assert fresh["tier"] == gold["id"] and fresh["tier_grace_until"] is not None
    await tiers.evaluate_all(loyalty_rapport, at=later + timedelta(days=31))
    fresh = await Member.select().where(Member.id == member["id"]).first().run()
    assert fresh["tier"] is None and fresh["tier_grace_until"] is None
    names = [e["name"] for e in await OutboxEvent.select(OutboxEvent.name).run()]
    assert names.count("loyalty.tier.changed") == 3


async def test_members_are_told_once_before_their_points_expire(loyalty_rapport):
    program = await new_program(expiry_months=12, expiry_notice_days=30)
    member = await enrolled(loyalty_rapport, program)
    await ledger.earn(member["id"], 70, explanation="x", source="manual", key="k1")
    await Lot.update({Lot.expires_at: datetime.now(UTC) + timedelta(days=10)}, force=True).run()
    assert await expiry.notify_expiring(loyalty_rapport) == 1
    assert await expiry.notify_expiring(loyalty_rapport) == 0
    [event] = await OutboxEvent.select().where(
        OutboxEvent.name == "loyalty.points.expiring").run()
    assert '"points": 70' in event["payload"]


async def test_birthday_and_review_points_are_given_once(loyalty_rapport):
    program = await new_program()
    await rules.create_rule(None, program["id"], {"kind": "birthday", "points": "100"})
    await rules.create_rule(None, program["id"], {"kind": "touch_point", "points": "50",
                                                  "touch_kind": "review",
                                                  "name": "Product review"})
    customer = await new_customer("Ada Lovelace", birthday=date(1990, 2, 14))
    member = await enrol(loyalty_rapport, None, program["id"], customer, via="api",
                         accepted_terms=True)
    for _ in range(2):
        await touch_points.birthdays(loyalty_rapport, today=date(2027, 2, 14))
    from core.interactions.tables import Interaction
    from core.plugin import Event

    row = (await Interaction.insert(Interaction(customer=customer, channel="web",
                                                purpose="review", subject="Five stars")
                                    ).returning(Interaction.id).run())[0]
    event = Event("core.interaction.created", {"id": row["id"], "customer_id": customer})
    await touch_points.on_interaction(loyalty_rapport, event)
    await touch_points.on_interaction(loyalty_rapport, event)
    assert await balance(member["id"]) == (150, 0)


async def test_pooled_points_go_to_the_account_and_merging_combines_memberships(
        loyalty_rapport):
    program = await new_program(allow_pooling=True)
    account_member = await enrolled(loyalty_rapport, program, name="Acme Household")
    contact = await new_customer("Ada Acme", account=account_member["customer"])
    member = await enrol(loyalty_rapport, None, program["id"], contact, via="staff",
                         accepted_terms=True)
    await set_pool(None, member["id"], account_member["id"])
    await purchases.on_order_event(loyalty_rapport, order_event(1, contact, [("30.00", 1)]))
    assert await balance(account_member["id"]) == (30, 0)
    # Merge another customer's membership into Ada's: points and history join hers.
    other = await enrolled(loyalty_rapport, program, name="Ada Duplicate")
    await ledger.earn(other["id"], 40, explanation="40 points: old card", source="manual",
                      key="dup")
    await customers.merge(account_member["customer"], other["customer"])
    assert await balance(account_member["id"]) == (70, 0)
    assert not await Member.exists().where(Member.id == other["id"]).run()
    exported = await customers.export(account_member["customer"])
    assert exported["loyalty"][0]["membership"]["balance"] == 70
    await customers.erase(account_member["customer"])
    erased = await Member.select().where(Member.id == account_member["id"]).first().run()
    assert erased["card_number"].startswith("ERASED-") and erased["status"] == "closed"
    assert erased["balance"] == 70  # the program's accounts keep the points


async def test_demo_data_seeds_once(loyalty_rapport):
    from plugins.loyalty import demo
    from plugins.loyalty.tables import MonthlyStat, Program

    for n in range(15):
        await new_customer(f"Demo Person{n}")
    await demo.seed(loyalty_rapport, 100)
    await demo.seed(loyalty_rapport, 100)
    assert await Program.count().run() == 1
    assert await Member.count().run() >= 12
    assert await MonthlyStat.count().run() >= 2
    # The demo's people can work with members: a help desk agent sees them and awards
    # goodwill points, a representative enrols customers and redeems rewards.
    from core.identity.users import load_actor
    from tests.conftest import make_user

    agent = await load_actor(loyalty_rapport, await make_user(
        "agent@example.test", roles=("service_agent",)))
    rep = await load_actor(loyalty_rapport, await make_user(
        "rep@example.test", roles=("sales_representative",)))
    assert agent.can("loyalty.member.view") and agent.can("loyalty.points.adjust")
    assert rep.can("loyalty.member.enrol") and rep.can("loyalty.voucher.redeem")
    assert not rep.can("loyalty.points.adjust") and not rep.can("loyalty.program.manage")


async def test_a_return_lowers_qualifying_points_and_spend(loyalty_rapport):
    for basis, expected in (("points", 50), ("spend", 50)):
        program = await new_program(name=f"By {basis}", tier_basis=basis)
        await tiers.save_tier(None, program["id"], {"name": "Gold", "threshold": 80})
        member = await enrolled(loyalty_rapport, program, name=f"Ada {basis}")
        order_id = program["id"] * 10
        await purchases.on_order_event(loyalty_rapport, order_event(
            order_id, member["customer"], [("50.00", 1), ("50.00", 1)]))
        fresh = await Member.select().where(Member.id == member["id"]).first().run()
        assert fresh["qualifying"] == 100 and fresh["tier"] is not None
        back = order_event(order_id, member["customer"], [], name="sales.order.returned",
                           event_id=order_id + 1, return_id=order_id, return_number="R-1")
        back.payload["lines"] = [{"line_id": 100 * order_id + 1, "quantity": "1"}]
        await purchases.on_order_event(loyalty_rapport, back)
        fresh = await Member.select().where(Member.id == member["id"]).first().run()
        assert fresh["qualifying"] == expected
        assert fresh["tier_grace_until"] is not None  # below Gold: the grace starts


async def test_a_stamp_card_gives_a_stamp_per_purchase_whatever_its_amount(loyalty_rapport):
    from plugins.loyalty.rewards import redeem, save_reward

    program = await create_program(None, {"name": "Coffee card", "kind": "stamps",
                                          "currency": "EUR", "terms": "Ten for one."})
    await rules.create_rule(None, program["id"], {"kind": "per_purchase", "points": "1",
                                                  "name": "Coffee card"})
    with pytest.raises(LoyaltyError) as refused:
        await rules.create_rule(None, program["id"], {"kind": "per_purchase",
                                                      "points": "0.5"})
    assert refused.value.field == "points"
    coffee = await save_reward(None, program["id"], {"name": "Free coffee", "kind": "free_product",
                                                     "cost": 3})
    member = await enrolled(loyalty_rapport, program)
    for n, amount in ((1, "3.20"), (2, "45.00"), (3, "2.90")):
        await purchases.on_order_event(loyalty_rapport, order_event(
            n, member["customer"], [(amount, 1), ("1.00", 2)]))
    assert await balance(member["id"]) == (3, 0)
    first = await Ledger.select(Ledger.explanation).where(
        Ledger.member == member["id"]).order_by(Ledger.id).first().run()
    assert first["explanation"] == "1 stamp: 1 for the purchase on SO-1001 (Coffee card)"
    from plugins.loyalty.members_api import member_summary

    summary = await member_summary(await Member.select().where(
        Member.id == member["id"]).first().run())
    assert summary["unit"] == "stamps" and summary["balance"] == 3
    # A partial return keeps the stamp (the visit happened); cancelling the order takes it.
    back = order_event(2, member["customer"], [], name="sales.order.returned", event_id=50,
                       return_id=5, return_number="R-5")
    back.payload["lines"] = [{"line_id": 201, "quantity": "1"}]
    await purchases.on_order_event(loyalty_rapport, back)
    assert await balance(member["id"]) == (3, 0)
    await purchases.on_order_event(loyalty_rapport, order_event(
        3, member["customer"], [], name="sales.order.cancelled", whole_order=True, event_id=51))
    assert await balance(member["id"]) == (2, 0)
    await purchases.on_order_event(loyalty_rapport, order_event(
        4, member["customer"], [("3.20", 1)]))
    voucher = await redeem(loyalty_rapport, None, member["id"], coffee["id"])
    assert voucher["code"].startswith("LV-") and await balance(member["id"]) == (0, 0)
