"""Staff pages for members: the list (by card or name), enrolment from a customer, the member
page (balance, tier and progress, card and QR code, history with reasons, vouchers) with
adjustments, transfers and redemptions, and the 360° panel.

Seeing members needs ``loyalty.member.view``; enrolling ``loyalty.member.enrol``; changing
points ``loyalty.points.adjust`` (always with a reason, in the ledger and the audit log);
redeeming for a member ``loyalty.voucher.redeem``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from core import audit
from core.audit import client_ip
from core.customers.tables import Customer
from core.permissions import current_actor, scoped
from plugins.loyalty import ledger, members, rewards, tiers, vouchers
from plugins.loyalty.members_api import member_summary
from plugins.loyalty.programs import LoyaltyError, get_program, programs
from plugins.loyalty.tables import Member

VIEW = {"permission": "loyalty.member.view"}
ENROL = {"permission": "loyalty.member.enrol"}
ADJUST = {"permission": "loyalty.points.adjust"}
REDEEM = {"permission": "loyalty.voucher.redeem"}
PAGE = 50
KIND_WORDS = {"earn": "Earned", "reverse": "Taken back", "redeem": "Redeemed",
              "expire": "Expired", "adjust": "Adjusted", "transfer": "Moved", "merge": "Merged",
              "refund": "Refunded"}


async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2 ** 31 else None


async def _member_or_404(member_id: int) -> dict[str, Any]:
    member = await members.get_member(member_id)
    if member is None:
        raise NotFoundException("not found")
    return member


@get("/loyalty/cards/{card:str}", opt=VIEW, name="loyalty-card")
async def card_lookup(request: Request, card: FromPath[str]) -> Redirect:
    """A card number (typed, or read from the card's QR code) opens its member's page."""
    number = members.card_in(card)
    member = await members.by_card(number) if number else None
    if member is None:
        raise NotFoundException("no member has this card number")
    return Redirect(f"/loyalty/members/{member['id']}", status_code=303)


@get("/loyalty/members", opt=VIEW, name="loyalty-members")
async def member_list(request: Request, q: FromQuery[str] = "", program: FromQuery[str] = "",
                      before: FromQuery[str] = "") -> Template:
    query = Member.select(Member.id, Member.card_number, Member.balance, Member.pending,
                          Member.status, Member.enrolled_at, Member.customer,
                          Member.customer.name.as_alias("customer_name"),
                          Member.program.name.as_alias("program_name"),
                          Member.tier.name.as_alias("tier_name"))
    text = q.strip()
    if text:
        card = "".join(text.split())
        if card.isdigit() or (len(card) > 8 and card[-8:].isdigit()):
            query = query.where(Member.card_number == card)
        else:
            query = query.where(Member.customer.name.ilike(f"{text[:100]}%"))
    program_id = _int(program)
    if program_id:
        query = query.where(Member.program == program_id)
    before_id = _int(before)
    if before_id:
        query = query.where(Member.id < before_id)
    rows = await query.order_by(Member.id, ascending=False).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return Template("loyalty/members.html", context={
        "members": rows, "q": text, "program": program_id, "programs": await programs(),
        "next_before": rows[-1]["id"] if more else None})


@get("/loyalty/members/new", opt=ENROL, name="loyalty-enrol-form")
async def enrol_form(request: Request, customer: FromQuery[str] = "") -> Template:
    return await _enrol_page(request, {"customer": customer}, {})


async def _enrol_page(request: Request, values: dict[str, Any], errors: dict[str, str],
                      status: int = 200) -> Template:
    customer_id = _int(values.get("customer"))
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == customer_id).first().run() if customer_id else None
    open_programs = await programs(active_only=True)
    return Template("loyalty/enrol.html", status_code=status, context={
        "values": values, "errors": errors, "customer": customer, "programs": open_programs})


@post("/loyalty/members/new", opt=ENROL, name="loyalty-enrol")
async def enrol_submit(request: Request) -> Template | Redirect:
    data = await form_data(request)
    try:
        customer_id = _int(data.get("customer"))
        if customer_id is None:
            raise LoyaltyError("customer", "choose the customer (their number)")
        program_id = _int(data.get("program"))
        if program_id is None:
            raise LoyaltyError("program", "choose a program")
        member = await members.enrol(
            request.app.state.rapport, current_actor(request), program_id, customer_id,
            via="staff", accepted_terms=data.get("accept_terms") == "on",
            referral_code=data.get("referral_code", ""), ip=client_ip(request))
    except LoyaltyError as exc:
        return await _enrol_page(request, data, {exc.field: exc.message}, status=422)
    return Redirect(f"/loyalty/members/{member['id']}", status_code=303)


async def member_context(member: dict[str, Any], *, before: int | None = None
                         ) -> dict[str, Any]:
    summary = await member_summary(member)
    program = await get_program(member["program"])
    tier_list = await tiers.tiers_of(member["program"])
    wallet = member["pool"] or member["id"]
    history = await ledger.history(wallet, before=before, limit=25)
    expiring, first = await ledger.expiring_soon(wallet, program["expiry_notice_days"])
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == member["customer"]).first().run()
    return {
        "member": member, "summary": summary, "program": program, "customer": customer,
        "tiers": tier_list, "progress": tiers.progress(tier_list, member["tier"],
                                                       member["qualifying"]),
        "history": history, "kind_words": KIND_WORDS,
        "next_before": history[-1]["id"] if len(history) == 25 else None,
        "vouchers": await vouchers.member_vouchers(member["id"], limit=20),
        "catalogue": await rewards.catalogue(member["program"]),
        "expiring": expiring, "expiring_first": first,
        "qr": members.card_qr_svg(member["card_number"]),
        "state_words": vouchers.state_words,
    }


@get("/loyalty/members/{member_id:int}", opt=VIEW, name="loyalty-member")
async def member_page(request: Request, member_id: FromPath[int], before: FromQuery[str] = ""
                      ) -> Template:
    member = await _member_or_404(member_id)
    context = await member_context(member, before=_int(before))
    context.update(errors={}, values={}, notice=request.query_params.get("done", ""))
    return Template("loyalty/member.html", context=context)


async def _refused(request: Request, member: dict[str, Any], form: str, exc: LoyaltyError,
                   values: dict[str, str]) -> Template:
    context = await member_context(member)
    context.update(errors={f"{form}.{exc.field}": exc.message}, values=values, notice="",
                   failed=form)
    return Template("loyalty/member.html", context=context, status_code=exc.status
                    if exc.status in (404, 409) else 422)


@post("/loyalty/members/{member_id:int}/adjust", opt=ADJUST, name="loyalty-adjust")
async def adjust(request: Request, member_id: FromPath[int]) -> Template | Redirect:
    member = await _member_or_404(member_id)
    data = await form_data(request)
    actor = current_actor(request)
    try:
        points = _signed(data.get("points", ""))
        posted = await ledger.adjust(actor, member["pool"] or member["id"], points,
                                     data.get("reason", ""),
                                     key=f"adjust:{member_id}:{data.get('_once', '')}"
                                     if data.get("_once") else None)
        await audit.record(actor, "loyalty_points_adjusted", Member._meta.tablename, member_id,
                           {"points": [None, points]}, summary=posted.row["explanation"],
                           ip=client_ip(request))
    except LoyaltyError as exc:
        return await _refused(request, member, "adjust", exc, data)
    return Redirect(f"/loyalty/members/{member_id}?done=adjusted", status_code=303)


def _signed(raw: str) -> int:
    text = str(raw).strip().replace(",", "").replace("\u2212", "-")
    try:
        return int(text)
    except ValueError:
        raise LoyaltyError("points", "must be a whole number (negative to take off)") from None


@post("/loyalty/members/{member_id:int}/transfer", opt=ADJUST, name="loyalty-transfer")
async def transfer(request: Request, member_id: FromPath[int]) -> Template | Redirect:
    member = await _member_or_404(member_id)
    data = await form_data(request)
    actor = current_actor(request)
    try:
        target = await members.by_card(data.get("to_card", ""))
        if target is None:
            raise LoyaltyError("to_card", "no member has this card")
        points = _signed(data.get("points", ""))
        await ledger.transfer(actor, member["pool"] or member["id"],
                              target["pool"] or target["id"], points, data.get("reason", ""))
        await audit.record(actor, "loyalty_points_moved", Member._meta.tablename, member_id,
                           {"points": [None, points], "to_member": [None, target["id"]]},
                           summary=data.get("reason", "")[:500], ip=client_ip(request))
    except LoyaltyError as exc:
        if exc.field == "to_member":
            exc = LoyaltyError("to_card", exc.message, exc.status)
        return await _refused(request, member, "transfer", exc, data)
    return Redirect(f"/loyalty/members/{member_id}?done=moved", status_code=303)


@post("/loyalty/members/{member_id:int}/redeem", opt=REDEEM, name="loyalty-staff-redeem")
async def staff_redeem(request: Request, member_id: FromPath[int]) -> Template | Redirect:
    member = await _member_or_404(member_id)
    data = await form_data(request)
    try:
        reward_id = _int(data.get("reward"))
        if reward_id is None:
            raise LoyaltyError("reward", "choose a reward")
        await rewards.redeem(request.app.state.rapport, current_actor(request), member_id,
                             reward_id)
    except LoyaltyError as exc:
        return await _refused(request, member, "redeem", exc, data)
    return Redirect(f"/loyalty/members/{member_id}?done=redeemed", status_code=303)


@post("/loyalty/members/{member_id:int}/pool", opt=ADJUST, name="loyalty-pool")
async def pool(request: Request, member_id: FromPath[int]) -> Template | Redirect:
    """Share the balance of the customer's account's membership, or stop sharing it."""
    member = await _member_or_404(member_id)
    data = await form_data(request)
    try:
        target = None
        if data.get("share") == "on":
            account = await Customer.select(Customer.account).where(
                Customer.id == member["customer"]).first().run()
            holder = await members.member_of(member["program"], account["account"]) \
                if account and account["account"] else None
            if holder is None:
                raise LoyaltyError("pool", "the customer's account is not a member of this "
                                           "program")
            target = holder["id"]
        await members.set_pool(current_actor(request), member_id, target,
                               ip=client_ip(request))
    except LoyaltyError as exc:
        return await _refused(request, member, "pool", exc, data)
    return Redirect(f"/loyalty/members/{member_id}?done=pooled", status_code=303)


@get("/loyalty/panels/customer/{customer_id:int}", opt=VIEW, name="loyalty-panel")
async def customer_panel(request: Request, customer_id: FromPath[int]) -> Template:
    # The panel shows only for a customer the user may see (core's row filter).
    visible = scoped(Customer.exists().where(Customer.id == customer_id),
                     request.app.state.rapport, current_actor(request), "core.customer.view",
                     Customer)
    if not await visible.run():
        raise NotFoundException("not found")
    rows = await members.memberships(customer_id)
    cards = []
    for row in rows[:5]:
        summary = await member_summary(row)
        history = await ledger.history(row["pool"] or row["id"], limit=5)
        cards.append({"member": row, "summary": summary, "history": history,
                      "vouchers": await vouchers.member_vouchers(row["id"], only_valid=True,
                                                                 limit=5)})
    return Template("loyalty/panel.html", context={
        "cards": cards, "customer_id": customer_id,
        "may_enrol": current_actor(request).can("loyalty.member.enrol")})


@get("/loyalty/members.csv", opt={"permission": "loyalty.report.view"},
     name="loyalty-members-csv")
async def members_csv(request: Request, program: FromQuery[str] = "") -> Stream:
    """Every member (of one program, or all) as CSV, read a batch at a time by id."""
    program_id = _int(program)

    async def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["Card number", "Customer", "Customer number", "Program", "Tier",
                         "Points", "Pending points", "Earned", "Spent", "Expired",
                         "Joined", "Joined through", "Status"])
        after = 0
        while True:
            query = Member.select(
                Member.id, Member.card_number, Member.customer,
                Member.customer.name.as_alias("customer_name"),
                Member.program.name.as_alias("program_name"),
                Member.tier.name.as_alias("tier_name"), Member.balance, Member.pending,
                Member.earned_total, Member.spent_total, Member.expired_total,
                Member.enrolled_at, Member.enrolled_via, Member.status).where(Member.id > after)
            if program_id:
                query = query.where(Member.program == program_id)
            batch = await query.order_by(Member.id).limit(2000).run()
            for m in batch:
                writer.writerow([m["card_number"], m["customer_name"], m["customer"],
                                 m["program_name"], m["tier_name"] or "", m["balance"],
                                 m["pending"], m["earned_total"], m["spent_total"],
                                 m["expired_total"], m["enrolled_at"].date().isoformat(),
                                 m["enrolled_via"], m["status"]])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < 2000:
                return
            after = batch[-1]["id"]

    return Stream(rows(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="loyalty-members.csv"'})


ROUTES = [card_lookup, member_list, members_csv, enrol_form, enrol_submit, member_page, adjust, transfer, staff_redeem,
          pool, customer_panel]
