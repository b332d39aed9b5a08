"""Points expiry: members are told before their points expire (e-mail through core's
contact-policy check, push to the customer's owner through the ``loyalty.points.expiring``
event, and in the portal's "expiring soon" card), then the lots past their date expire (see
ledger.expire_lots)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from core.customers.tables import Customer
from plugins.loyalty import ledger
from plugins.loyalty.tables import Lot, Member, Program

log = logging.getLogger(__name__)


async def expire(rapport: Any, at: datetime | None = None) -> int:
    total = 0
    while True:
        points = await ledger.expire_lots(at)
        total += points
        if not points:
            return total


async def notify_expiring(rapport: Any, at: datetime | None = None) -> int:
    """Tell each member once per notice period about the points that will expire within the
    program's notice days. Returns how many members were told."""
    at = at or datetime.now(UTC)
    told = 0
    programs = await Program.select().where((Program.active == True)  # noqa: E712
                                            & (Program.expiry_months > 0)).run()
    for program in programs:
        horizon = at + timedelta(days=program["expiry_notice_days"])
        rows = await Lot.select(Lot.member).where(
            (Lot.state == "available") & (Lot.remaining > 0) & Lot.expires_at.is_not_null()
            & (Lot.expires_at <= horizon) & (Lot.member.program == program["id"])
        ).distinct().limit(5000).run()
        for row in rows:
            if await notify_member(rapport, program, row["member"], at):
                told += 1
    return told


async def notify_member(rapport: Any, program: dict[str, Any], member_id: int,
                        at: datetime) -> bool:
    since = at - timedelta(days=max(program["expiry_notice_days"], 1))
    async with Member._meta.db.transaction():
        # Claim the notice: a rerun (or a second worker) tells no one twice.
        claimed = await Member.update({Member.expiry_noticed_at: at}).where(
            (Member.id == member_id) & (Member.expiry_noticed_at.is_null()
                                        | (Member.expiry_noticed_at < since))).returning(
            Member.customer).run()
        if not claimed:
            return False
        points, first = await ledger.expiring_soon(member_id, program["expiry_notice_days"], at)
        if points <= 0:
            return False
        customer = await Customer.select(Customer.id, Customer.owner, Customer.name,
                                         Customer.primary_email).where(
            Customer.id == claimed[0]["customer"]).first().run()
        await rapport.publish("loyalty.points.expiring", {
            "member_id": member_id, "customer_id": customer["id"],
            "owner_id": customer["owner"], "points": points,
            "expires_at": first.isoformat() if first else None,
            "program": program["name"]}, key=f"customer:{customer['id']}")
    await email_notice(rapport, program, customer, points, first)
    return True


async def email_notice(rapport: Any, program: dict[str, Any], customer: dict[str, Any],
                       points: int, first: datetime | None) -> None:
    from core.interactions.policy import check_contact
    from core.mail import send_mail

    if not customer["primary_email"]:
        return
    from plugins.loyalty.members import consent_purpose

    # The consent given when joining: withdrawn, the member is not e-mailed.
    decision = await check_contact(rapport, customer["id"], "email",
                                   purpose=consent_purpose(program))
    if not decision.allowed:
        log.info("no expiry e-mail to customer %s: %s", customer["id"], decision.reason)
        return
    when = first.strftime("%d %B %Y") if first else "soon"
    try:
        await send_mail(rapport, customer["primary_email"],
                        f"{points:,} {program['name']} points expire on {when}",
                        f"Hello {customer['name']},\n\n{points:,} of your {program['name']} "
                        f"points expire on {when}. Sign in to your account to use them "
                        f"on a reward before then.\n")
    except Exception:  # noqa: BLE001 - the notice is also in the portal; never fail the job
        log.exception("expiry e-mail to customer %s failed", customer["id"])
