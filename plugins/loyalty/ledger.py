"""The points ledger: append-only rows, lots spent first earned first spent, pending points,
reversals, expiry, and the member's summary row kept in step in the same transaction.

Every change runs in one transaction that first *claims* the wallet's member row (an UPDATE,
the transaction's first write): on PostgreSQL that row lock makes two changes to one member
run one after the other; on SQLite core's transactions begin IMMEDIATE, which serialises
writers anyway. The checks (enough points? already earned for this key?) are then made on
fresh rows, so 50 redemptions at once never spend a point twice.

Invariants (tests/plugins/loyalty/test_ledger.py):
- ``balance + pending`` of a member equals the sum of its ledger rows;
- the ``remaining`` of its available lots adds up to ``max(balance, 0)``; of its pending lots
  to ``pending``; a negative balance (a reversal after spending, where the program allows
  it) is a debt new points repay first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.permissions import Actor
from plugins.loyalty.programs import LoyaltyError
from plugins.loyalty.tables import Ledger, Lot, Member, MonthlyStat, Program

FULFILMENT = "fulfilment"  # pending until the order ships


@dataclass(frozen=True)
class Posted:
    """What a change wrote: the ledger row (the original one for a replay) and whether it
    was a replay of an earlier call with the same key."""

    row: dict[str, Any]
    replayed: bool = False


def now() -> datetime:
    return datetime.now(UTC)


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year = moment.year + month // 12
    month = month % 12 + 1
    import calendar

    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


async def claim(member_id: int) -> dict[str, Any]:
    """Lock the member's summary row for this transaction and return it fresh."""
    rows = await Member.update({Member.updated_at: now()}).where(
        Member.id == member_id).returning(*Member._meta.columns).run()
    if not rows:
        raise LoyaltyError("member", "no such member", status=404)
    return rows[0]


async def _program(program_id: int) -> dict[str, Any]:
    return await Program.select().where(Program.id == program_id).first().run()


async def by_key(key: str) -> dict[str, Any] | None:
    return await Ledger.select().where(Ledger.idempotency_key == key).first().run()


async def bump_month(program_id: int, at: datetime, **counts: int) -> None:
    """Add to the program's month totals (the widgets read these, never the ledger)."""
    names = ("earned", "spent", "expired", "reversed", "vouchers_issued", "vouchers_used")
    values = [int(counts.get(n, 0)) for n in names]
    if not any(values):
        return
    month = at.strftime("%Y-%m")
    sets = ", ".join(f"{n} = loyalty_month.{n} + excluded.{n}" for n in names)
    await MonthlyStat.raw(
        f"INSERT INTO loyalty_month (program, month, {', '.join(names)}) "
        f"VALUES ({{}}, {{}}, {', '.join('{}' for _ in names)}) "
        f"ON CONFLICT (program, month) DO UPDATE SET {sets}",
        program_id, month, *values).run()


async def _write(member: dict[str, Any], *, kind: str, points: int, explanation: str,
                 source: str = "", source_ref: str = "", key: str | None = None,
                 pending: bool = False, earned_by: int | None = None, reason: str = "",
                 amount: Decimal | None = None, currency: str = "",
                 detail: dict[str, Any] | None = None, actor: Actor | None = None,
                 at: datetime | None = None) -> dict[str, Any]:
    rows = await Ledger.insert(Ledger(
        program=member["program"], member=member["id"], earned_by=earned_by, kind=kind,
        points=points, pending=pending, source=source[:24], source_ref=source_ref[:120],
        idempotency_key=key[:160] if key else None, explanation=explanation,
        reason=reason, amount=amount, currency=currency,
        detail=json.dumps(detail or {}, default=str),
        actor=actor.id if actor is not None and actor.kind == "staff" else None,
        created_at=at or now(),
    )).returning(*Ledger._meta.columns).run()
    return rows[0]


async def _summary(member_id: int, **changes: int) -> None:
    columns = {c._meta.name: c for c in Member._meta.columns}
    await Member.update({columns[k]: columns[k] + v for k, v in changes.items() if v}
                        | {Member.updated_at: now()}).where(Member.id == member_id).run()


# --- earning ---------------------------------------------------------------------------------


async def earn(member_id: int, points: int, *, explanation: str, source: str,
               source_ref: str = "", key: str, pending_until: datetime | str | None = None,
               earned_by: int | None = None, amount: Decimal | None = None,
               currency: str = "", detail: dict[str, Any] | None = None,
               actor: Actor | None = None, reason: str = "", kind: str = "earn",
               orders: int = 0) -> Posted:
    """Credit points once per ``key`` (the source transaction): the same key again returns
    the original row, whatever the points asked for this time. ``pending_until`` is a time
    or ``FULFILMENT``; ``member_id`` is the wallet (see members.wallet_id)."""
    if points < 0:
        raise LoyaltyError("points", "must not be negative")
    async with Member._meta.db.transaction():
        member = await claim(member_id)
        earlier = await by_key(key)
        if earlier is not None:
            return Posted(earlier, replayed=True)
        program = await _program(member["program"])
        at = now()
        is_pending = pending_until is not None and (
            pending_until == FULFILMENT or pending_until > at)
        row = await _write(member, kind=kind, points=points, explanation=explanation,
                           source=source, source_ref=source_ref, key=key, pending=is_pending,
                           earned_by=earned_by, amount=amount, currency=currency,
                           detail=detail, actor=actor, reason=reason, at=at)
        if points:
            expires = (add_months(at, program["expiry_months"])
                       if program["expiry_months"] else None)
            if is_pending:
                remaining = points
            else:
                # A debt (negative balance) is repaid first by new points.
                remaining = max(0, points + min(member["balance"], 0))
            await Lot.insert(Lot(
                member=member["id"], ledger=row["id"], points=points, remaining=remaining,
                state="pending" if is_pending else "available",
                available_at=None if not is_pending or pending_until == FULFILMENT
                else pending_until,
                expires_at=expires, source_ref=source_ref[:120])).run()
            if is_pending:
                await _summary(member["id"], pending=points, earned_total=points,
                               orders_count=orders)
            else:
                await _summary(member["id"], balance=points, earned_total=points,
                               orders_count=orders)
            await bump_month(member["program"], at, earned=points)
        elif orders:
            await _summary(member["id"], orders_count=orders)
    return Posted(row)


async def release(member_id: int, *, source_ref: str | None = None,
                  due_before: datetime | None = None) -> int:
    """Make pending points available: the lots of one source (an order shipped) or those
    whose waiting time is over. Returns the points released."""
    async with Member._meta.db.transaction():
        member = await claim(member_id)
        query = Lot.select().where((Lot.member == member_id) & (Lot.state == "pending"))
        if source_ref is not None:
            query = query.where(Lot.source_ref == source_ref)
        if due_before is not None:
            query = query.where(Lot.available_at.is_not_null() & (Lot.available_at <= due_before))
        lots = await query.order_by(Lot.id).limit(500).run()
        balance, released = member["balance"], 0
        for lot in lots:
            points = lot["remaining"]
            remaining = max(0, points + min(balance, 0))
            balance += points
            released += points
            await Lot.update({Lot.state: "available" if remaining else "closed",
                              Lot.remaining: remaining, Lot.available_at: now()}).where(
                Lot.id == lot["id"]).run()
        if released:
            await _summary(member_id, pending=-released, balance=released)
    return released


# --- spending and taking back ----------------------------------------------------------------


async def _take_from_lots(member_id: int, points: int, first_ref: str | None = None) -> None:
    """Take ``points`` from available lots: the named source's lot first, then first earned
    first spent."""
    left = points
    if first_ref is not None:
        lots = await Lot.select().where((Lot.member == member_id) & (Lot.state == "available")
                                        & (Lot.source_ref == first_ref)
                                        & (Lot.remaining > 0)).order_by(Lot.id).run()
        left = await _drain(lots, left)
    while left > 0:
        lots = await Lot.select().where((Lot.member == member_id) & (Lot.state == "available")
                                        & (Lot.remaining > 0)).order_by(Lot.id).limit(200).run()
        if not lots:
            break
        left = await _drain(lots, left)


async def _drain(lots: list[dict[str, Any]], left: int) -> int:
    for lot in lots:
        if left <= 0:
            break
        take = min(left, lot["remaining"])
        remaining = lot["remaining"] - take
        await Lot.update({Lot.remaining: remaining,
                          Lot.state: "available" if remaining else "closed"}).where(
            Lot.id == lot["id"]).run()
        left -= take
    return left


async def spend(member_id: int, points: int, *, explanation: str, source: str,
                source_ref: str = "", key: str | None = None, kind: str = "redeem",
                actor: Actor | None = None, reason: str = "",
                detail: dict[str, Any] | None = None, in_transaction: bool = False
                ) -> Posted:
    """Take points the member has (never more: refused with the balance named)."""
    if points <= 0:
        raise LoyaltyError("points", "must be more than 0")

    async def run() -> Posted:
        member = await claim(member_id)
        if key is not None:
            earlier = await by_key(key)
            if earlier is not None:
                return Posted(earlier, replayed=True)
        if member["status"] != "active":
            raise LoyaltyError("member", "this membership is closed", status=409)
        if member["balance"] < points:
            raise LoyaltyError("points", f"only {max(member['balance'], 0):,} points are "
                                         f"available", status=409)
        at = now()
        row = await _write(member, kind=kind, points=-points, explanation=explanation,
                           source=source, source_ref=source_ref, key=key, actor=actor,
                           reason=reason, detail=detail, at=at)
        await _take_from_lots(member_id, points)
        await _summary(member_id, balance=-points, spent_total=points)
        await bump_month(member["program"], at, spent=points)
        return Posted(row)

    if in_transaction:
        return await run()
    async with Member._meta.db.transaction():
        return await run()


async def reverse(member_id: int, points: int, *, source_ref: str, key: str,
                  explanation: str, source: str = "order", detail: dict[str, Any] | None = None,
                  actor: Actor | None = None, amount: Decimal | None = None,
                  earned_by: int | None = None) -> Posted:
    """Take back ``points`` earned from ``source_ref`` (a cancelled or returned order): its
    pending points first, then its own lot, then first earned first spent; when some were
    already spent, the balance goes negative only if the program allows it, else down to
    zero (the row says how many could not be taken back)."""
    if points < 0:
        raise LoyaltyError("points", "must not be negative")
    async with Member._meta.db.transaction():
        member = await claim(member_id)
        earlier = await by_key(key)
        if earlier is not None:
            return Posted(earlier, replayed=True)
        program = await _program(member["program"])
        at = now()
        pending_lots = await Lot.select().where(
            (Lot.member == member_id) & (Lot.state == "pending")
            & (Lot.source_ref == source_ref) & (Lot.remaining > 0)).order_by(Lot.id).run()
        from_pending = min(points, sum(lot["remaining"] for lot in pending_lots))
        await _drain(pending_lots, from_pending)
        rest = points - from_pending
        balance = member["balance"]
        taken = rest if program["allow_negative"] else min(rest, max(balance, 0))
        unrecovered = rest - taken
        words = explanation
        if unrecovered:
            words += (f" ({unrecovered:,} points had already been spent and were not taken "
                      f"back)")
        row = await _write(member, kind="reverse", points=-(from_pending + taken),
                           explanation=words, source=source, source_ref=source_ref, key=key,
                           pending=from_pending > 0 and taken == 0, actor=actor, amount=amount,
                           earned_by=earned_by,
                           detail={**(detail or {}), "unrecovered": unrecovered,
                                   "from_pending": from_pending}, at=at)
        if taken:
            await _take_from_lots(member_id, min(taken, max(balance, 0)), first_ref=source_ref)
        await _summary(member_id, pending=-from_pending, balance=-taken,
                       earned_total=-(from_pending + taken))
        await bump_month(member["program"], at, reversed=from_pending + taken)
    return Posted(row)


async def adjust(actor: Actor | None, member_id: int, points: int, reason: str, *,
                 key: str | None = None) -> Posted:
    """A manual award (positive) or deduction (negative) with the reason staff gave."""
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError("reason", "say why the points are changed")
    if len(reason) > 500:
        raise LoyaltyError("reason", "must be at most 500 characters")
    if points == 0:
        raise LoyaltyError("points", "must not be 0")
    if abs(points) > 10_000_000:
        raise LoyaltyError("points", "must be at most 10,000,000")
    who = actor.name or actor.email if actor is not None and actor.kind == "staff" else ""
    if points > 0:
        return await earn(member_id, points, explanation=f"{points:,} points: awarded by "
                          f"{who or 'staff'}: {reason}", source="manual", kind="adjust",
                          key=key or f"manual:{member_id}:{now().isoformat()}:{points}",
                          actor=actor, reason=reason)
    return await spend(member_id, -points, explanation=f"{-points:,} points taken off by "
                       f"{who or 'staff'}: {reason}", source="manual", kind="adjust",
                       key=key, actor=actor, reason=reason)


async def transfer(actor: Actor | None, from_id: int, to_id: int, points: int, reason: str
                   ) -> tuple[Posted, Posted]:
    """Move points between two members of one program in one transaction."""
    if from_id == to_id:
        raise LoyaltyError("to_member", "choose another member")
    if points <= 0:
        raise LoyaltyError("points", "must be more than 0")
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError("reason", "say why the points are moved")
    source = await Member.select(Member.program, Member.card_number).where(
        Member.id == from_id).first().run()
    target = await Member.select(Member.program, Member.card_number).where(
        Member.id == to_id).first().run()
    if source is None:
        raise LoyaltyError("member", "no such member", status=404)
    if target is None or target["program"] != source["program"]:
        raise LoyaltyError("to_member", "no such member in this program")
    stamp = now().isoformat()
    async with Member._meta.db.transaction():
        # Claim in id order so two opposite transfers cannot wait on each other.
        for member_id in sorted((from_id, to_id)):
            await claim(member_id)
        out = await spend(from_id, points, explanation=f"{points:,} points moved to card "
                          f"{target['card_number']}: {reason}", source="transfer",
                          kind="transfer", key=f"transfer:{from_id}:{to_id}:{stamp}:out",
                          actor=actor, reason=reason, in_transaction=True)
        into = await earn(to_id, points, explanation=f"{points:,} points moved from card "
                          f"{source['card_number']}: {reason}", source="transfer",
                          kind="transfer", key=f"transfer:{from_id}:{to_id}:{stamp}:in",
                          actor=actor, reason=reason)
    return out, into


async def expire_lots(at: datetime | None = None, limit: int = 500) -> int:
    """Expire what is left of lots past their date, one ledger row per lot (keyed by the
    lot, so a rerun expires nothing twice). Returns the points expired."""
    at = at or now()
    due = await Lot.select(Lot.id, Lot.member).where(
        (Lot.state == "available") & (Lot.remaining > 0) & Lot.expires_at.is_not_null()
        & (Lot.expires_at <= at)).order_by(Lot.id).limit(limit).run()
    total = 0
    for item in due:
        async with Member._meta.db.transaction():
            member = await claim(item["member"])
            lot = await Lot.select().where(Lot.id == item["id"]).first().run()
            if lot["state"] != "available" or lot["remaining"] <= 0:
                continue
            points = min(lot["remaining"], max(member["balance"], 0))
            earned = await Ledger.select(Ledger.created_at).where(
                Ledger.id == lot["ledger"]).first().run()
            when = earned["created_at"].strftime("%B %Y") if earned else "earlier"
            await Lot.update({Lot.remaining: 0, Lot.state: "closed"}).where(
                Lot.id == lot["id"]).run()
            if points <= 0:
                continue
            await _write(member, kind="expire", points=-points,
                         explanation=f"{points:,} points earned in {when} expired",
                         source="expiry", source_ref=f"lot:{lot['id']}",
                         key=f"expire:lot:{lot['id']}", at=at)
            await _summary(member["id"], balance=-points, expired_total=points)
            await bump_month(member["program"], at, expired=points)
            total += points
    return total


async def expiring_soon(member_id: int, within_days: int, at: datetime | None = None
                        ) -> tuple[int, datetime | None]:
    """Points of the member's lots that expire in the next ``within_days`` days, and the
    first such date."""
    at = at or now()
    lots = await Lot.select(Lot.remaining, Lot.expires_at).where(
        (Lot.member == member_id) & (Lot.state == "available") & (Lot.remaining > 0)
        & Lot.expires_at.is_not_null() & (Lot.expires_at <= at + timedelta(days=within_days))
    ).order_by(Lot.expires_at).limit(500).run()
    return sum(lot["remaining"] for lot in lots), (lots[0]["expires_at"] if lots else None)


async def history(member_id: int, *, before: int | None = None, limit: int = 25
                  ) -> list[dict[str, Any]]:
    """A member's ledger rows, newest first, paged by keyset (``before`` = last id seen)."""
    query = Ledger.select().where(Ledger.member == member_id)
    if before is not None:
        query = query.where(Ledger.id < before)
    return await query.order_by(Ledger.id, ascending=False).limit(max(1, min(limit, 200))).run()
