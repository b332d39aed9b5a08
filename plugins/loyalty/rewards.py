"""The rewards catalogue and redemption: a member spends points on a reward and receives a
voucher with a unique, unguessable code and an expiry (see vouchers.py for its use).

Redeeming runs in one transaction that claims the member's wallet row first, then takes one
from the reward's stock with a conditional UPDATE (``stock > 0``), checks the per-member limit
and tier on fresh rows, spends the points and writes the voucher: fifty redemptions at once
spend each point and each item of stock once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core import records
from core.permissions import Actor
from plugins.loyalty import ledger
from plugins.loyalty.members import CODE_ALPHABET
from plugins.loyalty.programs import LoyaltyError, boolean, decimal, integer
from plugins.loyalty.tables import REWARD_KINDS, Member, Program, Reward, Tier, Voucher

FIELDS = ("name", "description", "kind", "cost", "value", "stock", "per_member_limit",
          "min_tier", "valid_days", "active")
KIND_LABELS = {"discount_voucher": "Discount voucher", "free_product": "Free product",
               "gift": "Gift", "partner": "Partner reward"}


def new_code() -> str:
    """LV-XXXX-XXXX-XXXX: 12 characters of a 31-letter alphabet (about 59 random bits)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"LV-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def clean(data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(k for k in data if k not in FIELDS and not k.startswith("_"))
    if unknown:
        raise LoyaltyError(unknown[0], "is not a field of a reward")
    name = str(data.get("name") or "").strip()
    if not name:
        raise LoyaltyError("name", "is required")
    kind = str(data.get("kind") or "discount_voucher").strip()
    if kind not in REWARD_KINDS:
        raise LoyaltyError("kind", f"must be one of {', '.join(REWARD_KINDS)}")
    cost = integer("cost", data.get("cost") if data.get("cost") not in (None, "") else "x",
                   -2_000_000_000, 2_000_000_000)
    if cost <= 0:
        raise LoyaltyError("cost", "a reward must cost at least 1 point")
    value = decimal("value", data.get("value") or "0", maximum=Decimal(1_000_000))
    if kind == "discount_voucher" and value <= 0:
        raise LoyaltyError("value", "a discount voucher must be worth more than 0")
    stock = data.get("stock")
    limit = data.get("per_member_limit")
    tier = data.get("min_tier")
    return {
        "name": name[:150], "description": str(data.get("description") or "").strip()[:2000],
        "kind": kind, "cost": cost, "value": value,
        "stock": None if stock in (None, "") else integer("stock", stock, 0, 2_000_000_000),
        "per_member_limit": None if limit in (None, "") else integer(
            "per_member_limit", limit, 1, 1_000_000),
        "min_tier": None if tier in (None, "") else integer("min_tier", tier, 1, 2 ** 31 - 1),
        "valid_days": integer("valid_days", data.get("valid_days") or 90, 1, 3650),
        "active": boolean(data.get("active", True)),
    }


async def save_reward(actor: Actor | None, program_id: int, data: dict[str, Any],
                      reward_id: int | None = None, *, ip: str = "") -> dict[str, Any]:
    values = clean(data)
    if values["min_tier"] is not None and not await Tier.exists().where(
            (Tier.id == values["min_tier"]) & (Tier.program == program_id)).run():
        raise LoyaltyError("min_tier", "no such tier in this program")
    if reward_id is None:
        return await records.create(actor, Reward, {**values, "program": program_id}, ip=ip)
    issued = await Reward.select(Reward.issued_count).where(Reward.id == reward_id).first(
    ).run()
    if issued and values["stock"] is not None and values["stock"] < issued["issued_count"]:
        raise LoyaltyError("stock", f"must be at least the {issued['issued_count']:,} "
                                    f"already redeemed")
    return await records.update(actor, Reward, reward_id, values, ip=ip)


async def catalogue(program_id: int, *, active_only: bool = True) -> list[dict[str, Any]]:
    query = Reward.select(*Reward.all_columns(), Reward.min_tier.name.as_alias("tier_name"),
                          Reward.min_tier.threshold.as_alias("tier_threshold")).where(
        Reward.program == program_id)
    if active_only:
        query = query.where(Reward.active == True)  # noqa: E712
    return await query.order_by(Reward.cost).limit(200).run()


async def tier_allows(member: dict[str, Any], reward: dict[str, Any]) -> bool:
    if reward["min_tier"] is None:
        return True
    if member["tier"] is None:
        return False
    rows = await Tier.select(Tier.id, Tier.threshold).where(
        Tier.id.is_in([member["tier"], reward["min_tier"]])).run()
    thresholds = {r["id"]: r["threshold"] for r in rows}
    return thresholds.get(member["tier"], -1) >= thresholds.get(reward["min_tier"], 0)


async def redeem(rapport: Any, actor: Actor | None, member_id: int, reward_id: int, *,
                 key: str | None = None) -> dict[str, Any]:
    """Spend the reward's cost and issue its voucher; refusals name what is missing."""
    member = await Member.select().where(Member.id == member_id).first().run()
    if member is None:
        raise LoyaltyError("member", "no such member", status=404)
    wallet = member["pool"] or member["id"]
    async with Member._meta.db.transaction():
        await ledger.claim(wallet)
        if key is not None:
            earlier = await Voucher.select().where(
                Voucher.ledger.idempotency_key == key).first().run()
            if earlier is not None:
                return earlier
        reward = await Reward.select().where((Reward.id == reward_id)
                                             & (Reward.program == member["program"])).first(
        ).run()
        if reward is None or not reward["active"]:
            raise LoyaltyError("reward", "no such reward is offered", status=404)
        if not await tier_allows(member, reward):
            raise LoyaltyError("reward", "this reward is for members of a higher tier",
                               status=409)
        if reward["per_member_limit"] is not None:
            taken = await Voucher.count().where(
                (Voucher.member == member_id) & (Voucher.reward == reward_id)
                & (Voucher.status != "cancelled")).run()
            if taken >= reward["per_member_limit"]:
                raise LoyaltyError("reward", f"at most {reward['per_member_limit']:,} per "
                                             f"member", status=409)
        stocked = await Reward.update({Reward.issued_count: Reward.issued_count + 1}).where(
            (Reward.id == reward_id)
            & (Reward.stock.is_null() | (Reward.stock > Reward.issued_count))).returning(
            Reward.id).run()
        if not stocked:
            raise LoyaltyError("reward", "this reward is out of stock", status=409)
        posted = await ledger.spend(
            wallet, reward["cost"], explanation=f"{reward['cost']:,} points: redeemed for "
            f"{reward['name']}", source="reward", source_ref=f"reward:{reward_id}", key=key,
            in_transaction=True)
        program = await Program.select(Program.currency).where(
            Program.id == member["program"]).first().run()
        at = datetime.now(UTC)
        for _ in range(5):
            code = new_code()
            if not await Voucher.exists().where(Voucher.code == code).run():
                break
        rows = await Voucher.insert(Voucher(
            program=member["program"], member=member_id, reward=reward_id, code=code,
            value=reward["value"], currency=program["currency"], status="issued",
            issued_at=at, expires_at=at + timedelta(days=reward["valid_days"]),
            ledger=posted.row["id"])).returning(*Voucher._meta.columns).run()
        voucher = rows[0]
        await ledger.bump_month(member["program"], at, vouchers_issued=1)
        await rapport.publish("loyalty.reward.redeemed", {
            "member_id": member_id, "customer_id": member["customer"], "reward_id": reward_id,
            "voucher_id": voucher["id"], "points": reward["cost"]},
            actor_id=actor.id if actor is not None and actor.kind == "staff" else None,
            key=f"customer:{member['customer']}")
    return voucher
