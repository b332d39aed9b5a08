"""Staff pages to set programs up (permission ``loyalty.program.manage``): the list, a new
program, and a program's page with its settings, earning rules and tiers (rewards: see
rewards_web.py). Every form shows a refusal beside the field it names and keeps what was
typed; every change is audited through core.records.
"""

from __future__ import annotations

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
from plugins.loyalty.tables import Member, Rule

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


ROUTES = [program_list, program_create, program_show, program_update, rule_create,
          rule_toggle, tier_create]
