"""Staff pages: log an interaction, the interactions list, "my day", the calendar feed and
the contact-policy settings."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Response, Stream, Template

from core import bulk
from core.audit import client_ip
from core.customers import listing as customer_listing
from core.customers.tables import Customer
from core.identity.tables import User
from core.interactions import calendar, listing, policy, service
from core.interactions.export import csv_export
from core.interactions.service import InteractionError, InteractionNotFound
from core.interactions.tables import CHANNELS, DIRECTIONS, Interaction
from core.local_time import format_local, parse_local, zone_of
from core.permissions import current_actor, scoped

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
FORM_FIELDS = ("channel", "direction", "subject", "notes", "purpose", "outcome", "occurred_at",
               "duration_minutes", "followup_due", "followup_assignee", "followup_note")



def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _staff_choices() -> list[dict[str, Any]]:
    return await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(500).run()


async def _visible_customer(request: Request, customer_id: Any) -> dict[str, Any] | None:
    try:
        cid = int(customer_id)
    except (TypeError, ValueError):
        return None
    query = scoped(Customer.select(Customer.id, Customer.name, Customer.kind).where(
        Customer.id == cid), request.app.state.rapport, current_actor(request),
        "core.customer.view", Customer)
    return await query.first().run()


# --- logging an interaction ------------------------------------------------------------------


def _form_context(values: dict[str, Any], errors: dict[str, str], customer, users,
                  interaction=None) -> dict[str, Any]:
    return {"values": values, "errors": errors, "customer": customer, "users": users,
            "channels": CHANNELS, "directions": DIRECTIONS, "interaction": interaction}


@get("/interactions/new", opt={"permission": "core.interaction.create"}, include_in_schema=False)
async def new_interaction(request: Request) -> Template:
    customer = await _visible_customer(request, request.query_params.get("customer"))
    values = {"channel": request.query_params.get("channel") or "call", "direction": "outbound",
              "customer": customer["id"] if customer else ""}
    template = "interactions/_form.html" if _is_htmx(request) else "interactions/new.html"
    return Template(template, context=_form_context(values, {}, customer,
                                                    await _staff_choices()))


def _minutes_to_seconds(raw: str) -> int | str | None:
    """Minutes typed in the form as seconds; unreadable text goes on to the service, which
    names the field (renamed back to ``duration_minutes`` for the form)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return round(float(raw.replace(",", ".")) * 60)
    except ValueError:
        return raw


CONTENT_FIELDS = ("subject", "notes", "outcome")
NOTHING_SAID = "Enter a subject or notes: what was it about?"


def _says_nothing(data: dict[str, Any]) -> bool:
    """A form with neither subject, notes nor outcome would log an empty "(no subject)"."""
    return not any(str(data.get(name) or "").strip() for name in CONTENT_FIELDS)


def _form_errors(errors: dict[str, str]) -> dict[str, str]:
    renamed = {"customer_id": "customer", "duration_seconds": "duration_minutes"}
    result = {renamed.get(k, k): v for k, v in errors.items()}
    if "duration_minutes" in result:
        result["duration_minutes"] = "must be a number of minutes (up to a week)"
    return result


@post("/interactions/new", opt={"permission": "core.interaction.create"},
      include_in_schema=False)
async def create_interaction(request: Request,
                             data: Annotated[dict[str, str], FORM]) -> Response:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer = await _visible_customer(request, data.get("customer"))
    seconds = _minutes_to_seconds(data.get("duration_minutes", ""))
    try:
        if _says_nothing(data):
            raise InteractionError({"subject": NOTHING_SAID, **(
                {} if customer else {"customer": "Pick the customer from the list."})})
        row, _ = await service.record_interaction(
            rapport, actor, customer_id=customer["id"] if customer else data.get("customer"),
            channel=data.get("channel", ""), direction=data.get("direction", "none"),
            subject=data.get("subject", ""), notes=data.get("notes", ""),
            purpose=data.get("purpose", ""), outcome=data.get("outcome", ""),
            occurred_at=parse_local(data.get("occurred_at"), zone_of(actor)),
            duration_seconds=seconds,
            followup_due=parse_local(data.get("followup_due"), zone_of(actor)),
            followup_assignee=data.get("followup_assignee") or None,
            followup_note=data.get("followup_note", ""),
            client_id=data.get("client_id") or None, ip=client_ip(request))
    except InteractionError as exc:
        errors = _form_errors(exc.errors)
        if _is_htmx(request):  # htmx swaps only 2xx answers: errors come back as 200
            return Template("interactions/_form.html", context=_form_context(
                dict(data), errors, customer, await _staff_choices()))
        return Template("interactions/new.html", status_code=400, context=_form_context(
            dict(data), errors, customer, await _staff_choices()))
    if _is_htmx(request):
        # From the 360° page: a fresh form; the timeline refreshes on this trigger (and live).
        fresh = {"channel": row["channel"], "direction": row["direction"],
                 "customer": row["customer"]}
        context = {**_form_context(fresh, {}, customer, await _staff_choices()), "logged": True}
        return Template("interactions/_form.html", status_code=201, context=context,
                        headers={"HX-Trigger": "interaction-logged"})
    return Redirect(f"/customers/{row['customer']}", status_code=303)


@get("/interactions/customer-options", opt={"permission": "core.interaction.create"},
     include_in_schema=False)
async def customer_options(request: Request) -> Template:
    """Customers whose name starts with what was typed (for the standalone form's picker)."""
    typed = (request.query_params.get("customer_search") or "").strip()
    rows: list[dict[str, Any]] = []
    if len(typed) >= 2:
        query = Customer.select(Customer.id, Customer.name, Customer.kind).where(
            Customer.name.ilike(typed.replace("%", "").replace("_", "") + "%")).order_by(
            Customer.name).limit(15)
        rows = await scoped(query, request.app.state.rapport, current_actor(request),
                            "core.customer.view", Customer).run()
    return Template("interactions/_customer_options.html", context={"rows": rows})


# --- one interaction -------------------------------------------------------------------------


async def _one(request: Request, interaction_id: int, permission: str) -> dict[str, Any]:
    try:
        return await service.get_interaction(request.app.state.rapport, current_actor(request),
                                             interaction_id, permission)
    except InteractionNotFound:
        raise NotFoundException("No such interaction") from None


@get("/interactions/{interaction_id:int}", opt={"permission": "core.interaction.view"},
     include_in_schema=False)
async def show_interaction(request: Request, interaction_id: FromPath[int]) -> Template:
    query = scoped(Interaction.select(*listing.COLUMNS).where(Interaction.id == interaction_id),
                   request.app.state.rapport, current_actor(request), "core.interaction.view",
                   Interaction)
    row = await query.first().run()
    if row is None:
        raise NotFoundException("No such interaction")
    participants = (await service.participants_of([row["id"]]))[row["id"]]
    names = await Customer.select(Customer.id, Customer.name).where(
        Customer.id.is_in(participants or [0])).run()
    actor = current_actor(request)
    return Template("interactions/show.html", context={
        "row": row, "participants": names,
        "may_edit": actor.can("core.interaction.edit")})


@get("/interactions/{interaction_id:int}/edit", opt={"permission": "core.interaction.edit"},
     include_in_schema=False)
async def edit_interaction(request: Request, interaction_id: FromPath[int]) -> Template:
    row = await _one(request, interaction_id, "core.interaction.edit")
    values = {k: row.get(k) for k in FORM_FIELDS if k in row}
    values["duration_minutes"] = (round(row["duration_seconds"] / 60, 1)
                                  if row["duration_seconds"] else "")
    for name in ("occurred_at", "followup_due"):  # typed and shown in the user's zone
        values[name] = format_local(row[name], zone_of(current_actor(request)),
                                    "%Y-%m-%dT%H:%M")
    customer = await _visible_customer(request, row["customer"])
    return Template("interactions/edit.html", context=_form_context(
        values, {}, customer, await _staff_choices(), interaction=row))


@post("/interactions/{interaction_id:int}/edit", opt={"permission": "core.interaction.edit"},
      include_in_schema=False)
async def update_interaction(request: Request, interaction_id: FromPath[int],
                             data: Annotated[dict[str, str], FORM]) -> Response:
    row = await _one(request, interaction_id, "core.interaction.edit")
    changes: dict[str, Any] = {name: data.get(name, "") for name in
                               ("channel", "direction", "subject", "notes", "purpose",
                                "outcome", "followup_note")}
    zone = zone_of(current_actor(request))
    changes["occurred_at"] = parse_local(data.get("occurred_at"), zone)
    changes["duration_seconds"] = _minutes_to_seconds(data.get("duration_minutes", ""))
    changes["followup_due"] = parse_local(data.get("followup_due"), zone)
    changes["followup_assignee"] = data.get("followup_assignee") or None
    try:
        if _says_nothing(changes):
            raise InteractionError({"subject": NOTHING_SAID})
        await service.update_interaction(request.app.state.rapport, current_actor(request),
                                         interaction_id, changes, ip=client_ip(request))
    except InteractionError as exc:
        customer = await _visible_customer(request, row["customer"])
        return Template("interactions/edit.html", status_code=400, context=_form_context(
            dict(data), _form_errors(exc.errors), customer, await _staff_choices(),
            interaction=row))
    return Redirect(f"/interactions/{interaction_id}", status_code=303)


# --- the list --------------------------------------------------------------------------------


@get("/interactions", opt={"permission": "core.interaction.view"}, include_in_schema=False)
async def interactions_list(request: Request) -> Template:
    rapport = request.app.state.rapport
    params = request.query_params
    filters = listing.Filters.from_params(params)
    rows: list[dict[str, Any]] = []
    next_cursor = None
    total = ""
    if not filters.errors:
        try:
            rows, next_cursor = await listing.page(rapport, current_actor(request), filters,
                                                   after=params.get("after") or "")
            if not params.get("after"):  # "Load more" appends rows; the total is shown once
                count = len(rows) if next_cursor is None else await listing.count_upto(
                    rapport, current_actor(request), filters)
                total = customer_listing.total_text(count, "interaction", "interactions")
        except InteractionError as exc:
            filters.errors.update(exc.errors)
    kept = {k: v for k, v in params.items() if k not in ("after", "changed") and v}
    context = {"rows": rows, "next_cursor": next_cursor, "filters": filters, "total": total,
               "raw": dict(params), "query": urlencode(kept), "channels": CHANNELS,
               "directions": DIRECTIONS, "users": await _staff_choices(),
               "orders": listing.ORDERS, "more_url": "/interactions",
               "can_export": current_actor(request).can("core.interaction.export"),
               "can_bulk": current_actor(request).can("core.interaction.edit"),
               "bulk_actions": service.BULK_ACTIONS, "changed": params.get("changed")}
    if _is_htmx(request):
        template = ("interactions/_rows.html" if params.get("after")
                    else "interactions/_results.html")
        return Template(template, context=context)
    return Template("interactions/list.html", context=context)


@post("/interactions/bulk", opt={"permission": "core.interaction.view",
                                  "write_permission": "core.interaction.edit"},
      include_in_schema=False, status_code=303)
async def interactions_bulk(request: Request) -> Redirect | Template:
    """The list's bulk actions on follow-ups; back to the list (its filters kept) saying how
    many changed, or a page saying what to fix. Who may change which follow-up is the
    service's to say."""
    form = await request.form()
    back = form.get("back")
    try:
        ids = [int(i) for i in form.getall("ids")] if "ids" in form else []
        assignee = int(form["assignee"]) if form.get("assignee") else None
        action = form.get("action", "")
        changed = await service.bulk_followups(
            request.app.state.rapport, current_actor(request), action, ids,
            assignee=assignee if action == "assign_followups" else None, ip=client_ip(request))
    except (ValueError, InteractionError) as exc:
        field, message = (next(iter(exc.errors.items())) if isinstance(exc, InteractionError)
                          else ("ids", "is not a selection from the list"))
        return bulk.nothing_changed(f"{field}: {message}", bulk.back_url(back, "/interactions"))
    return bulk.back_to_list(back, "/interactions", changed=changed)


@get("/interactions/export.csv", opt={"permission": "core.interaction.export"},
     include_in_schema=False)
async def interactions_export(request: Request) -> Stream:
    """Every interaction the list would show with these filters, as CSV (streamed)."""
    params = request.query_params
    filters = listing.Filters.from_params(params)
    if filters.errors:
        field, message = next(iter(filters.errors.items()))
        raise ValidationException(f"{field}: {message}")
    kept = {k: v for k, v in params.items() if k != "after" and v}
    return Stream(
        csv_export(request.app.state.rapport, current_actor(request), filters,
                   described=", ".join(f"{k}={v}" for k, v in kept.items()),
                   ip=client_ip(request)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="interactions.csv"'})


# --- my day ----------------------------------------------------------------------------------


@get("/my-day", opt={"permission": "core.interaction.view"}, include_in_schema=False)
async def my_day(request: Request) -> Template:
    actor = current_actor(request)
    day = await service.my_followups(actor.id)
    template = "interactions/_my_day.html" if _is_htmx(request) else "interactions/my_day.html"
    return Template(template, context={"day": day})


@post("/follow-ups/{interaction_id:int}/done", opt={"permission": "core.interaction.view",
                                                   "write_permission": "core.interaction.edit"},
      include_in_schema=False)
async def followup_done(request: Request, interaction_id: FromPath[int]) -> Response:
    """Mark done: the assignee always may; others need edit rights on the interaction."""
    try:
        await service.complete_followup(request.app.state.rapport, current_actor(request),
                                        interaction_id, ip=client_ip(request))
    except (InteractionNotFound, InteractionError):
        raise NotFoundException("No such follow-up") from None
    if _is_htmx(request):
        return Template("interactions/_followup_done.html", context={"id": interaction_id})
    return Redirect("/my-day", status_code=303)


# --- the calendar feed -----------------------------------------------------------------------


def _feed_url(request: Request, token: str) -> str:
    base = request.app.state.rapport.settings.base_url
    return f"{base}/calendar/{token}.ics"


@get("/calendar", opt={"permission": "authenticated"}, include_in_schema=False)
async def calendar_page(request: Request) -> Template:
    rapport = request.app.state.rapport
    token = await calendar.feed_token(rapport.settings.secret_key, current_actor(request).id)
    return Template("interactions/calendar.html", context={
        "url": _feed_url(request, token), "regenerated": request.query_params.get("new")})


@post("/calendar/regenerate", opt={"permission": "authenticated"}, include_in_schema=False)
async def calendar_regenerate(request: Request) -> Redirect:
    await calendar.regenerate(current_actor(request).id)
    return Redirect("/calendar?new=1", status_code=303)


@get("/calendar/{token:str}", opt={"public": True}, include_in_schema=False)
async def calendar_feed(request: Request, token: FromPath[str]) -> Response:
    """The subscribed feed; the token in the URL is the only credential."""
    rapport = request.app.state.rapport
    if not token.endswith(".ics"):
        raise NotFoundException("No such calendar")
    user_id = await calendar.user_for_token(rapport.settings.secret_key, token[:-4])
    if user_id is None or not await User.exists().where(
            (User.id == user_id) & (User.is_active == True)).run():  # noqa: E712
        raise NotFoundException("No such calendar")
    body = await calendar.feed(user_id, instance_name=rapport.settings.instance_name,
                               base_url=rapport.settings.base_url)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})


# --- contact policy settings -----------------------------------------------------------------


@get("/admin/contact-policy", opt={"permission": "core.settings.manage"}, include_in_schema=False)
async def policy_page(request: Request) -> Template:
    rule = await policy.fatigue_rule()
    return Template("interactions/contact_policy.html", context={
        "values": {"max_outbound": rule.max_outbound, "period_days": rule.period_days},
        "errors": {}, "saved": request.query_params.get("saved")})


@post("/admin/contact-policy", opt={"permission": "core.settings.manage"},
      include_in_schema=False)
async def policy_save(request: Request, data: Annotated[dict[str, str], FORM]) -> Response:
    try:
        await policy.set_fatigue_rule(current_actor(request), data.get("max_outbound", ""),
                                      data.get("period_days", ""), ip=client_ip(request))
    except policy.PolicyError as exc:
        return Template("interactions/contact_policy.html", status_code=400, context={
            "values": dict(data), "errors": exc.errors, "saved": None})
    return Redirect("/admin/contact-policy?saved=1", status_code=303)


ROUTES = [new_interaction, create_interaction, customer_options, show_interaction,
          edit_interaction, update_interaction, interactions_list, interactions_bulk,
          interactions_export, my_day, followup_done, calendar_page, calendar_regenerate,
          calendar_feed, policy_page, policy_save]
