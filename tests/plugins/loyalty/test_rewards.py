"""Rewards and vouchers: redemption never overspends (50 at once), a voucher is used once
even by two tills at once, limits, stock and tiers are kept, and a quote is offered the
member's vouchers as discount lines."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from plugins.loyalty import ledger, rewards, tiers, vouchers
from plugins.loyalty.programs import LoyaltyError
from plugins.loyalty.tables import Ledger, Voucher
from tests.plugins.loyalty.conftest import balance, enrolled, new_program


async def voucher_reward(program, **overrides):
    values = {"name": "€10 off", "kind": "discount_voucher", "cost": 100, "value": "10.00",
              "valid_days": 30}
    values.update(overrides)
    return await rewards.save_reward(None, program["id"], values)


async def test_fifty_redemptions_at_once_never_spend_a_point_twice(loyalty_rapport):
    program = await new_program()
    member = await enrolled(loyalty_rapport, program)
    reward = await voucher_reward(program)
    await ledger.earn(member["id"], 1050, explanation="award", source="manual", key="seed")

    async def attempt():
        try:
            return await rewards.redeem(loyalty_rapport, None, member["id"], reward["id"])
        except LoyaltyError as exc:
            return exc

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    issued = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, LoyaltyError)]
    assert len(issued) == 10 and len(refused) == 40
    assert all("only 50 points are available" in e.message for e in refused[-1:])
    assert await balance(member["id"]) == (50, 0)
    assert len({v["code"] for v in issued}) == 10
    rows = await Ledger.select(Ledger.points).where(Ledger.member == member["id"]).run()
    assert sum(r["points"] for r in rows) == 50 and len(rows) == 11


async def test_a_voucher_used_by_two_tills_at_once_is_used_once(loyalty_rapport):
    program = await new_program()
    member = await enrolled(loyalty_rapport, program)
    reward = await voucher_reward(program)
    await ledger.earn(member["id"], 100, explanation="award", source="manual", key="seed")
    voucher = await rewards.redeem(loyalty_rapport, None, member["id"], reward["id"])

    async def till(n):
        try:
            return await vouchers.use(loyalty_rapport, voucher["code"].lower(),
                                      used_ref=f"T{n}-0001", used_by=f"till {n}")
        except LoyaltyError as exc:
            return exc

    first, second = await asyncio.gather(till(1), till(2))
    outcomes = [first, second]
    assert sum(isinstance(o, tuple) for o in outcomes) == 1
    [refusal] = [o for o in outcomes if isinstance(o, LoyaltyError)]
    assert refusal.status == 409 and "already used" in refusal.message
    winner = next(o for o in outcomes if isinstance(o, tuple))[0]
    # The winning till retrying its transaction gets the original answer.
    again, replayed = await vouchers.use(loyalty_rapport, voucher["code"],
                                         used_ref=winner["used_ref"], used_by="till")
    assert replayed and again["id"] == voucher["id"]


async def test_stock_limits_and_tiers_are_kept_and_a_free_reward_is_refused(loyalty_rapport):
    program = await new_program()
    gold = await tiers.save_tier(None, program["id"], {"name": "Gold", "threshold": 500})
    member = await enrolled(loyalty_rapport, program)
    await ledger.earn(member["id"], 1000, explanation="award", source="manual", key="seed")
    with pytest.raises(LoyaltyError) as free:
        await voucher_reward(program, cost="0")
    assert free.value.field == "cost"
    limited = await voucher_reward(program, name="Once", per_member_limit="1", stock="5")
    await rewards.redeem(loyalty_rapport, None, member["id"], limited["id"])
    with pytest.raises(LoyaltyError, match="at most 1 per member"):
        await rewards.redeem(loyalty_rapport, None, member["id"], limited["id"])
    scarce = await voucher_reward(program, name="Scarce", stock="0")
    with pytest.raises(LoyaltyError, match="out of stock"):
        await rewards.redeem(loyalty_rapport, None, member["id"], scarce["id"])
    golden = await voucher_reward(program, name="Gold only", min_tier=str(gold["id"]))
    with pytest.raises(LoyaltyError, match="higher tier"):
        await rewards.redeem(loyalty_rapport, None, member["id"], golden["id"])
    assert await balance(member["id"]) == (900, 0)


async def test_a_quote_is_offered_the_members_valid_vouchers_in_its_currency(loyalty_rapport):
    program = await new_program()
    member = await enrolled(loyalty_rapport, program)
    reward = await voucher_reward(program)
    await ledger.earn(member["id"], 300, explanation="award", source="manual", key="seed")
    kept = await rewards.redeem(loyalty_rapport, None, member["id"], reward["id"])
    used = await rewards.redeem(loyalty_rapport, None, member["id"], reward["id"])
    await vouchers.use(loyalty_rapport, used["code"], used_ref="T-1", used_by="till")
    context = SimpleNamespace(customer_id=member["customer"], currency="EUR")
    [offer] = await vouchers.quote_adjustments({}, context)
    assert offer["source_ref"] == kept["code"] and offer["amount"] == "10.00"
    assert offer["explanation"].startswith("100 points redeemed")
    assert await vouchers.quote_adjustments({}, SimpleNamespace(
        customer_id=member["customer"], currency="USD")) == []
    # Accepting the quote uses the voucher for the order, once.
    from core.plugin import Event

    accepted = Event("sales.quote.accepted", {"order_id": 9, "number": "SO-9", "adjustments": [
        {"source": "loyalty", "source_ref": kept["code"], "label": "x", "amount": "10.00"}]},
        None, 1)
    await vouchers.on_quote_accepted(loyalty_rapport, accepted)
    await vouchers.on_quote_accepted(loyalty_rapport, accepted)
    row = await Voucher.select().where(Voucher.id == kept["id"]).first().run()
    assert (row["status"], row["used_ref"]) == ("used", "SO-9")
