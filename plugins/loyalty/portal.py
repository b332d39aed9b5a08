"""Portal pages: join a program (accepting its terms, recorded in the consent log), the
balance with tier progress and the card's QR code, points expiring soon, the history with
reasons, the rewards catalogue with redeem, my vouchers (with QR) and the referral code.

Isolation: every query is bounded by the signed-in customer's id (``actor.customer_id``);
another customer's member or voucher answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from core.audit import client_ip
from core.permissions import Actor, current_actor
from core.plugin import NavItem, Panel
from core.portal.pages import render
from plugins.loyalty import ledger, members, rewards, tiers, vouchers
from plugins.loyalty.members_api import member_summary
from plugins.loyalty.members_web import KIND_WORDS, form_data
from plugins.loyalty.programs import LoyaltyError, get_program, programs
from plugins.loyalty.tables import Member, Voucher

PORTAL = {"permission": "loyalty.portal.view"}
PAGE = 20


def nav_items(customer):
    return [NavItem("Loyalty", "/portal/loyalty", order=50)]


def home_cards(customer):
    return [Panel("loyalty-card", "Your points", url="/portal/loyalty/card", order=20)]


def history_panels(customer):
    return [Panel("loyalty-history", "Your points", url="/portal/loyalty/panel", order=50)]


def _actor(request: Request) -> Actor:
    actor = current_actor(request)
    if actor.kind != "portal" or actor.customer_id is None:
        raise NotFoundException("not found")
    return actor


async def own_members(request: Request) -> list[dict[str, Any]]:
    return await members.memberships(_actor(request).customer_id)


async def _own_member(request: Request, member_id: int) -> dict[str, Any]:
    member = await Member.select().where((Member.id == member_id) & (
        Member.customer == _actor(request).customer_id)).first().run()
    if member is None:
        raise NotFoundException("not found")
    return member


async def _overview(request: Request, member: dict[str, Any], before: int | None = None
                    ) -> dict[str, Any]:
    program = await get_program(member["program"])
    wallet = member["pool"] or member["id"]
    tier_list = await tiers.tiers_of(member["program"])
    summary = await member_summary(member)
    expiring, first = await ledger.expiring_soon(wallet, program["expiry_notice_days"])
    history = await ledger.history(wallet, before=before, limit=PAGE)
    catalogue = await rewards.catalogue(member["program"])
    allowed = {r["id"]: await rewards.tier_allows(member, r) for r in catalogue}
    return {
        "member": member, "program": program, "summary": summary,
        "progress": tiers.progress(tier_list, member["tier"], member["qualifying"]),
        "expiring": expiring, "expiring_first": first, "history": history,
        "next_before": history[-1]["id"] if len(history) == PAGE else None,
        "catalogue": catalogue, "allowed": allowed,
        "vouchers": await vouchers.member_vouchers(member["id"], only_valid=True, limit=20),
        "qr": members.card_qr_svg(member["card_number"]), "kind_words": KIND_WORDS,
        "referral_link": f"{str(request.base_url).rstrip('/')}/portal/loyalty?ref="
                         f"{member['referral_code']}",
    }


@get("/loyalty", opt=PORTAL, name="loyalty-portal")
async def portal_home(request: Request, ref: FromQuery[str] = "", program: FromQuery[str] = "",
                      before: FromQuery[str] = "") -> Template:
    mine = await own_members(request)
    joined = {m["program"] for m in mine}
    open_programs = [p for p in await programs(active_only=True) if p["id"] not in joined]
    chosen = next((m for m in mine if str(m["program"]) == program), mine[0] if mine else None)
    context: dict[str, Any] = {"memberships": mine, "open_programs": open_programs,
                               "ref": ref[:16], "errors": {}, "values": {},
                               "notice": request.query_params.get("done", "")}
    if chosen is not None:
        before_id = int(before) if before.isdigit() and len(before) < 10 else None
        context.update(await _overview(request, chosen, before_id))
    return await render(request, "loyalty/portal/home.html", context)


@post("/loyalty/join", opt=PORTAL, name="loyalty-portal-join")
async def portal_join(request: Request) -> Template | Redirect:
    actor = _actor(request)
    data = await form_data(request)
    try:
        program_id = int(data.get("program", "0") or 0)
        await members.enrol(request.app.state.rapport, actor, program_id, actor.customer_id,
                            via="portal", accepted_terms=data.get("accept_terms") == "on",
                            referral_code=data.get("referral_code", ""), ip=client_ip(request))
    except (LoyaltyError, ValueError) as exc:
        field = getattr(exc, "field", "program")
        message = getattr(exc, "message", "choose a program")
        mine = await own_members(request)
        joined = {m["program"] for m in mine}
        return await render(request, "loyalty/portal/home.html", {
            "memberships": mine, "ref": data.get("referral_code", ""),
            "open_programs": [p for p in await programs(active_only=True)
                              if p["id"] not in joined],
            "errors": {field: message[0].upper() + message[1:] + "."}, "values": data,
            "notice": ""}, status_code=422)
    return Redirect(f"/portal/loyalty?program={program_id}&done=joined", status_code=303)


@post("/loyalty/members/{member_id:int}/redeem", opt=PORTAL,
      name="loyalty-portal-redeem")
async def portal_redeem(request: Request, member_id: FromPath[int]) -> Template | Redirect:
    member = await _own_member(request, member_id)
    data = await form_data(request)
    try:
        reward_id = int(data.get("reward", "0") or 0)
        await rewards.redeem(request.app.state.rapport, _actor(request), member_id, reward_id)
    except (LoyaltyError, ValueError) as exc:
        context = await _overview(request, member)
        mine = await own_members(request)
        context.update(memberships=mine, open_programs=[], ref="", values=data, notice="",
                       errors={"redeem": getattr(exc, "message", "choose a reward")})
        return await render(request, "loyalty/portal/home.html", context,
                            status_code=getattr(exc, "status", 422))
    return Redirect(f"/portal/loyalty?program={member['program']}&done=redeemed#vouchers-h",
                    status_code=303)


@get("/loyalty/vouchers/{voucher_id:int}", opt=PORTAL, name="loyalty-portal-voucher")
async def portal_voucher(request: Request, voucher_id: FromPath[int]) -> Template:
    row = await Voucher.select(*Voucher.all_columns(), Voucher.reward.name.as_alias(
        "reward_name")).where((Voucher.id == voucher_id) & (
            Voucher.member.customer == _actor(request).customer_id)).first().run()
    if row is None:
        raise NotFoundException("not found")
    return await render(request, "loyalty/portal/voucher.html", {
        "voucher": row, "state": vouchers.state_words(row),
        "qr": members.card_qr_svg(row["code"])})


@get("/loyalty/card", opt=PORTAL, name="loyalty-portal-card")
async def portal_card(request: Request) -> Template:
    cards = []
    for member in (await own_members(request))[:3]:
        program = await get_program(member["program"])
        summary = await member_summary(member)
        expiring, first = await ledger.expiring_soon(member["pool"] or member["id"],
                                                     program["expiry_notice_days"])
        cards.append({"summary": summary, "expiring": expiring, "first": first,
                      "member": member})
    return Template("loyalty/portal/_card.html", context={"cards": cards})


@get("/loyalty/panel", opt=PORTAL, name="loyalty-portal-panel")
async def portal_panel(request: Request) -> Template:
    rows = []
    for member in (await own_members(request))[:3]:
        rows.extend(await ledger.history(member["pool"] or member["id"], limit=10))
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return Template("loyalty/portal/_panel.html", context={"history": rows[:10],
                                                           "kind_words": KIND_WORDS})


ROUTES = [portal_home, portal_join, portal_redeem, portal_voucher, portal_card, portal_panel]
