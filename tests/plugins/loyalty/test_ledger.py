"""The points ledger: earning once per source, exact reversals, pending points, lots spent and
expired first earned first, and the summary row always equal to the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugins.loyalty import ledger, purchases
from plugins.loyalty.programs import LoyaltyError
from plugins.loyalty.tables import Ledger, Lot, Member
from tests.plugins.loyalty.conftest import balance, enrolled, new_program, order_event


async def assert_consistent(member_id: int) -> None:
    """balance + pending == sum of the ledger; lots add up to what is there."""
    member = await Member.select().where(Member.id == member_id).first().run()
    rows = await Ledger.select(Ledger.points).where(Ledger.member == member_id).run()
    assert member["balance"] + member["pending"] == sum(r["points"] for r in rows)
    lots = await Lot.select().where(Lot.member == member_id).run()
    assert sum(lot["remaining"] for lot in lots if lot["state"] == "available") == max(
        member["balance"], 0)
    assert sum(lot["remaining"] for lot in lots if lot["state"] == "pending") == member["pending"]


async def test_an_order_earns_once_with_its_reason_even_when_the_event_is_replayed(
        loyalty_rapport):
    program = await new_program()
    member = await enrolled(loyalty_rapport, program)
    event = order_event(42, member["customer"], [("100.00", 2), ("20.50", 1)])
    await purchases.on_order_event(loyalty_rapport, event)
    await purchases.on_order_event(loyalty_rapport, event)  # redelivered
    assert await balance(member["id"]) == (120, 0)
    [row] = await Ledger.select().where(Ledger.member == member["id"]).run()
    assert row["explanation"] == "120 points: 1 per euro on SO-1042"
    await assert_consistent(member["id"])


async def test_reward_lines_never_earn_and_a_voucher_on_the_total_lowers_every_line(
        loyalty_rapport):
    program = await new_program()
    member = await enrolled(loyalty_rapport, program)
    # 100 net + 19 tax; a 59.50 voucher took the total to 59.50: half of every line earns.
    event = order_event(7, member["customer"], [("100.00", 1), ("50.00", 1, None, "loyalty")],
                        total="59.50")
    await purchases.on_order_event(loyalty_rapport, event)
    assert await balance(member["id"]) == (50, 0)


async def test_partial_returns_take_back_exactly_what_was_earned_once_each(loyalty_rapport):
    program = await new_program(rate="0.333")
    member = await enrolled(loyalty_rapport, program)
    created = order_event(5, member["customer"], [("100.00", 3), ("10.00", 1)])
    await purchases.on_order_event(loyalty_rapport, created)
    earned = (await balance(member["id"]))[0]
    assert earned == 36  # 33.3 + 3.33 = 36.63, rounded down once
    line = created.payload["lines"][0]
    for n, return_id in ((1, 1), (2, 2)):
        returned = order_event(5, member["customer"], [], name="sales.order.returned",
                               event_id=900 + n, return_id=return_id,
                               return_number=f"R-{return_id}")
        returned.payload["lines"] = [{**line, "quantity": str(n)}]
        await purchases.on_order_event(loyalty_rapport, returned)
        await purchases.on_order_event(loyalty_rapport, returned)  # redelivered: once
    last = order_event(5, member["customer"], [], name="sales.order.returned", event_id=999,
                       return_id=3, return_number="R-3")
    last.payload["lines"] = [{**created.payload["lines"][1], "quantity": "1"}]
    await purchases.on_order_event(loyalty_rapport, last)
    assert await balance(member["id"]) == (0, 0)
    rows = await Ledger.select(Ledger.points, Ledger.explanation).where(
        (Ledger.member == member["id"]) & (Ledger.kind == "reverse")).order_by(Ledger.id).run()
    assert [r["points"] for r in rows] == [-11, -22, -3]
    assert rows[0]["explanation"] == "11 points taken back: return R-1 on SO-1005"
    await assert_consistent(member["id"])


async def test_a_cancelled_order_after_spending_goes_negative_only_if_the_program_allows(
        loyalty_rapport):
    strict = await new_program(name="Strict")
    lenient = await new_program(name="Lenient", allow_negative=True)
    for program, expected in ((strict, 0), (lenient, -60)):
        member = await enrolled(loyalty_rapport, program, name=f"Ada {program['name']}")
        await purchases.on_order_event(loyalty_rapport, order_event(
            program["id"] * 100, member["customer"], [("100.00", 1)]))
        await ledger.spend(member["id"], 60, explanation="reward", source="reward")
        await purchases.on_order_event(loyalty_rapport, order_event(
            program["id"] * 100, member["customer"], [], name="sales.order.cancelled",
            whole_order=True, event_id=program["id"] * 1000))
        assert (await balance(member["id"]))[0] == expected
        await assert_consistent(member["id"])
        # New points repay a debt first; expiry never takes the balance below zero.
        await ledger.earn(member["id"], 100, explanation="bonus", source="manual",
                          key=f"bonus:{member['id']}")
        assert (await balance(member["id"]))[0] == expected + 100
        await ledger.expire_lots(datetime.now(UTC) + timedelta(days=99999))
        await assert_consistent(member["id"])
        assert (await balance(member["id"]))[0] >= 0


async def test_expiry_takes_the_oldest_lots_first_and_never_twice(loyalty_rapport):
    program = await new_program(expiry_months=12)
    member = await enrolled(loyalty_rapport, program)
    for n in (1, 2):
        await ledger.earn(member["id"], 100, explanation=f"lot {n}", source="manual",
                          key=f"lot:{n}")
    await ledger.spend(member["id"], 150, explanation="spent", source="reward")
    old = await Lot.select().where(Lot.member == member["id"]).order_by(Lot.id).run()
    assert [lot["remaining"] for lot in old] == [0, 50]  # first earned, first spent
    await Lot.update({Lot.expires_at: datetime.now(UTC) - timedelta(days=1)}).where(
        Lot.id == old[1]["id"]).run()
    assert await ledger.expire_lots() == 50
    assert await ledger.expire_lots() == 0
    assert await balance(member["id"]) == (0, 0)
    [row] = await Ledger.select().where((Ledger.member == member["id"])
                                        & (Ledger.kind == "expire")).run()
    assert row["points"] == -50 and "expired" in row["explanation"]
    await assert_consistent(member["id"])


async def test_pending_points_wait_for_their_days_or_for_shipping(loyalty_rapport):
    waiting = await new_program(name="Wait", pending_days=14)
    shipping = await new_program(name="Ship", pending_until_fulfilled=True)
    a = await enrolled(loyalty_rapport, waiting, name="Ada Wait")
    b = await enrolled(loyalty_rapport, shipping, name="Bob Ship")
    await purchases.on_order_event(loyalty_rapport, order_event(1, a["customer"],
                                                                [("80.00", 1)]))
    await purchases.on_order_event(loyalty_rapport, order_event(2, b["customer"],
                                                                [("80.00", 1)]))
    assert await balance(a["id"]) == (0, 80) and await balance(b["id"]) == (0, 80)
    with pytest.raises(LoyaltyError):
        await ledger.spend(a["id"], 10, explanation="too soon", source="reward")
    assert await ledger.release(a["id"], due_before=datetime.now(UTC)) == 0
    assert await ledger.release(a["id"], due_before=datetime.now(UTC) + timedelta(days=15)) == 80
    await purchases.on_order_event(loyalty_rapport, order_event(
        2, b["customer"], [], name="sales.order.fulfilled", fully_fulfilled=True, event_id=77))
    assert await balance(a["id"]) == (80, 0) and await balance(b["id"]) == (80, 0)
    await assert_consistent(a["id"])
    await assert_consistent(b["id"])


async def test_a_pending_order_returned_takes_back_its_pending_points(loyalty_rapport):
    program = await new_program(pending_days=30)
    member = await enrolled(loyalty_rapport, program)
    await purchases.on_order_event(loyalty_rapport, order_event(3, member["customer"],
                                                                [("40.00", 2)]))
    await purchases.on_order_event(loyalty_rapport, order_event(
        3, member["customer"], [], name="sales.order.cancelled", whole_order=True, event_id=5))
    assert await balance(member["id"]) == (0, 0)
    await assert_consistent(member["id"])
