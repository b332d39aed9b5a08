"""Staff pages to set programs up (permission ``loyalty.program.manage``): the list, a new
program, and a program's page with its settings, earning rules and tiers (rewards: see
rewards_web.py). Every form shows a refusal beside the field it names and keeps what was
typed; every change is audited through core.records.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core import records
from core.audit import client_ip
from core.permissions import current_actor
from plugins.loyalty import rewards, rules, tiers
from plugins.loyalty.members_web import form_data
from plugins.loyalty.programs import (
    LoyaltyError,
    create_program,
    get_program,
    programs,
    update_program,
)
from plugins.loyalty.tables import Member, Reward, Rule, Tier

MANAGE = {"permission": "loyalty.program.manage"}
CHECKBOXES = ("active", "pending_until_fulfilled", "allow_negative", "allow_pooling")


def program_values(data: dict[str, str]) -> dict[str, Any]:
    """A form's fields: unticked boxes are absent from a form, so they are set off."""
    values = {k: v for k, v in data.items() if not k.startswith("_")}
    for name in CHECKBOXES:
        values[name] = data.get(name) == "on"
    return values


@get("/loyalty/programs", opt=MANAGE, name="loyalty-programs")
async def program_list(request: Request) -> Template:
    rows = await programs()
    counts = {}
    for row in rows:
        counts[row["id"]] = await Member.count().where(Member.program == row["id"]).run()
    return Template("loyalty/programs.html", context={
        "programs": rows, "counts": counts, "values": {"currency": "EUR", "active": True,
                                                       "expiry_months": 24,
                                                       "tier_window_days": 365,
                                                       "tier_grace_days": 30,
                                                       "expiry_notice_days": 30},
        "errors": {}})


@post("/loyalty/programs", opt=MANAGE, name="loyalty-program-create")
async def program_create(request: Request) -> Template | Redirect:
    data = await form_data(request)
    try:
        program = await create_program(current_actor(request), program_values(data),
                                       ip=client_ip(request))
    except LoyaltyError as exc:
        rows = await programs()
        return Template("loyalty/programs.html", status_code=422, context={
            "programs": rows, "counts": {}, "values": data, "errors": {exc.field: exc.message}})
    return Redirect(f"/loyalty/programs/{program['id']}", status_code=303)


async def _program_or_404(program_id: int) -> dict[str, Any]:
    program = await get_program(program_id)
    if program is None:
        raise NotFoundException("not found")
    return program


async def program_page(program: dict[str, Any], *, errors: dict[str, str] | None = None,
                       values: dict[str, Any] | None = None, failed: str = "",
                       status: int = 200, notice: str = "") -> Template:
    tier_list = await tiers.tiers_of(program["id"])
    return Template("loyalty/program.html", status_code=status, context={
        "program": program, "rules": await rules.rules_of(program["id"]),
        "tiers": tier_list, "rewards": await rewards.catalogue(program["id"], active_only=False),
        "kind_labels": rules.KIND_LABELS, "reward_kinds": rewards.KIND_LABELS,
        "errors": errors or {}, "values": values or {}, "failed": failed, "notice": notice,
        "settings": values if failed == "settings" else program,
    })


@get("/loyalty/programs/{program_id:int}", opt=MANAGE, name="loyalty-program")
async def program_show(request: Request, program_id: FromPath[int]) -> Template:
    return await program_page(await _program_or_404(program_id),
                              notice=request.query_params.get("done", ""))


@post("/loyalty/programs/{program_id:int}", opt=MANAGE, name="loyalty-program-update")
async def program_update(request: Request, program_id: FromPath[int]) -> Template | Redirect:
    program = await _program_or_404(program_id)
    data = await form_data(request)
    try:
        await update_program(current_actor(request), program_id, program_values(data),
                             ip=client_ip(request))
    except LoyaltyError as exc:
        return await program_page(program, errors={f"settings.{exc.field}": exc.message},
                                  values=data, failed="settings", status=422)
    return Redirect(f"/loyalty/programs/{program_id}?done=saved", status_code=303)


@post("/loyalty/programs/{program_id:int}/rules", opt=MANAGE, name="loyalty-rule-create")
async def rule_create(request: Request, program_id: FromPath[int]) -> Template | Redirect:
    program = await _program_or_404(program_id)
    data = await form_data(request)
    values = {k: v for k, v in data.items() if not k.startswith("_")}
    values["active"] = True
    try:
        await rules.create_rule(current_actor(request), program_id, values,
                                ip=client_ip(request))
    except LoyaltyError as exc:
        return await program_page(program, errors={f"rule.{exc.field}": exc.message},
                                  values=data, failed="rule", status=422)
    return Redirect(f"/loyalty/programs/{program_id}?done=rule#rules-h", status_code=303)


@post("/loyalty/programs/{program_id:int}/rules/{rule_id:int}/toggle", opt=MANAGE,
      name="loyalty-rule-toggle")
async def rule_toggle(request: Request, program_id: FromPath[int], rule_id: FromPath[int]
                      ) -> Redirect:
    rule = await Rule.select().where((Rule.id == rule_id)
                                     & (Rule.program == program_id)).first().run()
    if rule is None:
        raise NotFoundException("not found")
    await records.update(current_actor(request), Rule, rule_id, {"active": not rule["active"]},
                         ip=client_ip(request))
    return Redirect(f"/loyalty/programs/{program_id}?done=rule#rules-h", status_code=303)


@post("/loyalty/programs/{program_id:int}/tiers", opt=MANAGE, name="loyalty-tier-create")
async def tier_create(request: Request, program_id: FromPath[int]) -> Template | Redirect:
    program = await _program_or_404(program_id)
    data = await form_data(request)
    values = {k: v for k, v in data.items() if not k.startswith("_")}
    values["free_shipping"] = data.get("free_shipping") == "on"
    try:
        await tiers.save_tier(current_actor(request), program_id, values, ip=client_ip(request))
    except LoyaltyError as exc:
        return await program_page(program, errors={f"tier.{exc.field}": exc.message},
                                  values=data, failed="tier", status=422)
    return Redirect(f"/loyalty/programs/{program_id}?done=tier#tiers-h", status_code=303)


# --- editing a rule, a tier or a reward in place ------------------------------------------


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as a form shows it: decimals without trailing zeros, dates as ISO, no
    None."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, Decimal):
            out[key] = format(value.normalize(), "f")
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


ITEMS = {"rule": ("rules", Rule, "Edit earning rule"), "tier": ("tiers", Tier, "Edit tier"),
         "reward": ("rewards", Reward, "Edit reward")}


async def _item_or_404(what: str, program_id: int, item_id: int) -> dict[str, Any]:
    table = ITEMS[what][1]
    row = await table.select().where((table.id == item_id)
                                     & (table.program == program_id)).first().run()
    if row is None:
        raise NotFoundException("not found")
    return row


async def item_page(program: dict[str, Any], what: str, row: dict[str, Any], *,
                    values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                    status: int = 200) -> Template:
    plural, _, heading = ITEMS[what]
    note = ""
    if what == "reward" and row.get("issued_count"):
        note = (f"{row['issued_count']:,} vouchers were issued for this reward: they keep "
                f"their value and expiry; changes apply to new redemptions.")
    elif what == "rule":
        note = "Changes apply to purchases from now on; points already earned stay."
    return Template("loyalty/program_item.html", status_code=status, context={
        "program": program, "what": what, "heading": f"{heading}: {row['name']}",
        "v": values if values is not None else shown(row), "errors": errors or {},
        "action": f"/loyalty/programs/{program['id']}/{plural}/{row['id']}", "note": note,
        "kind_labels": rules.KIND_LABELS, "reward_kinds": rewards.KIND_LABELS,
        "tiers": await tiers.tiers_of(program["id"])})


async def _edit(request: Request, kind: str, program_id: int, item_id: int) -> Template:
    program = await _program_or_404(program_id)
    return await item_page(program, kind, await _item_or_404(kind, program_id, item_id))


async def _update(request: Request, kind: str, program_id: int, item_id: int
                  ) -> Template | Redirect:
    program = await _program_or_404(program_id)
    row = await _item_or_404(kind, program_id, item_id)
    data = await form_data(request)
    values = {k: v for k, v in data.items() if not k.startswith("_")}
    actor, ip = current_actor(request), client_ip(request)
    try:
        if kind == "rule":
            await rules.update_rule(actor, item_id, {**values, "active": row["active"]}, ip=ip)
        elif kind == "tier":
            values["free_shipping"] = data.get("free_shipping") == "on"
            await tiers.save_tier(actor, program_id, values, item_id, ip=ip)
        else:
            await rewards.save_reward(actor, program_id, {**values, "active": row["active"]},
                                      item_id, ip=ip)
    except LoyaltyError as exc:
        return await item_page(program, kind, row, values=data,
                               errors={f"{kind}.{exc.field}": exc.message}, status=422)
    return Redirect(f"/loyalty/programs/{program_id}?done={kind}#{ITEMS[kind][0]}-h",
                    status_code=303)


# One path per kind, each with the id parameter the kind's other routes use (the router
# matches a fixed segment before a parameter and does not go back).
@get("/loyalty/programs/{program_id:int}/rules/{rule_id:int}", opt=MANAGE)
async def rule_edit(request: Request, program_id: FromPath[int], rule_id: FromPath[int]
                    ) -> Template:
    return await _edit(request, "rule", program_id, rule_id)


@post("/loyalty/programs/{program_id:int}/rules/{rule_id:int}", opt=MANAGE)
async def rule_update(request: Request, program_id: FromPath[int], rule_id: FromPath[int]
                      ) -> Template | Redirect:
    return await _update(request, "rule", program_id, rule_id)


@get("/loyalty/programs/{program_id:int}/tiers/{tier_id:int}", opt=MANAGE)
async def tier_edit(request: Request, program_id: FromPath[int], tier_id: FromPath[int]
                    ) -> Template:
    return await _edit(request, "tier", program_id, tier_id)


@post("/loyalty/programs/{program_id:int}/tiers/{tier_id:int}", opt=MANAGE)
async def tier_update(request: Request, program_id: FromPath[int], tier_id: FromPath[int]
                      ) -> Template | Redirect:
    return await _update(request, "tier", program_id, tier_id)


@get("/loyalty/programs/{program_id:int}/rewards/{reward_id:int}", opt=MANAGE)
async def reward_edit(request: Request, program_id: FromPath[int], reward_id: FromPath[int]
                      ) -> Template:
    return await _edit(request, "reward", program_id, reward_id)


@post("/loyalty/programs/{program_id:int}/rewards/{reward_id:int}", opt=MANAGE)
async def reward_update(request: Request, program_id: FromPath[int], reward_id: FromPath[int]
                        ) -> Template | Redirect:
    return await _update(request, "reward", program_id, reward_id)


ROUTES = [program_list, program_create, program_show, program_update, rule_create,
          rule_toggle, tier_create, rule_edit, rule_update, tier_edit, tier_update,
          reward_edit, reward_update]
