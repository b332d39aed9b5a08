"""Demo data: a points program with tiers, earning rules and rewards, and members with a
year of history (purchases, a return, redemptions, a voucher used at a till, expiry)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.customers.tables import Customer
from plugins.loyalty import ledger, members, purchases, rewards, tiers, vouchers
from plugins.loyalty.programs import create_program
from plugins.loyalty.rules import create_rule
from plugins.loyalty.tables import Ledger, Lot, Member, MonthlyStat, Program, Voucher

NAME = "Rapport Rewards"


# No built-in role pattern grants the verbs enrol, adjust, earn or redeem (a self-hoster
# decides who does): the demo's roles get what their people would do at a counter or desk.
DEMO_GRANTS = {
    "manager": ("loyalty.member.enrol", "loyalty.points.adjust", "loyalty.voucher.redeem"),
    "sales_representative": ("loyalty.member.enrol", "loyalty.voucher.redeem"),
    "field_representative": ("loyalty.member.enrol", "loyalty.voucher.redeem"),
    "service_agent": ("loyalty.member.view", "loyalty.member.enrol", "loyalty.points.adjust",
                      "loyalty.voucher.redeem"),
}


async def demo_roles() -> None:
    from core.identity.tables import Role, RolePermission

    roles = {r["key"]: r["id"] for r in await Role.select(Role.id, Role.key).where(
        Role.key.is_in(list(DEMO_GRANTS))).run()}
    held = {(g["role"], g["permission"]) for g in await RolePermission.select(
        RolePermission.role, RolePermission.permission).where(
        RolePermission.role.is_in(list(roles.values()) or [0])).run()}
    missing = [RolePermission(role=roles[key], permission=name, scope="all")
                  for key, names in DEMO_GRANTS.items() if key in roles
                  for name in names if (roles[key], name) not in held]
    if missing:
        await RolePermission.insert(*missing).run()


async def seed(rapport, customers: int) -> None:
    await demo_roles()
    if await Program.exists().where(Program.name == NAME).run():
        return  # seeded already
    rng = random.Random(18)
    now = datetime.now(UTC)
    program = await create_program(None, {
        "name": NAME, "currency": "EUR", "point_value": "0.01", "expiry_months": 24,
        "expiry_notice_days": 30, "pending_days": 0, "terms_version": "2026-1",
        "card_prefix": "RR", "allow_pooling": True,
        "terms": "Earn 1 point per euro spent (net of tax and discounts). Points are worth "
                 "1 cent on rewards and expire 24 months after they were earned. Returns "
                 "take back the points they earned."})
    pid = program["id"]
    december = date(now.year, 12, 1)
    for rule in (
        {"kind": "per_currency_unit", "name": "1 point per euro", "points": "1"},
        {"kind": "first_purchase", "name": "Welcome bonus", "points": "200"},
        {"kind": "birthday", "name": "Birthday bonus", "points": "100"},
        {"kind": "referral", "name": "Refer a friend", "points": "250", "extra_points": "100"},
        {"kind": "touch_point", "name": "Product review", "points": "50",
         "touch_kind": "review"},
    ):
        await create_rule(None, pid, rule)
    levels = {}
    for tier in ({"name": "Member", "threshold": 0},
                 {"name": "Silver", "threshold": 1000, "multiplier": "1.25",
                  "perks": "Early access to sales"},
                 {"name": "Gold", "threshold": 2500, "multiplier": "1.5",
                  "discount_percent": "5", "free_shipping": True,
                  "perks": "Early access to sales\nPriority support"},
                 {"name": "Platinum", "threshold": 6000, "multiplier": "2",
                  "discount_percent": "10", "free_shipping": True,
                  "perks": "Personal adviser\nPriority support"}):
        levels[tier["name"]] = await tiers.save_tier(None, pid, tier)
    catalogue = []
    for reward in (
        {"name": "€5 voucher", "cost": 500, "value": "5.00", "valid_days": 90},
        {"name": "€10 voucher", "cost": 900, "value": "10.00", "valid_days": 90},
        {"name": "€25 voucher", "cost": 2000, "value": "25.00", "valid_days": 60,
         "min_tier": levels["Gold"]["id"]},
        {"name": "Coffee mug", "kind": "gift", "cost": 300, "stock": 50,
         "description": "A mug with our logo, sent with your next order."},
        {"name": "Cinema ticket", "kind": "partner", "cost": 1200, "per_member_limit": 2,
         "description": "One ticket at our partner cinemas."},
    ):
        catalogue.append(await rewards.save_reward(None, pid, reward))
    people = await Customer.select(Customer.id).where(
        (Customer.kind == "contact") & Customer.erased_at.is_null()).order_by(
        Customer.id).limit(max(12, min(60, customers // 5 or 12))).run()
    enrolled = []
    for i, person in enumerate(people):
        referral = enrolled[rng.randrange(len(enrolled))]["referral_code"] \
            if enrolled and rng.random() < 0.2 else ""
        enrolled.append(await members.enrol(
            rapport, None, pid, person["id"], via=("staff", "portal", "api")[i % 3],
            accepted_terms=True, referral_code=referral))
    order = 0
    for member in enrolled:
        fresh = await members.get_member(member["id"])
        for _ in range(rng.randint(1, 9)):
            order += 1
            lines = [{"line_id": f"{order}-{n}", "quantity": str(rng.randint(1, 3)),
                      "net": str(Decimal(rng.randint(1500, 42000)) / 100),
                      "sku": f"SKU-{rng.randint(1, 40):03d}"} for n in range(rng.randint(1, 3))]
            await purchases.earn_purchase(
                rapport, fresh, key=f"p{pid}:api:DEMO-{order}", source="api",
                source_ref=f"api:DEMO-{order}", reference=f"till receipt T-{10000 + order}",
                lines=lines, currency="EUR", allow_pending=False)
        if rng.random() < 0.15:
            await purchases.reverse_purchase(
                member["id"], earn_key=f"p{pid}:api:DEMO-{order}",
                reverse_key=f"p{pid}:api:DEMO-{order}:return:R{order}",
                source_ref=f"api:DEMO-{order}", reference=f"till receipt T-{10000 + order}",
                lines=None, why="return at the shop")
    # Spread each member's history over the last eleven months, oldest first.
    rows = await Ledger.select(Ledger.id, Ledger.member).where(Ledger.program == pid).order_by(
        Ledger.id).run()
    by_member: dict[int, list[int]] = {}
    for row in rows:
        by_member.setdefault(row["member"], []).append(row["id"])
    for member_id, ids in by_member.items():
        start = rng.randint(200, 330)
        await Member.update({Member.enrolled_at: now - timedelta(days=start + 3)}).where(
            Member.id == member_id).run()
        for n, row_id in enumerate(ids):
            days = max(1, int(start * (1 - n / len(ids))) - rng.randint(0, 10))
            await Ledger.update({Ledger.created_at: now - timedelta(days=days)}).where(
                Ledger.id == row_id).run()
    for lot in await Lot.select(Lot.id, Lot.ledger.created_at.as_alias("earned_at")).where(
            Lot.member.program == pid).run():
        await Lot.update({Lot.expires_at: ledger.add_months(lot["earned_at"], 24)}).where(
            Lot.id == lot["id"]).run()
    # A promotion of this December, added after the history (it did not apply back then).
    await create_rule(None, pid, {"kind": "promotion", "name": "Double points in December",
                                  "multiplier": "2", "starts_on": december.isoformat(),
                                  "ends_on": date(now.year, 12, 31).isoformat()})
    await tiers.evaluate_all(rapport)
    for member in enrolled[: len(enrolled) // 2]:
        fresh = await members.get_member(member["id"])
        affordable = [r for r in catalogue if r["cost"] <= fresh["balance"]
                      and r["min_tier"] is None]
        if not affordable:
            continue
        voucher = await rewards.redeem(rapport, None, member["id"],
                                       rng.choice(affordable)["id"])
        if rng.random() < 0.5:
            await vouchers.use(rapport, voucher["code"], used_ref=f"T-{20000 + voucher['id']}",
                               used_by="Shop till 1")
    await rebuild_months(pid)


async def rebuild_months(program_id: int) -> None:
    """Count the month totals again from the ledger (after the demo moved rows in time)."""
    await MonthlyStat.delete().where(MonthlyStat.program == program_id).run()
    rows = await Ledger.select(Ledger.kind, Ledger.points, Ledger.created_at).where(
        Ledger.program == program_id).run()
    for row in rows:
        points, kind = row["points"], row["kind"]
        counts = {}
        if points > 0:
            counts["earned"] = points
        elif kind == "expire":
            counts["expired"] = -points
        elif kind == "reverse":
            counts["reversed"] = -points
        elif points < 0:
            counts["spent"] = -points
        await ledger.bump_month(program_id, row["created_at"], **counts)
    for voucher in await Voucher.select(Voucher.issued_at, Voucher.used_at).where(
            Voucher.program == program_id).run():
        await ledger.bump_month(program_id, voucher["issued_at"], vouchers_issued=1)
        if voucher["used_at"] is not None:
            await ledger.bump_month(program_id, voucher["used_at"], vouchers_used=1)
