"""Loyalty's part in core's customer operations: merging two customers combines their
memberships (one program, one membership: the points, lots, history and vouchers of the
merged one join the survivor's), the privacy export, and erasure (the card and staff's
typed reasons go; points, dates and amounts stay for the program's accounts)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from plugins.loyalty import ledger
from plugins.loyalty.members import new_referral_code
from plugins.loyalty.tables import Ledger, Lot, Member, Voucher

SUMMED = ("balance", "pending", "earned_total", "spent_total", "expired_total",
          "orders_count")


async def merge(survivor_id: int, merged_id: int) -> None:
    """Runs inside core's merge transaction."""
    for gone in await Member.select().where(Member.customer == merged_id).run():
        keeper = await Member.select().where((Member.customer == survivor_id) & (
            Member.program == gone["program"])).first().run()
        if keeper is None:
            await Member.update({Member.customer: survivor_id}).where(
                Member.id == gone["id"]).run()
            continue
        await ledger.claim(keeper["id"])
        for table, column in ((Ledger, Ledger.member), (Lot, Lot.member),
                              (Voucher, Voucher.member)):
            await table.update({column: keeper["id"]}).where(column == gone["id"]).run()
        await Ledger.update({Ledger.earned_by: keeper["id"]}).where(
            Ledger.earned_by == gone["id"]).run()
        await Member.update({Member.pool: keeper["id"]}).where(Member.pool == gone["id"]).run()
        await Member.update({Member.referred_by: keeper["id"]}).where(
            Member.referred_by == gone["id"]).run()
        columns = {c._meta.name: c for c in Member._meta.columns}
        await Member.update({columns[k]: columns[k] + gone[k] for k in SUMMED}).where(
            Member.id == keeper["id"]).run()
        balance = keeper["balance"] + gone["balance"]
        excess = max(keeper["balance"], 0) + max(gone["balance"], 0) - max(balance, 0)
        if excess > 0:  # one of them was in debt: the other's lots pay it
            await ledger._take_from_lots(keeper["id"], excess)
        await ledger._write(keeper, kind="merge", points=0, source="merge",
                            source_ref=f"member:{gone['id']}",
                            explanation=f"Card {gone['card_number']} merged into this one: "
                                        f"{gone['balance']:,} points and its history joined")
        await Member.delete().where(Member.id == gone["id"]).run()


async def export(customer_id: int) -> dict[str, Any]:
    members = await Member.select().where(Member.customer == customer_id).run()
    out = []
    for member in members:
        history = await Ledger.select(Ledger.kind, Ledger.points, Ledger.explanation,
                                      Ledger.reason, Ledger.created_at).where(
            Ledger.member == member["id"]).order_by(Ledger.id).limit(100_000).run()
        issued = await Voucher.select(Voucher.code, Voucher.value, Voucher.currency,
                                      Voucher.status, Voucher.issued_at, Voucher.expires_at,
                                      Voucher.used_at).where(
            Voucher.member == member["id"]).run()
        out.append({"membership": {k: member[k] for k in (
            "program", "card_number", "referral_code", "enrolled_at", "enrolled_via",
            "terms_version", "balance", "pending", "status")},
            "points_history": history, "vouchers": issued})
    return {"loyalty": json.loads(json.dumps(out, default=str))} if out else {}


async def erase(customer_id: int) -> None:
    for member in await Member.select(Member.id).where(Member.customer == customer_id).run():
        await Member.update({
            Member.card_number: f"ERASED-{secrets.token_hex(8)}",
            Member.referral_code: new_referral_code() + "X", Member.status: "closed",
        }).where(Member.id == member["id"]).run()
        await Ledger.update({Ledger.reason: ""}).where(Ledger.member == member["id"]).run()
        await Voucher.update({Voucher.status: "cancelled"}).where(
            (Voucher.member == member["id"]) & (Voucher.status == "issued")).run()
