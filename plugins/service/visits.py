"""Repair and maintenance visits: a case scheduled for a field representative.

A visit is two rows kept in step: ``service_visit`` (the case's view: who, when, status,
instructions) and a core interaction of channel ``visit`` (plugin ``service``, plugin_record
the case id, ``user`` the representative, ``occurred_at`` the start). The interaction is what
puts the visit in the field app's agenda (``pwa/interactions_bridge.agenda`` lists the user's
visit interactions of the day), on the device for offline use, and in the customer's timeline.

The visit report is written in the field app, which records it as a *new* visit interaction
of the same customer by the representative (notes, outcome, photos, signature and check-in in
``pwa_attachment`` / ``pwa_visit_check_in``). The case shows as a visit's report every visit
interaction of the case's customer recorded by the visit's representative between 12 hours
before the start and 24 hours after the end (each report goes to the nearest visit in time),
plus anything attached to the scheduled interaction itself.

Writes go through ``core.records`` (audited) in one transaction with the case event; the
interaction events are announced after the commit, as ``record_interaction`` would.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from core import records
from core.audit import client_ip
from core.customers.tables import Customer
from core.identity.roles import expand_grants
from core.identity.tables import RolePermission, User, UserRole
from core.interactions.service import EVENT_CREATED, EVENT_UPDATED, as_utc, event_payload
from core.interactions.tables import Interaction
from core.local_time import format_local, parse_local, zone_of
from core.permissions import Actor, current_actor, scoped
from core.plugin import AgendaItem
from plugins.service.tables import Case, CaseEvent, Visit

log = logging.getLogger("rapport.service.visits")

VISIT_STATUSES = ("scheduled", "done", "cancelled")  # done: the field report came in
ASSIGNEE_PERMISSIONS = ("service.case.edit", "core.field.view")
MAX_NOTES = 5000
MAX_LENGTH = timedelta(hours=24)
REPORT_BEFORE = timedelta(hours=12)
REPORT_AFTER = timedelta(hours=24)
CASE_VISITS_LIMIT = 50


class VisitError(ValueError):
    """Bad input for a visit; ``errors`` maps each field to its message (forms show them all,
    ``field``/``message`` name the first)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        self.field, self.message = next(iter(self.errors.items()))
        super().__init__(f"{self.field}: {self.message}")


# --- who can be sent -------------------------------------------------------------------------


async def assignable_users(rapport, limit: int = 500) -> list[dict[str, Any]]:
    """Active staff who may work a case (``service.case.edit``) and use the field app
    (``core.field.view``), by name. Roles' pattern grants are expanded the way sign-in does."""
    wanted = [p for p in ASSIGNEE_PERMISSIONS if p in rapport.permissions]
    grants: dict[int, list[tuple[str, str]]] = {}
    for row in await RolePermission.select(RolePermission.role, RolePermission.permission,
                                           RolePermission.scope).run():
        grants.setdefault(row["role"], []).append((row["permission"], row["scope"]))
    # A user needs every wanted permission, possibly from different roles.
    roles_granting = {p: {role for role, g in grants.items()
                          if p in expand_grants(g, [p])} for p in wanted}
    if any(not roles for roles in roles_granting.values()):
        return []
    candidates = await UserRole.select(UserRole.user, UserRole.role).where(
        UserRole.role.is_in(sorted(set().union(*roles_granting.values())))).run()
    roles_of: dict[int, set[int]] = {}
    for row in candidates:
        roles_of.setdefault(row["user"], set()).add(row["role"])
    ids = [u for u, roles in roles_of.items()
           if all(roles & granting for granting in roles_granting.values())]
    if not ids:
        return []
    return await User.select(User.id, User.name, User.email).where(
        User.id.is_in(ids) & (User.is_active == True)  # noqa: E712
    ).order_by(User.name).limit(limit).run()


# --- reading a case for a change -------------------------------------------------------------


async def _case_for(rapport, actor: Actor | None, case_id: int, permission: str
                    ) -> dict[str, Any]:
    """The case if ``actor`` may reach it with ``permission`` (``None``: a trusted job)."""
    query = Case.select().where(Case.id == case_id)
    if actor is not None:
        query = scoped(query, rapport, actor, permission, Case)
    row = await query.first().run()
    if row is None:
        raise LookupError(f"case {case_id} does not exist")
    return row


def _clean(values: dict[str, Any], assignees: set[int], errors: dict[str, str]) -> dict:
    cleaned: dict[str, Any] = {}
    raw_assignee = values.get("assignee")
    try:
        assignee = int(raw_assignee) if raw_assignee not in (None, "") else None
    except (TypeError, ValueError):
        assignee = None
        errors["assignee"] = "must be a field representative from the list"
    if assignee is None:
        errors.setdefault("assignee", "is required: who goes to the customer")
    elif assignee not in assignees:
        errors["assignee"] = ("cannot be sent on visits (needs to work cases and use the "
                              "field app)")
    cleaned["assignee"] = assignee
    starts_at = as_utc(values.get("starts_at"), "starts_at", errors)
    if starts_at is None:
        errors.setdefault("starts_at", "is required")
    ends_at = as_utc(values.get("ends_at"), "ends_at", errors)
    if starts_at is not None and ends_at is not None:
        if ends_at <= starts_at:
            errors["ends_at"] = "must be after the start"
        elif ends_at - starts_at > MAX_LENGTH:
            errors["ends_at"] = "must be within 24 hours of the start"
    cleaned["starts_at"], cleaned["ends_at"] = starts_at, ends_at
    notes = str(values.get("notes") or "").strip()
    if len(notes) > MAX_NOTES:
        errors["notes"] = f"is too long (at most {MAX_NOTES} characters)"
    cleaned["notes"] = notes
    return cleaned


def _interaction_values(case: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, Any]:
    duration = None
    if cleaned["ends_at"] is not None:
        duration = int((cleaned["ends_at"] - cleaned["starts_at"]).total_seconds())
    return {"subject": f"{case['number']}: {case['subject']}"[:300],
            "notes": cleaned["notes"], "occurred_at": cleaned["starts_at"],
            "duration_seconds": duration, "user": cleaned["assignee"]}


async def _publish(rapport, name: str, payload: dict[str, Any], actor: Actor | None) -> None:
    try:
        await rapport.publish(name, payload, actor_id=actor.id if actor else None)
    except Exception:  # committed already: a failing listener must not undo the visit
        log.exception("publishing %s failed", name)


# --- scheduling ------------------------------------------------------------------------------


async def schedule(rapport, actor: Actor | None, case_id: int, *, assignee: Any,
                   starts_at: Any, ends_at: Any = None, notes: str = "", ip: str = ""
                   ) -> dict[str, Any]:
    """Schedule a visit for the case; return the ``service_visit`` row.

    Needs ``service.case.edit`` on the case (``actor`` ``None``: a trusted job such as the
    demo). Raises ``LookupError`` for a case out of reach, :class:`VisitError` for bad input.
    """
    case = await _case_for(rapport, actor, case_id, "service.case.edit")
    errors: dict[str, str] = {}
    if not case["is_open"]:
        errors["case"] = "is closed: reopen it before scheduling a visit"
    allowed = {u["id"] for u in await assignable_users(rapport)}
    cleaned = _clean({"assignee": assignee, "starts_at": starts_at, "ends_at": ends_at,
                      "notes": notes}, allowed, errors)
    if errors:
        raise VisitError(errors)
    now = datetime.now(UTC)
    async with Visit._meta.db.transaction():
        # Written here rather than through record_interaction, which announces the event
        # before this transaction would commit and records the scheduler, not the
        # representative, as the interaction's user (the agenda lists the user's visits).
        interaction = await records.create(actor, Interaction, {
            **_interaction_values(case, cleaned), "customer": case["customer"],
            "channel": "visit", "direction": "outbound", "plugin": "service",
            "plugin_record": str(case_id), "purpose": "repair visit",
            "created_at": now, "updated_at": now,
        }, ip=ip, summary=f"visit scheduled for case {case['number']}")
        visit = await records.create(actor, Visit, {
            "case": case_id, "assignee": cleaned["assignee"], "starts_at": cleaned["starts_at"],
            "ends_at": cleaned["ends_at"], "status": "scheduled",
            "interaction_id": interaction["id"], "notes": cleaned["notes"],
            "created_by": actor.id if actor else None, "created_at": now,
        }, ip=ip, summary=f"visit for case {case['number']}")
        await CaseEvent.insert(CaseEvent(
            case=case_id, kind="visit", old_value="",
            new_value=f"scheduled {cleaned['starts_at']:%Y-%m-%d %H:%M} UTC",
            user=actor.id if actor else None, at=now)).run()
        await Case.update({Case.updated_at: now}).where(Case.id == case_id).run()
    await _publish(rapport, EVENT_CREATED, event_payload(interaction), actor)
    return visit


async def _visit_for(rapport, actor: Actor | None, visit_id: int) -> tuple[dict, dict]:
    visit = await Visit.select().where(Visit.id == visit_id).first().run()
    if visit is None:
        raise LookupError(f"visit {visit_id} does not exist")
    case = await _case_for(rapport, actor, visit["case"], "service.case.edit")
    return visit, case


async def reschedule(rapport, actor: Actor | None, visit_id: int, *, starts_at: Any,
                     ends_at: Any = None, assignee: Any = None, notes: str | None = None,
                     ip: str = "") -> dict[str, Any]:
    """Move a scheduled visit (time, representative, instructions); the agenda entry moves
    with it. Returns the visit row after the change."""
    visit, case = await _visit_for(rapport, actor, visit_id)
    errors: dict[str, str] = {}
    if visit["status"] != "scheduled":
        errors["status"] = f"the visit is {visit['status']}: only a scheduled visit can move"
    allowed = {u["id"] for u in await assignable_users(rapport)}
    cleaned = _clean({"assignee": visit["assignee"] if assignee in (None, "") else assignee,
                      "starts_at": starts_at, "ends_at": ends_at,
                      "notes": visit["notes"] if notes is None else notes}, allowed, errors)
    if errors:
        raise VisitError(errors)
    now = datetime.now(UTC)
    interaction = None
    async with Visit._meta.db.transaction():
        row = await records.update(actor, Visit, visit_id, {
            "assignee": cleaned["assignee"], "starts_at": cleaned["starts_at"],
            "ends_at": cleaned["ends_at"], "notes": cleaned["notes"]}, ip=ip,
            summary=f"visit for case {case['number']} rescheduled")
        if visit["interaction_id"] and await Interaction.exists().where(
                Interaction.id == visit["interaction_id"]).run():
            interaction = await records.update(
                actor, Interaction, visit["interaction_id"],
                {**_interaction_values(case, cleaned), "updated_at": now}, ip=ip,
                summary=f"visit for case {case['number']} rescheduled")
        await CaseEvent.insert(CaseEvent(
            case=case["id"], kind="visit",
            old_value=f"{visit['starts_at']:%Y-%m-%d %H:%M} UTC",
            new_value=f"rescheduled {cleaned['starts_at']:%Y-%m-%d %H:%M} UTC",
            user=actor.id if actor else None, at=now)).run()
    if interaction is not None:
        await _publish(rapport, EVENT_UPDATED, event_payload(interaction), actor)
    return row


async def cancel(rapport, actor: Actor | None, visit_id: int, *, ip: str = ""
                 ) -> dict[str, Any]:
    """Cancel a scheduled visit. Its planned interaction is deleted (audited), so the visit
    leaves the agenda and the timeline; the visit row stays, marked cancelled."""
    visit, case = await _visit_for(rapport, actor, visit_id)
    if visit["status"] != "scheduled":
        raise VisitError({"status": f"the visit is {visit['status']} already"})
    now = datetime.now(UTC)
    async with Visit._meta.db.transaction():
        if visit["interaction_id"] and await Interaction.exists().where(
                Interaction.id == visit["interaction_id"]).run():
            await records.delete(actor, Interaction, visit["interaction_id"], ip=ip,
                                 summary=f"visit for case {case['number']} cancelled")
        row = await records.update(actor, Visit, visit_id, {
            "status": "cancelled", "interaction_id": None}, ip=ip,
            summary=f"visit for case {case['number']} cancelled")
        await CaseEvent.insert(CaseEvent(
            case=case["id"], kind="visit",
            old_value=f"{visit['starts_at']:%Y-%m-%d %H:%M} UTC", new_value="cancelled",
            user=actor.id if actor else None, at=now)).run()
    return row


# --- the case's visits with their reports ----------------------------------------------------


async def case_visits(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's visits (newest first), each with ``reports``: the field app's visit
    reports (notes, outcome, photos, signature, check-in) matched as the module says.
    A bounded number of queries, whatever the number of visits."""
    from pwa.tables import FieldAttachment, VisitCheckIn

    visits = await Visit.select(
        Visit.id, Visit.assignee, Visit.assignee.name, Visit.starts_at, Visit.ends_at,
        Visit.status, Visit.interaction_id, Visit.notes,
    ).where(Visit.case == case["id"]).order_by(Visit.starts_at, ascending=False).limit(
        CASE_VISITS_LIMIT).run()
    for visit in visits:
        visit["reports"] = []
        visit["reported"] = False  # also when every visit is cancelled (returned just below)
        visit["assignee_name"] = visit.pop("assignee.name")
    live = [v for v in visits if v["status"] != "cancelled"]
    if not live:
        return visits
    lowest = min(v["starts_at"] for v in live) - REPORT_BEFORE
    highest = max(v["ends_at"] or v["starts_at"] for v in live) + REPORT_AFTER
    planned = {v["interaction_id"] for v in live if v["interaction_id"]}
    rows = await Interaction.select(
        Interaction.id, Interaction.user, Interaction.subject, Interaction.notes,
        Interaction.outcome, Interaction.occurred_at, Interaction.plugin,
    ).where(
        (Interaction.customer == case["customer"]) & (Interaction.channel == "visit")
        & Interaction.user.is_in(sorted({v["assignee"] for v in live}))
        & (Interaction.occurred_at >= lowest) & (Interaction.occurred_at <= highest)
    ).order_by(Interaction.occurred_at).limit(200).run()
    reports: list[dict[str, Any]] = []
    for row in rows:
        if row["id"] in planned:
            continue  # the planned entry itself, not a report
        if row["plugin"] == "service":
            continue  # another case's planned visit
        candidates = [v for v in live if v["assignee"] == row["user"]
                      and v["starts_at"] - REPORT_BEFORE <= row["occurred_at"]
                      <= (v["ends_at"] or v["starts_at"]) + REPORT_AFTER]
        if not candidates:
            continue
        nearest = min(candidates, key=lambda v: abs(v["starts_at"] - row["occurred_at"]))
        row.update(photos=[], signature=None, check_in=None)
        nearest["reports"].append(row)
        reports.append(row)
    ids = [r["id"] for r in reports] + sorted(planned)
    if ids:
        by_id = {r["id"]: r for r in reports}
        files = await FieldAttachment.select(
            FieldAttachment.id, FieldAttachment.interaction_id, FieldAttachment.kind,
            FieldAttachment.created_at,
        ).where(FieldAttachment.interaction_id.is_in(ids)).order_by(FieldAttachment.id).run()
        check_ins = await VisitCheckIn.select(
            VisitCheckIn.interaction_id, VisitCheckIn.checked_in_at, VisitCheckIn.latitude,
            VisitCheckIn.longitude, VisitCheckIn.accuracy_m,
        ).where(VisitCheckIn.interaction_id.is_in(ids)).run()
        for visit in live:
            # Files attached to the planned entry itself show as a report of their own.
            if visit["interaction_id"] in {f["interaction_id"] for f in files}:
                entry = {"id": visit["interaction_id"], "notes": "", "outcome": "",
                         "occurred_at": visit["starts_at"], "photos": [], "signature": None,
                         "check_in": None}
                by_id[visit["interaction_id"]] = entry
                visit["reports"].append(entry)
        for file in files:
            report = by_id.get(file["interaction_id"])
            if report is None:
                continue
            if file["kind"] == "signature":
                report["signature"] = file
            else:
                report["photos"].append(file)
        for check_in in check_ins:
            if check_in["interaction_id"] in by_id:
                by_id[check_in["interaction_id"]]["check_in"] = check_in
    for visit in visits:
        visit["reported"] = bool(visit["reports"])
    return visits


async def on_interaction_created(rapport, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A visit interaction recorded by a representative (the field app's visit report) marks
    their nearest scheduled visit of that customer within the report window ``done``. Returns
    the visit updated, if any. Runs after the report's transaction has committed."""
    if (payload.get("channel") != "visit" or payload.get("plugin") == "service"
            or not payload.get("user_id") or not payload.get("customer_id")):
        return None
    report = await Interaction.select(Interaction.occurred_at).where(
        Interaction.id == payload["id"]).first().run()
    if report is None:
        return None
    at = report["occurred_at"]
    candidates = await Visit.select(
        Visit.id, Visit.case, Visit.starts_at, Visit.ends_at,
    ).where(
        (Visit.assignee == payload["user_id"]) & (Visit.status == "scheduled")
        & (Visit.case.customer == payload["customer_id"])
        & (Visit.starts_at >= at - REPORT_AFTER - MAX_LENGTH)
        & (Visit.starts_at <= at + REPORT_BEFORE)
    ).limit(20).run()
    candidates = [v for v in candidates
                  if v["starts_at"] - REPORT_BEFORE <= at
                  <= (v["ends_at"] or v["starts_at"]) + REPORT_AFTER]
    if not candidates:
        return None
    nearest = min(candidates, key=lambda v: abs(v["starts_at"] - at))
    async with Visit._meta.db.transaction():
        row = await records.update(None, Visit, nearest["id"], {"status": "done"},
                                   summary="visit report received from the field app")
        await CaseEvent.insert(CaseEvent(
            case=nearest["case"], kind="visit", old_value="scheduled", new_value="reported",
            user=payload["user_id"], at=datetime.now(UTC))).run()
    return row


# --- the field app's agenda ------------------------------------------------------------------


async def agenda_items(rapport, user: Actor, day: date) -> list[AgendaItem]:
    """Open cases assigned to the user whose resolution is due that day (row-scoped), except
    those with a visit that day: that visit already shows as a core visit."""
    if user is None or user.kind != "staff" or not user.can("service.case.view"):
        return []
    from pwa.field import day_bounds

    start, end = day_bounds(day)
    query = Case.select(
        Case.id, Case.number, Case.subject, Case.priority, Case.customer, Case.customer.name,
        Case.resolution_due,
    ).where((Case.owner == user.id) & (Case.is_open == True)  # noqa: E712
            & (Case.resolution_due >= start) & (Case.resolution_due < end))
    rows = await scoped(query, rapport, user, "service.case.view", Case).order_by(
        Case.resolution_due).limit(100).run()
    if not rows:
        return []
    visiting = {r["case"] for r in await Visit.select(Visit.case).where(
        Visit.case.is_in([r["id"] for r in rows]) & (Visit.assignee == user.id)
        & (Visit.status == "scheduled") & (Visit.starts_at >= start)
        & (Visit.starts_at < end)).run()}
    return [AgendaItem(
        title=f"Case due: {row['number']} {row['subject']}"[:200], kind="case",
        url=f"/service/cases/{row['id']}", starts_at=row["resolution_due"],
        customer_id=row["customer"],
        detail=f"{row['priority'].capitalize()} priority · {row['customer.name']}", order=40,
    ) for row in rows if row["id"] not in visiting]


# --- web -------------------------------------------------------------------------------------



async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _visible_case(request: Request, case_id: int, permission: str) -> dict[str, Any]:
    try:
        return await _case_for(request.app.state.rapport, current_actor(request), case_id,
                               permission)
    except LookupError:
        raise NotFoundException("no such case") from None


async def _form_page(request: Request, case: dict[str, Any], *, visit: dict | None = None,
                     values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                     status: int = 200) -> Template:
    rapport = request.app.state.rapport
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == case["customer"]).first().run()
    if values is None:
        zone = zone_of(current_actor(request))  # typed and shown in the user's time zone
        values = ({"assignee": str(visit["assignee"]),
                   "starts_at": format_local(visit["starts_at"], zone, "%Y-%m-%dT%H:%M"),
                   "ends_at": format_local(visit["ends_at"], zone, "%Y-%m-%dT%H:%M"),
                   "notes": visit["notes"]} if visit
                  else {"assignee": "", "starts_at": "", "ends_at": "", "notes": ""})
    return Template("service/visits/form.html", status_code=status, context={
        "case": case, "customer": customer, "visit": visit, "values": values,
        "errors": errors or {}, "assignees": await assignable_users(rapport),
    })


@get("/service/cases/{case_id:int}/visits", opt={"permission": "service.case.view"},
     include_in_schema=False)
async def case_visits_fragment(request: Request, case_id: FromPath[int]) -> Template:
    """The case's visits and their reports: a fragment for the case page, or a whole page."""
    case = await _visible_case(request, case_id, "service.case.view")
    actor = current_actor(request)
    can_edit = bool(await scoped(Case.select(Case.id).where(Case.id == case_id),
                                 request.app.state.rapport, actor, "service.case.edit", Case
                                 ).first().run()) if actor.can("service.case.edit") else False
    # htmx swaps the bare list into the case page; a plain link (no JavaScript) gets a page.
    template = ("service/visits/_list.html" if request.headers.get("hx-request") == "true"
                else "service/visits/page.html")
    return Template(template, context={
        "case": case, "visits": await case_visits(case), "can_edit": can_edit,
        "show_images": actor.can("core.field.view"),
    })


@get("/service/cases/{case_id:int}/visits/new", opt={"permission": "service.case.edit"},
     include_in_schema=False)
async def new_visit_page(request: Request, case_id: FromPath[int]) -> Template:
    case = await _visible_case(request, case_id, "service.case.edit")
    return await _form_page(request, case)


@post("/service/cases/{case_id:int}/visits", opt={"permission": "service.case.edit"},
      include_in_schema=False)
async def create_visit(request: Request, case_id: FromPath[int]) -> Response:
    case = await _visible_case(request, case_id, "service.case.edit")
    data = await _form(request)
    try:
        zone = zone_of(current_actor(request))
        await schedule(request.app.state.rapport, current_actor(request), case_id,
                       assignee=data.get("assignee"),
                       starts_at=parse_local(data.get("starts_at"), zone),
                       ends_at=parse_local(data.get("ends_at"), zone),
                       notes=data.get("notes", ""), ip=client_ip(request))
    except VisitError as exc:
        return await _form_page(request, case, values=data, errors=exc.errors, status=400)
    except LookupError:
        raise NotFoundException("no such case") from None
    return Redirect(f"/service/cases/{case_id}", status_code=303)


async def _visible_visit(request: Request, visit_id: int) -> tuple[dict, dict]:
    try:
        return await _visit_for(request.app.state.rapport, current_actor(request), visit_id)
    except LookupError:
        raise NotFoundException("no such visit") from None


@get("/service/visits/{visit_id:int}/edit", opt={"permission": "service.case.edit"},
     include_in_schema=False)
async def edit_visit_page(request: Request, visit_id: FromPath[int]) -> Template:
    visit, case = await _visible_visit(request, visit_id)
    return await _form_page(request, case, visit=visit)


@post("/service/visits/{visit_id:int}", opt={"permission": "service.case.edit"},
      include_in_schema=False)
async def update_visit(request: Request, visit_id: FromPath[int]) -> Response:
    visit, case = await _visible_visit(request, visit_id)
    data = await _form(request)
    try:
        zone = zone_of(current_actor(request))
        await reschedule(request.app.state.rapport, current_actor(request), visit_id,
                         starts_at=parse_local(data.get("starts_at"), zone),
                         ends_at=parse_local(data.get("ends_at"), zone),
                         assignee=data.get("assignee"), notes=data.get("notes", ""),
                         ip=client_ip(request))
    except VisitError as exc:
        return await _form_page(request, case, visit=visit, values=data, errors=exc.errors,
                                status=400)
    return Redirect(f"/service/cases/{case['id']}", status_code=303)


@post("/service/visits/{visit_id:int}/cancel", opt={"permission": "service.case.edit"},
      include_in_schema=False)
async def cancel_visit(request: Request, visit_id: FromPath[int]) -> Response:
    visit, case = await _visible_visit(request, visit_id)
    try:
        await cancel(request.app.state.rapport, current_actor(request), visit_id,
                     ip=client_ip(request))
    except VisitError as exc:
        return Response(exc.message, status_code=409, media_type="text/plain")
    if request.headers.get("hx-request"):
        actor = current_actor(request)
        return Template("service/visits/_list.html", context={
            "case": case, "visits": await case_visits(case), "can_edit": True,
            "show_images": actor.can("core.field.view")})
    return Redirect(f"/service/cases/{case['id']}", status_code=303)


ROUTES = [case_visits_fragment, new_visit_page, create_visit, edit_visit_page, update_visit,
          cancel_visit]
