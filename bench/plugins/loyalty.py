"""Loyalty at scale: 1,000,000 members (one per customer, up to the customers seeded) and
20,000,000 ledger rows over two years, with their summary rows, lots and month totals.

Scenarios: balance lookup by card number (the till's call), the member page, the members list,
a replayed purchase (the API's exactly-once path), redemption of a reward by the hot member
(contention on one member's row), and the liability widget, which must not scan the ledger.
Earning throughput on order events is measured by ``earning_throughput`` below (loyalty's
subscriber fed ``sales.order.created`` events by concurrent workers; not an HTTP scenario).

Sizes can be lowered for a smoke run with ``RAPPORT_BENCH_LOYALTY_MEMBERS`` and
``RAPPORT_BENCH_LOYALTY_LEDGER``.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta

from bench.scenarios import HTML, Request
from bench.seed import _sqlite_value, bulk_insert, log

PLUGIN = "loyalty"

MEMBERS = int(os.environ.get("RAPPORT_BENCH_LOYALTY_MEMBERS", 1_000_000))
LEDGER = int(os.environ.get("RAPPORT_BENCH_LOYALTY_LEDGER", 20_000_000))
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def referral_code(n: int) -> str:
    out = []
    for _ in range(8):
        n, digit = divmod(n, len(ALPHABET))
        out.append(ALPHABET[digit])
    return "".join(out)


async def _next_id(table) -> int:
    row = await table.select(table.id).order_by(table.id, ascending=False).first().run()
    return (row["id"] if row else 0) + 1


async def seed(database_url: str, seeded) -> dict:
    from core.customers.tables import Customer
    from plugins.loyalty.programs import create_program
    from plugins.loyalty.rewards import save_reward
    from plugins.loyalty.rules import create_rule
    from plugins.loyalty.tables import Ledger, Lot, Member, MonthlyStat
    from plugins.loyalty.tiers import save_tier

    rnd = random.Random(18)
    now = datetime.now(UTC)
    stamp = _sqlite_value if database_url.startswith("sqlite") else (lambda at: at)
    program = await create_program(None, {"name": "Bench Rewards", "currency": "EUR",
                                          "point_value": "0.01", "expiry_months": 36})
    pid = program["id"]
    await create_rule(None, pid, {"kind": "per_currency_unit", "points": "1"})
    for name, threshold in (("Silver", 1000), ("Gold", 2500), ("Platinum", 6000)):
        await save_tier(None, pid, {"name": name, "threshold": threshold})
    reward = await save_reward(None, pid, {"name": "€5 voucher", "cost": 500, "value": "5"})

    customer_count = await Customer.count().run()
    first_customer = seeded.customer_ids[0]
    members = min(MEMBERS, customer_count)
    per_member = max(1, LEDGER // max(members, 1))
    first_member = await _next_id(Member)
    first_row = await _next_id(Ledger)
    days = 2 * 365
    months: dict[str, list[int]] = {}

    def ledger_rows():
        row_id = first_row
        randrange = rnd.randrange
        for m in range(members):
            member = first_member + m
            balance = 0
            start = days - randrange(0, 60)
            for k in range(per_member):
                at = now - timedelta(days=start * (per_member - k) / per_member,
                                     minutes=randrange(1440))
                if balance >= 500 and randrange(6) == 0:
                    points, kind, words = -500, "redeem", "500 points: redeemed for €5 voucher"
                else:
                    points = randrange(10, 400)
                    kind, words = "earn", f"{points} points: 1 per euro on till receipt {row_id}"
                balance += points
                month = months.setdefault(at.strftime("%Y-%m"), [0, 0])
                month[0 if points > 0 else 1] += abs(points)
                yield (row_id, pid, member, member, kind, points, "api", f"api:B{row_id}",
                       words, stamp(at), "{}", False, "EUR")
                row_id += 1

    log(f"loyalty: {members:,} members, {members * per_member:,} ledger rows")
    enrolled = stamp(now - timedelta(days=days))
    touched = stamp(now)

    def member_rows():
        for m in range(members):
            member = first_member + m
            yield (member, pid, first_customer + m, f"{7000000000000000 + member:016d}",
                   referral_code(member), "active", enrolled, "api", "1", touched)

    await bulk_insert(database_url, Member, member_rows(), members, columns=[
        "id", "program", "customer", "card_number", "referral_code", "status", "enrolled_at",
        "enrolled_via", "terms_version", "updated_at"])
    await bulk_insert(database_url, Ledger, ledger_rows(), members * per_member, columns=[
        "id", "program", "member", "earned_by", "kind", "points", "source", "source_ref",
        "explanation", "created_at", "detail", "pending", "currency"])
    # The summary rows and one lot each (what is left to spend), from the ledger.
    await Member.raw(
        "UPDATE loyalty_member SET balance = COALESCE((SELECT SUM(l.points) FROM "
        "loyalty_ledger l WHERE l.member = loyalty_member.id), 0), earned_total = COALESCE(("
        "SELECT SUM(l.points) FROM loyalty_ledger l WHERE l.member = loyalty_member.id "
        "AND l.points > 0), 0), qualifying = COALESCE((SELECT SUM(l.points) FROM "
        "loyalty_ledger l WHERE l.member = loyalty_member.id AND l.kind = 'earn'), 0) "
        "WHERE program = {}", pid).run()
    await Lot.raw(
        "INSERT INTO loyalty_lot (member, ledger, points, remaining, state, expires_at, "
        "source_ref) SELECT m.id, (SELECT MAX(l.id) FROM loyalty_ledger l WHERE l.member = "
        "m.id), m.balance, m.balance, 'available', {}, '' FROM loyalty_member m "
        "WHERE m.program = {} AND m.balance > 0", now + timedelta(days=365), pid).run()
    for month, (earned, spent) in months.items():
        await MonthlyStat.insert(MonthlyStat(program=pid, month=month, earned=earned,
                                             spent=spent)).run()
    hot = first_member
    return {"program": pid, "member": hot, "card": f"{7000000000000000 + hot:016d}",
            "reward": reward["id"], "members": members, "ledger_rows": members * per_member,
            "transaction": "B-REPLAY"}


def card_lookup(seeded, facts) -> Request:
    """A till's balance lookup by card number (indexed, summary row)."""
    return Request(f"/api/v1/loyalty/cards/{facts['card']}")


def member_page(seeded, facts) -> Request:
    """The staff member page: summary, progress, card, 25 rows of history, vouchers."""
    return Request(f"/loyalty/members/{facts['member']}", headers=HTML)


def member_list(seeded, facts) -> Request:
    """The first page of members (keyset on the id)."""
    return Request("/loyalty/members", headers=HTML)


def purchase_replay(seeded, facts) -> Request:
    """A till's purchase sent again with the same transaction id: the original answer."""
    body = {"card_number": facts["card"], "transaction_id": facts["transaction"],
            "currency": "EUR", "amount": "42.00"}
    return Request("/api/v1/loyalty/purchases", method="POST", body=json.dumps(body),
                   headers={"content-type": "application/json"})


def redemption(seeded, facts) -> Request:
    """Redemption under contention: every request redeems for the same member (refused with
    409 once their points are spent: the refusal runs the same claim and checks)."""
    return Request(f"/api/v1/loyalty/members/{facts['member']}/redemptions", method="POST",
                   body=json.dumps({"reward": facts["reward"]}),
                   headers={"content-type": "application/json"})


def liability_widget(seeded, facts) -> Request:
    """Outstanding liability, redemption rate, breakage: month totals, never the ledger."""
    return Request("/loyalty/widgets/liability", headers=HTML)


SCENARIOS = [
    ("loyalty card lookup (1M members)", card_lookup),
    ("loyalty member page", member_page),
    ("loyalty members list", member_list),
    ("loyalty purchase replayed", purchase_replay),
    ("loyalty redemption, one member", redemption),
    ("loyalty liability widget", liability_widget),
]


async def earning_throughput(rapport, orders: int = 2000, workers: int = 2) -> float:
    """Orders per second earned from ``sales.order.created`` events through loyalty's
    subscriber (``workers`` concurrent deliveries), on members seeded above."""
    import asyncio
    import time

    from core.plugin import Event
    from plugins.loyalty import purchases
    from plugins.loyalty.tables import Member

    rows = await Member.select(Member.customer).order_by(Member.id).limit(orders).run()
    queue: asyncio.Queue = asyncio.Queue()
    for n, row in enumerate(rows):
        queue.put_nowait(Event("sales.order.created", {
            "order_id": 10_000_000 + n, "number": f"SO-B{n}", "customer_id": row["customer"],
            "currency": "EUR", "lines": [{"line_id": 1, "net": "42.00", "gross": "49.98",
                                          "quantity": "1"}]}, None, 10_000_000 + n))

    async def worker():
        while not queue.empty():
            await purchases.on_order_event(rapport, queue.get_nowait())

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(rows) / (time.monotonic() - began)
