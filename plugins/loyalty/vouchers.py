"""Vouchers: checking one, using it exactly once (a till, an order), and offering a member's
vouchers to the sales plugin's quotes as discount lines.

Using a voucher is one conditional UPDATE (``status = 'issued'`` and not expired): of two
tills sending the same code at the same moment, one changes the row and the other is told
when and where it was used. The same till retrying with the same transaction id gets the
original answer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from plugins.loyalty import ledger
from plugins.loyalty.programs import LoyaltyError
from plugins.loyalty.tables import Member, Voucher

log = logging.getLogger(__name__)
SOURCE = "loyalty"  # the adjustments' source on quotes
MAX_ON_A_QUOTE = 5


def normalise(code: str) -> str:
    raw = "".join(ch for ch in str(code or "").upper() if ch.isalnum())
    if raw.startswith("LV"):
        raw = raw[2:]
    if len(raw) != 12:
        return ""
    return f"LV-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def state_words(voucher: dict[str, Any], at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    if voucher["status"] == "used":
        return "used"
    if voucher["status"] == "cancelled":
        return "cancelled"
    if voucher["status"] == "expired" or (voucher["expires_at"] and voucher["expires_at"] <= at):
        return "expired"
    return "valid"


async def find(code: str) -> dict[str, Any] | None:
    code = normalise(code)
    if not code:
        return None
    return await Voucher.select(*Voucher.all_columns(), Voucher.reward.name.as_alias(
        "reward_name"), Voucher.member.card_number.as_alias("card_number"),
        Voucher.member.customer.as_alias("customer")).where(Voucher.code == code).first().run()


async def use(rapport: Any, code: str, *, used_ref: str, used_by: str) -> tuple[dict, bool]:
    """Use the voucher once; returns (voucher, replayed). Refusals name the code."""
    used_ref, used_by = str(used_ref or "").strip()[:120], str(used_by or "").strip()[:120]
    if not used_ref:
        raise LoyaltyError("transaction_id", "is required (the till's or order's reference)")
    normal = normalise(code)
    if not normal:
        raise LoyaltyError("code", "is not a voucher code", status=404)
    at = datetime.now(UTC)
    async with Voucher._meta.db.transaction():
        rows = await Voucher.update({Voucher.status: "used", Voucher.used_at: at,
                                     Voucher.used_ref: used_ref, Voucher.used_by: used_by}).where(
            (Voucher.code == normal) & (Voucher.status == "issued")
            & (Voucher.expires_at.is_null() | (Voucher.expires_at > at))).returning(
            *Voucher._meta.columns).run()
        if rows:
            voucher = rows[0]
            await ledger.bump_month(voucher["program"], at, vouchers_used=1)
            member = await Member.select(Member.customer).where(
                Member.id == voucher["member"]).first().run()
            await rapport.publish("loyalty.voucher.used", {
                "voucher_id": voucher["id"], "member_id": voucher["member"],
                "customer_id": member["customer"] if member else None,
                "used_ref": used_ref, "used_by": used_by},
                key=f"customer:{member['customer']}" if member else None)
            return voucher, False
    voucher = await find(normal)
    if voucher is None:
        raise LoyaltyError("code", "no such voucher", status=404)
    if voucher["status"] == "used" and voucher["used_ref"] == used_ref:
        return voucher, True
    state = state_words(voucher, at)
    if state == "used":
        when = voucher["used_at"].strftime("%d %B %Y %H:%M UTC")
        raise LoyaltyError("code", f"this voucher was already used on {when}"
                                   f" ({voucher['used_ref']})", status=409)
    raise LoyaltyError("code", f"this voucher is {state}", status=409)


async def member_vouchers(member_id: int, *, only_valid: bool = False, limit: int = 50
                          ) -> list[dict[str, Any]]:
    query = Voucher.select(*Voucher.all_columns(), Voucher.reward.name.as_alias(
        "reward_name")).where(Voucher.member == member_id)
    if only_valid:
        query = query.where((Voucher.status == "issued") & (
            Voucher.expires_at.is_null() | (Voucher.expires_at > datetime.now(UTC))))
    return await query.order_by(Voucher.id, ascending=False).limit(limit).run()


# --- the sales plugin's quotes -------------------------------------------------------------


async def quote_adjustments(quote: Any, context: Any) -> list[dict[str, Any]]:
    """The customer's valid discount vouchers in the quote's currency, soonest expiring
    first: offered as discount lines (sales bounds them by the total). Changes nothing."""
    customer_id = getattr(context, "customer_id", None) or (quote or {}).get("customer")
    currency = str(getattr(context, "currency", "") or (quote or {}).get("currency") or "")
    if not customer_id:
        return []
    rows = await Voucher.select(Voucher.code, Voucher.value, Voucher.currency,
                                Voucher.expires_at, Voucher.reward.name.as_alias("reward_name"),
                                Voucher.ledger.points.as_alias("points")).where(
        (Voucher.member.customer == customer_id) & (Voucher.status == "issued")
        & (Voucher.value > 0) & (Voucher.currency == currency.upper())
        & (Voucher.expires_at.is_null() | (Voucher.expires_at > datetime.now(UTC)))
    ).order_by(Voucher.expires_at).limit(MAX_ON_A_QUOTE).run()
    return [{"source": SOURCE, "source_ref": row["code"],
             "label": f"Loyalty voucher: {row['reward_name']}",
             "explanation": f"{abs(row['points'] or 0):,} points redeemed, voucher {row['code']}",
             "amount": str(Decimal(row["value"]).quantize(Decimal("0.01")))} for row in rows]


async def on_quote_accepted(rapport: Any, event: Any) -> None:
    """The vouchers a quote carried are used by the order it became (once; a voucher used
    elsewhere meanwhile is logged, the order keeps what the customer accepted)."""
    payload = event.payload or {}
    reference = str(payload.get("number") or f"order {payload.get('order_id')}")
    for adjustment in payload.get("adjustments") or []:
        if adjustment.get("source") != SOURCE:
            continue
        try:
            await use(rapport, adjustment.get("source_ref") or "", used_ref=reference,
                      used_by="sales order")
        except LoyaltyError as exc:
            log.warning("voucher %s on %s not used: %s", adjustment.get("source_ref"),
                        reference, exc.message)
