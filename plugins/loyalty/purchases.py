"""Points for purchases: orders announced by the sales plugin's durable events, and purchases
a shop or till reports through the API.

Loyalty never imports sales: it reads the events' payloads (docs/plugins/sales.md, "Events")
and, for category multipliers, the catalogue through the ``sales_read_api`` hook. Each
earning is keyed by its source (``p<program>:order:<id>``, ``p<program>:api:<transaction>``),
so a redelivered event or a retried API call never earns twice; each reversal by the return
or the event that caused it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.permissions import Actor
from plugins.loyalty import ledger, rules, tiers
from plugins.loyalty.programs import LoyaltyError
from plugins.loyalty.tables import Ledger, Member, Program

log = logging.getLogger(__name__)


def order_key(program_id: int, order_id: Any) -> str:
    return f"p{program_id}:order:{order_id}"


def order_ref(order_id: Any) -> str:
    return f"order:{order_id}"


async def active_memberships(customer_id: int) -> list[dict[str, Any]]:
    return await Member.select(*Member.all_columns(), Member.program.active.as_alias(
        "program_active")).where((Member.customer == customer_id)
                                 & (Member.status == "active")).order_by(Member.id).run()


def pending_until(program: dict[str, Any]) -> datetime | str | None:
    if program["pending_until_fulfilled"]:
        return ledger.FULFILMENT
    if program["pending_days"]:
        return datetime.now(UTC) + timedelta(days=program["pending_days"])
    return None


async def _categories(rapport: Any, lines: list[dict[str, Any]], program_rules) -> dict:
    if not any(r["kind"] == "category_multiplier" for r in program_rules):
        return {}
    caller = getattr(rapport.hook, "sales_read_api", None)
    sales = caller(rapport=rapport) if caller is not None else None
    ids = sorted({line.get("product_id") for line in lines if line.get("product_id")})
    if sales is None or not ids:
        return {}
    return {p["id"]: p.get("category") for p in await sales.products(ids=ids,
                                                                      active_only=False)}


async def earn_purchase(rapport: Any, member: dict[str, Any], *, key: str, source: str,
                        source_ref: str, reference: str, lines: list[dict[str, Any]],
                        currency: str, total: Decimal | None = None,
                        actor: Actor | None = None, allow_pending: bool = True
                        ) -> ledger.Posted:
    """Earn for one purchase of one member, with the bonuses a first purchase brings."""
    earlier = await ledger.by_key(key)
    if earlier is not None:
        return ledger.Posted(earlier, replayed=True)
    program = await Program.select().where(Program.id == member["program"]).first().run()
    if not program["active"]:
        raise LoyaltyError("program", "this program is closed", status=409)
    if currency and currency.upper() != program["currency"]:
        raise LoyaltyError("currency", f"this program earns on {program['currency']} "
                                       f"purchases")
    program_rules = await rules.rules_of(program["id"], active_only=True)
    tier = await rules.tier_of(member["tier"])
    today = datetime.now(UTC).date()
    earning = rules.order_earning(
        rules=program_rules, tier=tier, lines=lines, currency=program["currency"],
        reference=reference, day=today, total=total,
        categories=await _categories(rapport, lines, program_rules),
        unit="stamps" if program["kind"] == "stamps" else "points")
    first = await _is_first_purchase(member["id"])
    wallet = member["pool"] or member["id"]
    posted = await ledger.earn(
        wallet, earning.points, explanation=earning.explanation, source=source,
        source_ref=source_ref, key=key,
        pending_until=pending_until(program) if allow_pending else None,
        earned_by=member["id"], amount=earning.basis, currency=program["currency"],
        detail={"lines": earning.lines, "rules": earning.rules, "reference": reference},
        actor=actor, orders=1)
    if not posted.replayed:
        if first:
            await first_purchase_bonuses(member, program, program_rules, reference, today,
                                         order_key=key)
        # Qualifying points and an upgrade follow at once ("Gold" applies to the next
        # order); the daily job re-evaluates everyone over the rolling window.
        await tiers.evaluate(rapport, program, [await _fresh(member["id"])])
    return posted


async def _fresh(member_id: int) -> dict[str, Any]:
    return await Member.select().where(Member.id == member_id).first().run()


BONUS_SOURCES = ("bonus", "referral")


async def _is_first_purchase(member_id: int) -> bool:
    """No purchase earned yet, or every purchase since the last one whose bonuses were
    taken back (a cancelled or wholly returned first order) is gone too: the next
    purchase is the first again."""
    taken_back = await Ledger.select(Ledger.detail).where(
        (Ledger.earned_by == member_id) & (Ledger.kind == "reverse")
        & Ledger.source.is_in(list(BONUS_SOURCES))).order_by(
        Ledger.id, ascending=False).limit(3).run()
    # A referrer's bonus taken back names the friend's order, not one of theirs.
    after = next((int(d["order_row"]) for d in map(_detail, (r["detail"] for r in taken_back))
                  if d.get("buyer") == member_id and d.get("order_row")), 0)
    return not await Ledger.exists().where(
        (Ledger.earned_by == member_id) & (Ledger.kind == "earn")
        & Ledger.source.is_in(["order", "api"]) & (Ledger.id > after)).run()


def _detail(raw: Any) -> dict[str, Any]:
    return (json.loads(raw) if isinstance(raw, str) else raw) or {}


async def _bonus_key(base: str, order_key: str) -> str:
    """The first bonus of its kind keeps its historical key; one given again after the first
    was taken back is keyed by its order."""
    return base if await ledger.by_key(base) is None else f"{base}:{order_key}"


async def first_purchase_bonuses(member: dict[str, Any], program: dict[str, Any],
                                 program_rules: list[dict[str, Any]], reference: str,
                                 today, order_key: str = "") -> None:
    wallet = member["pool"] or member["id"]
    why = {"order": order_key}
    for rule in program_rules:
        if not rules.in_force(rule, today):
            continue
        if rule["kind"] == "first_purchase":
            points = rules.floor(Decimal(rule["points"]))
            await ledger.earn(wallet, points, explanation=f"{points:,} points: {rule['name']} "
                              f"({reference})", source="bonus", source_ref=reference,
                              key=await _bonus_key(
                                  f"p{program['id']}:first:{member['id']}", order_key),
                              earned_by=member["id"], detail=why)
        elif rule["kind"] == "referral" and member["referred_by"]:
            referrer = await Member.select().where(Member.id == member["referred_by"]).first(
            ).run()
            if referrer is None:
                continue
            if rule["points"] > 0 and referrer["status"] == "active":
                points = rules.floor(Decimal(rule["points"]))
                await ledger.earn(referrer["pool"] or referrer["id"], points,
                                  explanation=f"{points:,} points: {rule['name']}: a friend "
                                  f"you referred made their first purchase",
                                  source="referral", source_ref=f"member:{member['id']}",
                                  key=await _bonus_key(
                                      f"p{program['id']}:referral:{member['id']}:referrer",
                                      order_key),
                                  earned_by=referrer["id"], detail=why)
            if rule["extra_points"] > 0:
                points = rules.floor(Decimal(rule["extra_points"]))
                await ledger.earn(wallet, points, explanation=f"{points:,} points: "
                                  f"{rule['name']}: welcome bonus for joining through a "
                                  f"friend", source="referral",
                                  source_ref=f"member:{referrer['id']}",
                                  key=await _bonus_key(
                                      f"p{program['id']}:referral:{member['id']}:referred",
                                      order_key),
                                  earned_by=member["id"], detail=why)


def _returned(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for line in lines:
        key = str(line.get("line_id") or line.get("position") or "")
        if key:
            out[key] = out.get(key, Decimal(0)) + Decimal(str(line.get("quantity") or 0))
    return out


async def reverse_purchase(member_id: int, *, earn_key: str, reverse_key: str,
                           source_ref: str, reference: str, lines: list[dict[str, Any]] | None,
                           why: str, actor: Actor | None = None, rapport: Any = None
                           ) -> ledger.Posted | None:
    """Take back what a purchase earned for the returned or cancelled quantities (``lines``
    None: everything)."""
    earned = await ledger.by_key(earn_key)
    if earned is None:
        return None
    replay = await ledger.by_key(reverse_key)
    if replay is not None:
        return ledger.Posted(replay, replayed=True)
    detail = earned["detail"]
    detail = json.loads(detail) if isinstance(detail, str) else (detail or {})
    earned_lines = detail.get("lines") or {}
    earlier = await Ledger.select(Ledger.detail).where(
        (Ledger.member == earned["member"]) & (Ledger.source_ref == source_ref)
        & (Ledger.kind == "reverse")).limit(1000).run()
    before: dict[str, Decimal] = {}
    for row in earlier:
        data = json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
        for key, quantity in (data.get("returned") or {}).items():
            before[key] = before.get(key, Decimal(0)) + Decimal(quantity)
    now_back = ({k: Decimal(v["quantity"]) for k, v in earned_lines.items()} if lines is None
                else _returned(lines))
    # Beyond what was bought is not returned twice: cap at each line's quantity.
    now_back = {k: min(v, max(Decimal(earned_lines[k]["quantity"]) - before.get(k, 0), 0))
                for k, v in now_back.items() if k in earned_lines}
    points = rules.reversal_points(earned_lines, earned["points"], before, now_back)
    # The spend taken back, in the share of the points (tiers on spend count it).
    amount_back = (-Decimal(earned["amount"]) * points / earned["points"]).quantize(
        Decimal("0.0001")) if earned["amount"] and earned["points"] else None
    posted = await ledger.reverse(
        earned["member"], points, source_ref=source_ref, key=reverse_key, amount=amount_back,
        earned_by=earned["earned_by"],
        explanation=f"{points:,} points taken back: {why} on {reference}",
        detail={"returned": {k: str(v) for k, v in now_back.items()}}, actor=actor)
    everything = {k: before.get(k, Decimal(0)) + now_back.get(k, Decimal(0))
                  for k in earned_lines}
    if not posted.replayed and all(everything[k] >= Decimal(v["quantity"])
                                   for k, v in earned_lines.items()):
        await reverse_bonuses(earned, reference=reference, why=why, actor=actor)
    if rapport is not None and not posted.replayed:
        member = await _fresh(member_id)
        program = await Program.select().where(Program.id == member["program"]).first().run()
        await tiers.evaluate(rapport, program, [member])
    return posted


async def reverse_bonuses(earned: dict[str, Any], *, reference: str, why: str,
                          actor: Actor | None = None) -> list[ledger.Posted]:
    """Take back the first-purchase and referral bonuses a purchase brought, once it is
    wholly cancelled or returned: they were given for a purchase that no longer stands."""
    member_id = earned["earned_by"] or earned["member"]
    member = await _fresh(member_id)
    if member is None:
        return []
    base = f"p{member['program']}:"
    keys = [f"{base}first:{member_id}", f"{base}referral:{member_id}:referrer",
            f"{base}referral:{member_id}:referred"]
    keys += [f"{k}:{earned['idempotency_key']}" for k in keys]
    rows = await Ledger.select().where(Ledger.idempotency_key.is_in(keys)).run()
    out = []
    for row in rows:
        given_for = _detail(row["detail"]).get("order")
        # Bonuses from before the order was recorded with them: the first bonus names the
        # order's reference.
        if given_for != earned["idempotency_key"] and not (
                given_for is None and row["source"] == "bonus"
                and row["source_ref"] == reference):
            continue
        name = row["explanation"].split(": ", 1)[-1].removesuffix(f" ({reference})")
        out.append(await ledger.reverse(
            row["member"], row["points"], source_ref=row["source_ref"],
            key=f"{row['idempotency_key']}:taken-back", source=row["source"],
            earned_by=row["earned_by"], actor=actor,
            explanation=f"{row['points']:,} points taken back: {name} ({why} on {reference})",
            detail={"order_row": earned["id"], "bonus_row": row["id"], "buyer": member_id}))
    return out


# --- the sales plugin's events -----------------------------------------------------------------


def _event_key(event: Any) -> str:
    if event.id is not None:
        return f"event:{event.id}"
    digest = hashlib.sha256(json.dumps(event.payload, sort_keys=True, default=str).encode())
    return f"payload:{digest.hexdigest()[:24]}"


async def on_order_event(rapport: Any, event: Any) -> None:
    payload = event.payload or {}
    customer_id, order_id = payload.get("customer_id"), payload.get("order_id")
    if not customer_id or not order_id:
        return
    reference = str(payload.get("number") or f"order {order_id}")
    members = await active_memberships(int(customer_id))
    for member in members:
        if not member["program_active"]:
            continue
        key = order_key(member["program"], order_id)
        if event.name == "sales.order.created":
            try:
                total = Decimal(str(payload["total"])) if payload.get("total") else None
                await earn_purchase(rapport, member, key=key, source="order",
                                    source_ref=order_ref(order_id), reference=reference,
                                    lines=payload.get("lines") or [],
                                    currency=payload.get("currency") or "", total=total)
            except LoyaltyError as exc:
                # Another currency, a closed program: nothing to earn, nothing to retry.
                log.info("order %s earns nothing in program %s: %s", order_id,
                         member["program"], exc)
        elif event.name == "sales.order.fulfilled" and payload.get("fully_fulfilled"):
            earned = await ledger.by_key(key)
            if earned is not None:
                await ledger.release(earned["member"], source_ref=order_ref(order_id))
        elif event.name in ("sales.order.cancelled", "sales.order.returned"):
            whole = event.name == "sales.order.cancelled" and payload.get("whole_order")
            why = "order cancelled" if event.name == "sales.order.cancelled" else (
                f"return {payload.get('return_number') or ''}".strip())
            suffix = (f"return:{payload['return_id']}" if payload.get("return_id")
                      else _event_key(event))
            await reverse_purchase(member["id"], earn_key=key, reverse_key=f"{key}:{suffix}",
                                   source_ref=order_ref(order_id), reference=reference,
                                   lines=None if whole else payload.get("lines") or [],
                                   why=why, rapport=rapport)
