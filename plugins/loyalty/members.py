"""Members: enrolment (staff, portal, API) with the customer's consent to the program's terms
recorded in core's consent log, the card number and its QR code, referral codes, pooling of
an account's points, and looking a member up by card.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from core import audit
from core.customers.tables import Customer
from core.permissions import Actor
from core.privacy.service import record_consent
from plugins.loyalty.programs import LoyaltyError, get_program
from plugins.loyalty.tables import Member, Tier

# Referral codes avoid letters and digits people confuse (0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
VIAS = ("staff", "portal", "api")


def consent_purpose(program: dict[str, Any]) -> str:
    return f"Loyalty program: {program['name']}"[:100]


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def new_card_number(program: dict[str, Any]) -> str:
    """A random 15-digit number and a Luhn check digit, so a mistyped card is caught at the
    till; prefixed with the program's card prefix."""
    body = "".join(secrets.choice("0123456789") for _ in range(15))
    return f"{program.get('card_prefix') or ''}{body}{_luhn_digit(body)}"


def new_referral_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def card_qr_svg(card_number: str) -> str:
    """The card number as an SVG QR code data URI (an <img> the CSP allows)."""
    import segno

    return segno.make(card_number, error="m").svg_data_uri(scale=5, border=2)


async def member_of(program_id: int, customer_id: int) -> dict[str, Any] | None:
    return await Member.select().where((Member.program == program_id)
                                       & (Member.customer == customer_id)).first().run()


async def get_member(member_id: int) -> dict[str, Any] | None:
    return await Member.select().where(Member.id == member_id).first().run()


async def by_card(card_number: str) -> dict[str, Any] | None:
    card = "".join(str(card_number or "").split())[:32]
    if not card:
        return None
    return await Member.select().where(Member.card_number == card).first().run()


def card_in(text: str) -> str | None:
    """The card number in what was typed or scanned ("RR 1234 5678 9012 3456", a card's QR
    read by a scanner app), or None when it does not look like one."""
    card = "".join(str(text or "").split()).rstrip("/").rsplit("/", 1)[-1][:32]
    digits = card[-16:]
    return card if len(card) >= 12 and digits.isdigit() else None


async def search_members(rapport: Any, user: Actor | None, query: str, limit: int
                         ) -> list[Any]:
    """Global search provider: a loyalty card number typed or scanned finds its member
    (``loyalty.member.view``), so staff and the field app look members up by their card."""
    from core.plugin import SearchResult

    card = card_in(query)
    if user is None or not user.can("loyalty.member.view") or card is None:
        return []
    rows = await Member.select(
        Member.id, Member.card_number, Member.balance, Member.status,
        Member.customer.name.as_alias("customer_name"),
        Member.program.name.as_alias("program_name"),
        Member.tier.name.as_alias("tier_name")).where(Member.card_number == card).limit(
        max(1, min(limit, 5))).run()
    return [SearchResult(
        title=f"{row['customer_name']}: card {row['card_number']}",
        url=f"/loyalty/members/{row['id']}", kind="loyalty.member",
        snippet=f"{row['program_name']} · {row['balance']:,} points"
                + (f" · {row['tier_name']}" if row["tier_name"] else "")
                + (" · closed" if row["status"] != "active" else ""), score=1.0)
        for row in rows]


async def memberships(customer_id: int) -> list[dict[str, Any]]:
    return await Member.select(*Member.all_columns(), Member.program.name.as_alias(
        "program_name"), Member.tier.name.as_alias("tier_name")).where(
        Member.customer == customer_id).order_by(Member.id).limit(50).run()


async def enrol(rapport: Any, actor: Actor | None, program_id: int, customer_id: int, *,
                via: str, accepted_terms: bool, referral_code: str = "",
                pool_with: int | None = None, ip: str = "") -> dict[str, Any]:
    """Make the customer a member of the program, once; consent to the terms is required and
    recorded in the customer's consent log. Enrolling someone already a member returns their
    membership (an API retry, a double click)."""
    program = await get_program(program_id)
    if program is None or not program["active"]:
        raise LoyaltyError("program", "no such program is open to members", status=404)
    customer = await Customer.select(Customer.id, Customer.account, Customer.erased_at).where(
        Customer.id == customer_id).first().run()
    if customer is None or customer["erased_at"] is not None:
        raise LoyaltyError("customer", "no such customer", status=404)
    existing = await member_of(program_id, customer_id)
    if existing is not None:
        return existing
    if not accepted_terms:
        raise LoyaltyError("accept_terms", "the customer must accept the program's terms")
    if via not in VIAS:
        raise LoyaltyError("via", f"must be one of {', '.join(VIAS)}")
    referrer = None
    code = (referral_code or "").strip().upper()
    if code:
        referrer = await Member.select(Member.id, Member.customer).where(
            (Member.referral_code == code) & (Member.program == program_id)).first().run()
        if referrer is None:
            raise LoyaltyError("referral_code", "no member has this referral code")
    pool = None
    if pool_with is not None:
        pool = await _pool_target(program, customer, pool_with)
    async with Member._meta.db.transaction():
        consent = await record_consent(actor, customer_id, consent_purpose(program), True,
                                       source=f"{via}: terms version {program['terms_version']}",
                                       rapport=rapport, ip=ip)
        for _ in range(5):
            card = new_card_number(program)
            referral = new_referral_code()
            if not await Member.exists().where((Member.card_number == card)
                                               | (Member.referral_code == referral)).run():
                break
        rows = await Member.insert(Member(
            program=program_id, customer=customer_id, card_number=card,
            referral_code=referral, referred_by=referrer["id"] if referrer else None,
            pool=pool, enrolled_at=datetime.now(UTC), enrolled_via=via,
            terms_version=program["terms_version"], consent_record=consent["id"],
            tier=await _entry_tier(program_id),
        )).returning(*Member._meta.columns).run()
        member = rows[0]
        await audit.record(actor, "loyalty_enrolled", Member._meta.tablename, member["id"],
                           audit.diff(None, {"program": program_id, "customer": customer_id,
                                             "via": via}),
                           summary=f"enrolled in {program['name']}", ip=ip)
        await rapport.publish("loyalty.member.enrolled", {
            "member_id": member["id"], "program_id": program_id, "customer_id": customer_id,
            "card_number": card, "via": via, "referred_by": member["referred_by"]},
            actor_id=actor.id if actor and actor.kind == "staff" else None,
            key=f"customer:{customer_id}")
    return member


async def _entry_tier(program_id: int) -> int | None:
    row = await Tier.select(Tier.id).where((Tier.program == program_id)
                                           & (Tier.threshold == 0)).first().run()
    return row["id"] if row else None


async def _pool_target(program: dict[str, Any], customer: dict[str, Any], pool_with: int
                       ) -> int:
    """The member whose balance this customer shares: the member of their account only."""
    if not program["allow_pooling"]:
        raise LoyaltyError("pool", "this program does not let members pool points")
    target = await get_member(pool_with)
    if target is None or target["program"] != program["id"]:
        raise LoyaltyError("pool", "no such member in this program")
    if target["pool"] is not None:
        raise LoyaltyError("pool", "that member already shares another member's points")
    if customer["account"] is None or target["customer"] != customer["account"]:
        raise LoyaltyError("pool", "points are pooled only with the customer's own account")
    return target["id"]


async def set_pool(actor: Actor | None, member_id: int, pool_with: int | None, *,
                   ip: str = "") -> dict[str, Any]:
    """Share (or stop sharing) the account's balance; points already earned stay where
    they are."""
    member = await get_member(member_id)
    if member is None:
        raise LoyaltyError("member", "no such member", status=404)
    program = await get_program(member["program"])
    customer = await Customer.select(Customer.id, Customer.account).where(
        Customer.id == member["customer"]).first().run()
    pool = None if pool_with is None else await _pool_target(program, customer, pool_with)
    if pool == member_id:
        raise LoyaltyError("pool", "a member cannot pool with themselves")
    from core import records

    return await records.update(actor, Member, member_id, {"pool": pool}, ip=ip,
                                summary="points pooled" if pool else "points no longer pooled")


async def wallet_id(member: dict[str, Any]) -> int:
    """Whose balance a member's points go to: their account's member when pooled."""
    return member["pool"] or member["id"]
