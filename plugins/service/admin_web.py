"""Service setup for administrators (``/service/admin``, permission service.settings.manage):
queues and their members, routing rules in order, SLA policies per priority, business
calendars and their holidays.

Every form is checked field by field (a 400 page names the field and says what to fix) and
every write goes through ``core.records`` so it is audited with before and after values.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core import records
from core.audit import client_ip
from core.identity.tables import Team, User
from core.permissions import current_actor
from plugins.service import business_hours
from plugins.service.tables import (
    ASSIGNMENT_MODES,
    CASE_TYPES,
    CHANNELS,
    PRIORITIES,
    BusinessCalendar,
    Holiday,
    Queue,
    QueueMember,
    RoutingRule,
    SlaPolicy,
)

PERM = {"permission": "service.settings.manage"}
MODE_LABELS = {"named": "Named agent", "round_robin": "Round-robin",
               "least_loaded": "Least loaded", "none": "Nobody (stays in the queue)"}
MAX_ROWS = 500  # setup tables are small; the bound keeps a page from growing without end


class FormError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message



async def form_data(request: Request) -> dict[str, Any]:
    form = await request.form()
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if key == "work_days":  # checkboxes: one value per ticked day
            data.setdefault(key, []).append(value)
        else:
            data.setdefault(key, value)
    return data


# --- checking forms --------------------------------------------------------------------------


def _text(data: dict, field: str, limit: int, *, required: bool = False, label: str = "") -> str:
    value = str(data.get(field) or "").strip()
    if required and not value:
        raise FormError(field, f"{label or field.replace('_', ' ').capitalize()} is required")
    if len(value) > limit:
        raise FormError(field, f"at most {limit} characters")
    return value


def _choice(data: dict, field: str, allowed, *, blank: bool = True) -> str:
    value = str(data.get(field) or "").strip()
    if not value and blank:
        return ""
    if value not in allowed:
        raise FormError(field, "choose one of: " + ", ".join(allowed))
    return value


def _int(data: dict, field: str, *, minimum: int = 0, maximum: int = 10**7,
         required: bool = True) -> int | None:
    raw = str(data.get(field) or "").strip()
    if not raw:
        if required:
            raise FormError(field, "give a whole number")
        return None
    try:
        value = int(raw)
    except ValueError:
        raise FormError(field, "give a whole number") from None
    if not minimum <= value <= maximum:
        raise FormError(field, f"give a number from {minimum} to {maximum}")
    return value


async def _ref(data: dict, field: str, table, *, label: str) -> int | None:
    value = _int(data, field, minimum=1, required=False)
    if value is None:
        return None
    if not await table.exists().where(table.id == value).run():
        raise FormError(field, f"choose an existing {label}")
    return value


async def check_queue(data: dict, queue_id: int | None = None) -> dict[str, Any]:
    name = _text(data, "name", 150, required=True, label="Name")
    clash = Queue.exists().where(Queue.name == name)
    if queue_id is not None:
        clash = clash.where(Queue.id != queue_id)
    if await clash.run():
        raise FormError("name", "another queue already has this name")
    mode = _choice(data, "assignment", ASSIGNMENT_MODES, blank=False)
    named = await _ref(data, "named_assignee", User, label="user")
    if mode == "named" and named is None:
        raise FormError("named_assignee", "a queue that assigns a named agent needs one")
    escalation = await _ref(data, "escalation_queue", Queue, label="queue")
    if escalation is not None and escalation == queue_id:
        raise FormError("escalation_queue", "a queue cannot escalate to itself")
    email = _text(data, "email_address", 254)
    if email and "@" not in email:
        raise FormError("email_address", "give an e-mail address, or leave it empty")
    return {
        "name": name, "description": _text(data, "description", 5000), "assignment": mode,
        "named_assignee": named, "team": await _ref(data, "team", Team, label="team"),
        "manager": await _ref(data, "manager", User, label="user"),
        "escalation_queue": escalation, "email_address": email.lower(),
        "active": data.get("active") in ("on", "true", "1") if queue_id is not None else True,
    }


async def check_rule(data: dict) -> dict[str, Any]:
    queue = await _ref(data, "queue", Queue, label="queue")
    if queue is None:
        raise FormError("queue", "choose the queue the matching cases go to")
    return {
        "name": _text(data, "name", 150),
        "case_type": _choice(data, "case_type", CASE_TYPES),
        "priority": _choice(data, "priority", PRIORITIES),
        "channel": _choice(data, "channel", CHANNELS),
        "customer_tag": _text(data, "customer_tag", 64).lower(),
        "queue": queue,
        "assignee": await _ref(data, "assignee", User, label="user"),
        "set_priority": _choice(data, "set_priority", PRIORITIES),
    }


async def check_policy(data: dict) -> dict[str, Any]:
    priority = _choice(data, "priority", PRIORITIES, blank=False)
    first = _int(data, "first_response_minutes", minimum=1)
    resolution = _int(data, "resolution_minutes", minimum=1)
    if resolution < first:
        raise FormError("resolution_minutes", "resolution cannot come before the first response")
    return {
        "name": _text(data, "name", 150) or f"{priority.capitalize()} priority",
        "priority": priority, "first_response_minutes": first,
        "resolution_minutes": resolution,
        "warn_before_minutes": _int(data, "warn_before_minutes", minimum=0),
        "calendar": await _ref(data, "calendar", BusinessCalendar, label="calendar"),
        "active": True,
    }


async def check_calendar(data: dict, calendar_id: int | None = None) -> dict[str, Any]:
    name = _text(data, "name", 150, required=True, label="Name")
    clash = BusinessCalendar.exists().where(BusinessCalendar.name == name)
    if calendar_id is not None:
        clash = clash.where(BusinessCalendar.id != calendar_id)
    if await clash.run():
        raise FormError("name", "another calendar already has this name")
    days = data.get("work_days") or []
    values = {"name": name, "timezone": _text(data, "timezone", 64),
              "work_days": ",".join(sorted({str(d).strip() for d in days if str(d).strip()})),
              "opens_at": _text(data, "opens_at", 5), "closes_at": _text(data, "closes_at", 5)}
    try:
        business_hours.schedule_from(values)
    except business_hours.CalendarError as exc:
        raise FormError(exc.field, exc.message) from None
    return values


def check_holiday(data: dict) -> dict[str, Any]:
    raw = str(data.get("day") or "").strip()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise FormError("day", "give a date as YYYY-MM-DD") from None
    return {"day": day, "name": _text(data, "name", 150)}


# --- pages -----------------------------------------------------------------------------------


def describe_conditions(rule: dict[str, Any]) -> str:
    parts = []
    if rule["case_type"]:
        parts.append(f"type {rule['case_type'].replace('_', ' ')}")
    if rule["priority"]:
        parts.append(f"priority {rule['priority']}")
    if rule["channel"]:
        parts.append(f"channel {rule['channel']}")
    if rule["customer_tag"]:
        parts.append(f"tag “{rule['customer_tag']}”")
    return ", ".join(parts) or "every case"


async def _choices() -> dict[str, Any]:
    users = await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(MAX_ROWS).run()
    teams = await Team.select(Team.id, Team.name).order_by(Team.name).limit(MAX_ROWS).run()
    queues = await Queue.select().order_by(Queue.name).limit(MAX_ROWS).run()
    calendars = await BusinessCalendar.select().order_by(BusinessCalendar.name).limit(
        MAX_ROWS).run()
    return {"users": users, "teams": teams, "queues": queues, "calendars": calendars,
            "user_names": {u["id"]: u["name"] for u in users},
            "team_names": {t["id"]: t["name"] for t in teams},
            "queue_names": {q["id"]: q["name"] for q in queues},
            "calendar_names": {c["id"]: c["name"] for c in calendars},
            "user_options": [(u["id"], u["name"]) for u in users],
            "team_options": [(t["id"], t["name"]) for t in teams],
            "queue_options": [(q["id"], q["name"]) for q in queues],
            "calendar_options": [(c["id"], c["name"]) for c in calendars],
            "case_type_options": [(t, t.replace("_", " ")) for t in CASE_TYPES],
            "priority_options": [(p, p) for p in PRIORITIES],
            "channel_options": [(c, c) for c in CHANNELS],
            "modes": MODE_LABELS, "case_types": CASE_TYPES, "priorities": PRIORITIES,
            "channels": CHANNELS, "day_names": business_hours.DAY_NAMES}


async def _admin_page(errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                      form: str = "", status: int = 200) -> Template:
    context = await _choices()
    rules = await RoutingRule.select().order_by(RoutingRule.position).order_by(
        RoutingRule.id).limit(MAX_ROWS).run()
    policies = {p["priority"]: p for p in await SlaPolicy.select().limit(MAX_ROWS).run()}
    members = await QueueMember.select(QueueMember.queue, QueueMember.user,
                                       QueueMember.available).limit(5000).run()
    by_queue: dict[int, list[dict]] = {}
    for m in members:
        by_queue.setdefault(m["queue"], []).append(m)
    return Template("service/admin/index.html", status_code=status, context={
        **context, "rules": rules, "policies": policies, "members": by_queue,
        "describe": describe_conditions,
        "errors": errors or {}, "values": values or {}, "form": form,
    })


@get("/service/admin", opt=PERM, name="service-admin")
async def admin_page(policy: FromQuery[str] = "") -> Template:
    """``?policy=<priority>`` opens the policy form filled in with that priority's targets."""
    if policy in PRIORITIES:
        row = await SlaPolicy.select().where(SlaPolicy.priority == policy).first().run()
        values = {"priority": policy}
        if row is not None:
            values.update({k: "" if row[k] is None else str(row[k]) for k in (
                "name", "first_response_minutes", "resolution_minutes",
                "warn_before_minutes", "calendar")})
        return await _admin_page(values=values, form="policy")
    return await _admin_page()


@post("/service/admin/queues", opt=PERM)
async def queue_create(request: Request) -> Response:
    data = await form_data(request)
    try:
        values = await check_queue(data)
    except FormError as exc:
        return await _admin_page({exc.field: exc.message}, data, "queue", 400)
    row = await records.create(current_actor(request), Queue, values, ip=client_ip(request),
                               summary=f"queue {values['name']}")
    return Redirect(f"/service/admin/queues/{row['id']}", status_code=303)


async def _queue_or_404(queue_id: int) -> dict[str, Any]:
    row = await Queue.select().where(Queue.id == queue_id).first().run()
    if row is None:
        raise NotFoundException("no such queue")
    return row


async def _queue_page(queue: dict[str, Any], errors: dict[str, str] | None = None,
                      values: dict[str, Any] | None = None, form: str = "",
                      status: int = 200) -> Template:
    context = await _choices()
    members = await QueueMember.select(
        QueueMember.id, QueueMember.user, QueueMember.available,
        QueueMember.user.name.as_alias("user_name"),
        QueueMember.user.is_active.as_alias("user_active"),
    ).where(QueueMember.queue == queue["id"]).order_by(QueueMember.user.name).limit(
        MAX_ROWS).run()
    from plugins.service.routing import open_case_counts

    load = await open_case_counts([m["user"] for m in members])
    return Template("service/admin/queue.html", status_code=status, context={
        **context, "queue": queue, "members": members, "load": load, "errors": errors or {},
        "values": values if values is not None else queue, "form": form,
    })


@get("/service/admin/queues/{queue_id:int}", opt=PERM)
async def queue_page(queue_id: FromPath[int]) -> Template:
    return await _queue_page(await _queue_or_404(queue_id))


@post("/service/admin/queues/{queue_id:int}", opt=PERM)
async def queue_update(request: Request, queue_id: FromPath[int]) -> Response:
    queue = await _queue_or_404(queue_id)
    data = await form_data(request)
    try:
        values = await check_queue(data, queue_id)
    except FormError as exc:
        return await _queue_page(queue, {exc.field: exc.message}, data, "queue", 400)
    await records.update(current_actor(request), Queue, queue_id, values, ip=client_ip(request),
                         summary=f"queue {values['name']}")
    return Redirect(f"/service/admin/queues/{queue_id}", status_code=303)


@post("/service/admin/queues/{queue_id:int}/members", opt=PERM)
async def member_add(request: Request, queue_id: FromPath[int]) -> Response:
    queue = await _queue_or_404(queue_id)
    data = await form_data(request)
    try:
        user = await _ref(data, "user", User, label="user")
        if user is None:
            raise FormError("user", "choose the agent to add")
        if await QueueMember.exists().where((QueueMember.queue == queue_id)
                                            & (QueueMember.user == user)).run():
            raise FormError("user", "this agent is already a member")
    except FormError as exc:
        return await _queue_page(queue, {exc.field: exc.message}, None, "member", 400)
    await records.create(current_actor(request), QueueMember,
                         {"queue": queue_id, "user": user, "available": True},
                         ip=client_ip(request), summary=f"member of queue {queue['name']}")
    return Redirect(f"/service/admin/queues/{queue_id}", status_code=303)


async def _member_or_404(queue_id: int, member_id: int) -> dict[str, Any]:
    row = await QueueMember.select().where((QueueMember.id == member_id)
                                           & (QueueMember.queue == queue_id)).first().run()
    if row is None:
        raise NotFoundException("no such member")
    return row


@post("/service/admin/queues/{queue_id:int}/members/{member_id:int}/availability", opt=PERM)
async def member_availability(request: Request, queue_id: FromPath[int],
                              member_id: FromPath[int]) -> Response:
    member = await _member_or_404(queue_id, member_id)
    data = await form_data(request)
    available = data.get("available") in ("on", "true", "1")
    await records.update(current_actor(request), QueueMember, member["id"],
                         {"available": available}, ip=client_ip(request),
                         summary="available" if available else "away")
    return Redirect(f"/service/admin/queues/{queue_id}", status_code=303)


@post("/service/admin/queues/{queue_id:int}/members/{member_id:int}/delete", opt=PERM)
async def member_remove(request: Request, queue_id: FromPath[int],
                        member_id: FromPath[int]) -> Response:
    member = await _member_or_404(queue_id, member_id)
    await records.delete(current_actor(request), QueueMember, member["id"],
                         ip=client_ip(request))
    return Redirect(f"/service/admin/queues/{queue_id}", status_code=303)


@post("/service/admin/rules", opt=PERM)
async def rule_create(request: Request) -> Response:
    data = await form_data(request)
    try:
        values = await check_rule(data)
    except FormError as exc:
        return await _admin_page({exc.field: exc.message}, data, "rule", 400)
    last = await RoutingRule.select(RoutingRule.position).order_by(
        RoutingRule.position, ascending=False).first().run()
    values["position"] = (last["position"] + 10) if last else 10
    await records.create(current_actor(request), RoutingRule, values, ip=client_ip(request),
                         summary=f"routing rule {values['name']}")
    return Redirect("/service/admin#rules", status_code=303)


async def _rule_page(rule: dict[str, Any], errors: dict[str, str] | None = None,
                     values: dict[str, Any] | None = None, status: int = 200) -> Template:
    context = await _choices()
    return Template("service/admin/rule.html", status_code=status, context={
        **context, "rule": rule, "errors": errors or {}, "form": "rule",
        "values": values if values is not None else {
            k: "" if v is None else v for k, v in rule.items()},
    })


async def _rule_or_404(rule_id: int) -> dict[str, Any]:
    row = await RoutingRule.select().where(RoutingRule.id == rule_id).first().run()
    if row is None:
        raise NotFoundException("no such rule")
    return row


@get("/service/admin/rules/{rule_id:int}", opt=PERM)
async def rule_page(rule_id: FromPath[int]) -> Template:
    return await _rule_page(await _rule_or_404(rule_id))


@post("/service/admin/rules/{rule_id:int}", opt=PERM)
async def rule_update(request: Request, rule_id: FromPath[int]) -> Response:
    rule = await _rule_or_404(rule_id)
    data = await form_data(request)
    try:
        values = await check_rule(data)
    except FormError as exc:
        return await _rule_page(rule, {exc.field: exc.message}, data, 400)
    await records.update(current_actor(request), RoutingRule, rule_id, values,
                         ip=client_ip(request), summary=f"routing rule {values['name']}")
    return Redirect("/service/admin#rules", status_code=303)


@post("/service/admin/rules/{rule_id:int}/move", opt=PERM)
async def rule_move(request: Request, rule_id: FromPath[int]) -> Response:
    """Swap the rule with its neighbour above (``direction=up``) or below, in one
    transaction, renumbering so positions stay distinct."""
    data = await form_data(request)
    rules = await RoutingRule.select(RoutingRule.id, RoutingRule.position).order_by(
        RoutingRule.position).order_by(RoutingRule.id).limit(MAX_ROWS).run()
    ids = [r["id"] for r in rules]
    if rule_id not in ids:
        raise NotFoundException("no such rule")
    index = ids.index(rule_id)
    other = index - 1 if data.get("direction") == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        actor, ip = current_actor(request), client_ip(request)
        positions = {r["id"]: r["position"] for r in rules}
        async with RoutingRule._meta.db.transaction():
            for index, rid in enumerate(ids):
                wanted = (index + 1) * 10
                if positions[rid] != wanted:
                    await records.update(actor, RoutingRule, rid, {"position": wanted}, ip=ip,
                                         summary="routing order")
    return Redirect("/service/admin#rules", status_code=303)


@post("/service/admin/rules/{rule_id:int}/active", opt=PERM)
async def rule_active(request: Request, rule_id: FromPath[int]) -> Response:
    """Switch a rule off (routing skips it) or back on, keeping its place in the order."""
    data = await form_data(request)
    active = data.get("active") in ("on", "true", "1")
    try:
        await records.update(current_actor(request), RoutingRule, rule_id, {"active": active},
                             ip=client_ip(request),
                             summary="routing rule on" if active else "routing rule off")
    except records.RecordNotFound:
        raise NotFoundException("no such rule") from None
    return Redirect("/service/admin#rules", status_code=303)


@post("/service/admin/rules/{rule_id:int}/delete", opt=PERM)
async def rule_delete(request: Request, rule_id: FromPath[int]) -> Response:
    try:
        await records.delete(current_actor(request), RoutingRule, rule_id, ip=client_ip(request))
    except records.RecordNotFound:
        raise NotFoundException("no such rule") from None
    return Redirect("/service/admin#rules", status_code=303)


@post("/service/admin/policies", opt=PERM)
async def policy_save(request: Request) -> Response:
    """Create the policy for a priority, or change it when one exists (one per priority)."""
    data = await form_data(request)
    try:
        values = await check_policy(data)
    except FormError as exc:
        return await _admin_page({exc.field: exc.message}, data, "policy", 400)
    existing = await SlaPolicy.select(SlaPolicy.id).where(
        SlaPolicy.priority == values["priority"]).first().run()
    actor, ip = current_actor(request), client_ip(request)
    if existing:
        await records.update(actor, SlaPolicy, existing["id"], values, ip=ip,
                             summary=f"SLA for {values['priority']}")
    else:
        await records.create(actor, SlaPolicy, values, ip=ip,
                             summary=f"SLA for {values['priority']}")
    return Redirect("/service/admin#sla", status_code=303)


@post("/service/admin/policies/{policy_id:int}/delete", opt=PERM)
async def policy_delete(request: Request, policy_id: FromPath[int]) -> Response:
    """Switch a policy off rather than delete it: cases keep pointing at it."""
    try:
        await records.update(current_actor(request), SlaPolicy, policy_id, {"active": False},
                             ip=client_ip(request), summary="SLA switched off")
    except records.RecordNotFound:
        raise NotFoundException("no such policy") from None
    return Redirect("/service/admin#sla", status_code=303)


@post("/service/admin/calendars", opt=PERM)
async def calendar_create(request: Request) -> Response:
    data = await form_data(request)
    try:
        values = await check_calendar(data)
    except FormError as exc:
        return await _admin_page({exc.field: exc.message}, data, "calendar", 400)
    row = await records.create(current_actor(request), BusinessCalendar, values,
                               ip=client_ip(request), summary=f"calendar {values['name']}")
    return Redirect(f"/service/admin/calendars/{row['id']}", status_code=303)


async def _calendar_or_404(calendar_id: int) -> dict[str, Any]:
    row = await BusinessCalendar.select().where(BusinessCalendar.id == calendar_id).first().run()
    if row is None:
        raise NotFoundException("no such calendar")
    return row


async def _calendar_page(calendar: dict[str, Any], errors: dict[str, str] | None = None,
                         values: dict[str, Any] | None = None, form: str = "",
                         status: int = 200) -> Template:
    holidays = await Holiday.select().where(Holiday.calendar == calendar["id"]).order_by(
        Holiday.day).limit(MAX_ROWS * 4).run()
    shown = dict(values) if values is not None else dict(calendar)
    if isinstance(shown.get("work_days"), str):
        shown["work_days"] = [d for d in shown["work_days"].split(",") if d]
    return Template("service/admin/calendar.html", status_code=status, context={
        "calendar": calendar, "holidays": holidays, "errors": errors or {}, "values": shown,
        "form": form, "day_names": business_hours.DAY_NAMES,
    })


@get("/service/admin/calendars/{calendar_id:int}", opt=PERM)
async def calendar_page(calendar_id: FromPath[int]) -> Template:
    return await _calendar_page(await _calendar_or_404(calendar_id))


@post("/service/admin/calendars/{calendar_id:int}", opt=PERM)
async def calendar_update(request: Request, calendar_id: FromPath[int]) -> Response:
    calendar = await _calendar_or_404(calendar_id)
    data = await form_data(request)
    try:
        values = await check_calendar(data, calendar_id)
    except FormError as exc:
        return await _calendar_page(calendar, {exc.field: exc.message}, data, "calendar", 400)
    await records.update(current_actor(request), BusinessCalendar, calendar_id, values,
                         ip=client_ip(request), summary=f"calendar {values['name']}")
    return Redirect(f"/service/admin/calendars/{calendar_id}", status_code=303)


@post("/service/admin/calendars/{calendar_id:int}/holidays", opt=PERM)
async def holiday_add(request: Request, calendar_id: FromPath[int]) -> Response:
    calendar = await _calendar_or_404(calendar_id)
    data = await form_data(request)
    try:
        values = check_holiday(data)
        if await Holiday.exists().where((Holiday.calendar == calendar_id)
                                        & (Holiday.day == values["day"])).run():
            raise FormError("day", "this day is already a holiday")
    except FormError as exc:
        return await _calendar_page(calendar, {exc.field: exc.message}, None, "holiday", 400)
    await records.create(current_actor(request), Holiday, {**values, "calendar": calendar_id},
                         ip=client_ip(request), summary=f"holiday in {calendar['name']}")
    return Redirect(f"/service/admin/calendars/{calendar_id}", status_code=303)


@post("/service/admin/calendars/{calendar_id:int}/holidays/{holiday_id:int}/delete", opt=PERM)
async def holiday_delete(request: Request, calendar_id: FromPath[int],
                         holiday_id: FromPath[int]) -> Response:
    row = await Holiday.select(Holiday.id).where(
        (Holiday.id == holiday_id) & (Holiday.calendar == calendar_id)).first().run()
    if row is None:
        raise NotFoundException("no such holiday")
    await records.delete(current_actor(request), Holiday, holiday_id, ip=client_ip(request))
    return Redirect(f"/service/admin/calendars/{calendar_id}", status_code=303)


ROUTES: list = [
    admin_page, queue_create, queue_page, queue_update, member_add, member_availability,
    member_remove, rule_create, rule_page, rule_update, rule_move, rule_active,
    rule_delete, policy_save, policy_delete,
    calendar_create, calendar_page, calendar_update, holiday_add, holiday_delete,
]
