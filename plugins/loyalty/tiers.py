"""Tiers: levels reached on qualifying points (or spend) over a rolling window, their
benefits, the recurring re-evaluation (core.jobs) with a grace period before a downgrade, and
"X points to Gold".

Qualifying points are what a member earned from purchases and bonuses in the window, less
what was taken back; adjustments, transfers and spending do not count. Spend is the money
those purchases earned on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from piccolo.query.functions.aggregate import Sum

from core import records
from core.permissions import Actor
from plugins.loyalty.programs import LoyaltyError, boolean, decimal, integer
from plugins.loyalty.tables import Ledger, Member, Program, Tier

FIELDS = ("name", "threshold", "multiplier", "discount_percent", "free_shipping", "perks")
QUALIFYING_SOURCES = ("order", "api", "bonus", "referral", "birthday", "touch_point")


def clean(data: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(k for k in data if k not in FIELDS and not k.startswith("_"))
    if unknown:
        raise LoyaltyError(unknown[0], "is not a field of a tier")
    name = str(data.get("name") or "").strip()
    if not name:
        raise LoyaltyError("name", "is required")
    if len(name) > 80:
        raise LoyaltyError("name", "must be at most 80 characters")
    return {
        "name": name,
        "threshold": integer("threshold", data.get("threshold") or 0, 0, 2_000_000_000),
        "multiplier": decimal("multiplier", data.get("multiplier") or "1",
                              maximum=Decimal(100), positive=True),
        "discount_percent": decimal("discount_percent", data.get("discount_percent") or "0",
                                    maximum=Decimal(100)),
        "free_shipping": boolean(data.get("free_shipping", False)),
        "perks": str(data.get("perks") or "").strip()[:2000],
    }


async def save_tier(actor: Actor | None, program_id: int, data: dict[str, Any],
                    tier_id: int | None = None, *, ip: str = "") -> dict[str, Any]:
    """Create or change a tier; two tiers of a program never share a threshold or a name."""
    values = clean(data)
    others = await Tier.select().where(Tier.program == program_id).run()
    for other in others:
        if other["id"] == tier_id:
            continue
        if other["threshold"] == values["threshold"]:
            raise LoyaltyError("threshold", f"{other['name']} already starts at "
                                            f"{values['threshold']:,}")
        if other["name"].lower() == values["name"].lower():
            raise LoyaltyError("name", "another tier has this name")
    if tier_id is None:
        return await records.create(actor, Tier, {**values, "program": program_id}, ip=ip)
    return await records.update(actor, Tier, tier_id, values, ip=ip)


async def tiers_of(program_id: int) -> list[dict[str, Any]]:
    return await Tier.select().where(Tier.program == program_id).order_by(
        Tier.threshold).limit(50).run()


async def qualifying(program: dict[str, Any], member_ids: list[int],
                     at: datetime | None = None) -> dict[int, int]:
    """Qualifying points (or whole units of spend) per member in the window, one query."""
    if not member_ids:
        return {}
    since = (at or datetime.now(UTC)) - timedelta(days=program["tier_window_days"])
    measure = Ledger.amount if program["tier_basis"] == "spend" else Ledger.points
    rows = await Ledger.select(Ledger.earned_by, Ledger.kind,
                               Sum(measure, alias="total")).where(
        Ledger.earned_by.is_in(member_ids) & (Ledger.created_at >= since)
        & Ledger.kind.is_in(["earn", "reverse"])).group_by(Ledger.earned_by, Ledger.kind).run()
    out = {member_id: 0 for member_id in member_ids}
    for row in rows:
        # Reversals carry negative points and the (negative) spend they took back.
        out[row["earned_by"]] += int(Decimal(row["total"] or 0))
    return {k: max(v, 0) for k, v in out.items()}


def target_tier(tiers: list[dict[str, Any]], points: int) -> dict[str, Any] | None:
    reached = [t for t in tiers if t["threshold"] <= points]
    return reached[-1] if reached else None


def progress(tiers: list[dict[str, Any]], current_id: int | None, points: int
             ) -> dict[str, Any] | None:
    """The next tier above the member's and how far it is: {tier, missing, percent}."""
    current = next((t for t in tiers if t["id"] == current_id), None)
    floor = current["threshold"] if current else 0
    above = [t for t in tiers if t["threshold"] > max(floor, 0) and t["id"] != current_id]
    if not above:
        return None
    nxt = above[0]
    missing = max(nxt["threshold"] - points, 0)
    span = nxt["threshold"] - floor or 1
    percent = max(0, min(100, round(100 * (points - floor) / span)))
    return {"tier": nxt, "missing": missing, "percent": percent}


async def evaluate(rapport: Any, program: dict[str, Any], members: list[dict[str, Any]],
                   at: datetime | None = None) -> int:
    """Re-evaluate the tiers of ``members``: upgrade at once; a downgrade waits for the
    program's grace period (and the member is told when it starts). Returns changes."""
    at = at or datetime.now(UTC)
    tiers = await tiers_of(program["id"])
    if not tiers:
        return 0
    rank = {t["id"]: i for i, t in enumerate(tiers)}
    points = await qualifying(program, [m["id"] for m in members], at)
    changed = 0
    for member in members:
        value = points.get(member["id"], 0)
        target = target_tier(tiers, value)
        target_id = target["id"] if target else None
        current_rank = rank.get(member["tier"], -1)
        target_rank = rank.get(target_id, -1)
        updates: dict[Any, Any] = {Member.qualifying: value}
        direction = ""
        if target_rank > current_rank:
            updates |= {Member.tier: target_id, Member.tier_since: at,
                        Member.tier_grace_until: None}
            direction = "up"
        elif target_rank < current_rank:
            grace = member["tier_grace_until"]
            if grace is None and program["tier_grace_days"] > 0:
                updates[Member.tier_grace_until] = at + timedelta(days=program["tier_grace_days"])
                direction = "grace"
            elif grace is None or grace <= at:
                updates |= {Member.tier: target_id, Member.tier_since: at,
                            Member.tier_grace_until: None}
                direction = "down"
        elif member["tier_grace_until"] is not None:
            updates[Member.tier_grace_until] = None
        async with Member._meta.db.transaction():
            await Member.update(updates).where(Member.id == member["id"]).run()
            if direction:
                changed += 1
                names = {t["id"]: t["name"] for t in tiers}
                from core.customers.tables import Customer

                owner = await Customer.select(Customer.owner).where(
                    Customer.id == member["customer"]).first().run()
                await rapport.publish("loyalty.tier.changed", {
                    "member_id": member["id"], "customer_id": member["customer"],
                    "owner_id": owner["owner"] if owner else None,
                    "tier": names.get(target_id, "") if direction != "grace" else
                    names.get(member["tier"], ""),
                    "previous_tier": names.get(member["tier"], ""), "direction": direction,
                    "grace_until": (at + timedelta(days=program["tier_grace_days"])).isoformat()
                    if direction == "grace" else None},
                    key=f"customer:{member['customer']}")
    return changed


async def evaluate_all(rapport: Any, at: datetime | None = None, batch: int = 500) -> int:
    """Every member of every active program, a batch at a time (keyset on the id)."""
    changed = 0
    for program in await Program.select().where(Program.active == True).run():  # noqa: E712
        after = 0
        while True:
            members = await Member.select().where(
                (Member.program == program["id"]) & (Member.id > after)
                & (Member.status == "active")).order_by(Member.id).limit(batch).run()
            if not members:
                break
            changed += await evaluate(rapport, program, members, at)
            after = members[-1]["id"]
    return changed


async def tiers_job(rapport: Any, job: Any) -> None:
    await evaluate_all(rapport)
