"""Staff pages of opportunities: the list, creating one, a deal's page and changing its
details (name, amount and currency, expected close, owner, contact), and the customer picker
the deal and quote forms share.

The board (moving deals between stages) stays with the pipeline pages in ``controllers``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.money import Money
from core.permissions import current_actor, scoped
from plugins.sales import leads as lead_service
from plugins.sales import pipeline as deals
from plugins.sales.controllers import (
    _card_context,
    customer_names,
    form_data,
    perm,
    settings_of,
    visible_one,
)
from plugins.sales.tables import Opportunity, Pipeline, Quote, Stage, StageChange

PAGE = 50


async def record_actions(request: Request, record_type: str,
                         record: dict[str, Any]) -> list[Any]:
    """Buttons other plugins (and this one) offer on a record, those the user may use."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    found = await rapport.acollect("record_actions", rapport=rapport, record_type=record_type,
                                   record=record, user=actor)
    allowed = [a for a in found if a.permission is None or actor.can(a.permission)]
    return sorted(allowed, key=lambda a: (a.order, a.label))


# --- The customer picker ---------------------------------------------------------------------


async def visible_customer(request: Request, raw: Any, *, kind: str | None = None
                           ) -> dict[str, Any] | None:
    """The customer a form names (by id), if the user may see it; None otherwise."""
    text = str(raw or "").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    query = Customer.select(Customer.id, Customer.name, Customer.kind).where(
        Customer.id == int(text))
    if kind:
        query = query.where(Customer.kind == kind)
    return await scoped(query, request.app.state.rapport, current_actor(request),
                        "core.customer.view", Customer).first().run()


@get("/sales/customer-options", opt=perm("core.customer.view"), include_in_schema=False)
async def customer_options(request: Request, field: FromQuery[str] = "customer") -> Template:
    """Customers whose name starts with what was typed, within the user's scope: the picker of
    the deal and quote forms (``field`` = customer, or contact for people only)."""
    field = field if field in ("customer", "contact") else "customer"
    typed = (request.query_params.get(f"{field}_search") or "").strip()
    rows: list[dict[str, Any]] = []
    if len(typed) >= 2:
        pattern = typed.replace("%", "").replace("_", "") + "%"
        query = Customer.select(Customer.id, Customer.name, Customer.kind).where(
            Customer.name.ilike(pattern))
        if field == "contact":
            query = query.where(Customer.kind == "contact")
        rows = await scoped(query.order_by(Customer.name).limit(15), request.app.state.rapport,
                            current_actor(request), "core.customer.view", Customer).run()
    return Template("sales/_customer_choices.html", context={"rows": rows, "field": field,
                                                            "typed": typed})


# --- The list and creating a deal ------------------------------------------------------------


@get("/sales/opportunities", opt=perm("sales.opportunity.view"))
async def opportunity_list(request: Request, status: FromQuery[str] = "open",
                           after: FromQuery[int | None] = None,
                           pipeline: FromQuery[int | None] = None,
                           stage: FromQuery[int | None] = None) -> Template:
    rapport = request.app.state.rapport
    query = scoped(Opportunity.select(), rapport, current_actor(request),
                   "sales.opportunity.view", Opportunity)
    if status in ("open", "won", "lost"):
        query = query.where(Opportunity.status == status)
    if pipeline:
        query = query.where(Opportunity.pipeline == pipeline)
    if stage:
        query = query.where(Opportunity.stage == stage)
    if after:
        query = query.where(Opportunity.id < after)
    rows = await query.order_by(Opportunity.id, ascending=False).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    stages = {s["id"]: s for s in await Stage.select().where(
        Stage.id.is_in(sorted({r["stage"] for r in rows}) or [0])).run()}
    pipelines = await Pipeline.select(Pipeline.id, Pipeline.name).order_by(Pipeline.name).limit(
        100).run()
    context = await _card_context(request, rows)
    return Template("sales/opportunities.html", context={
        "deals": rows, "stages": stages, "status": status, "pipelines": pipelines,
        "pipeline": pipeline, "stage": stage,
        "next_after": rows[-1]["id"] if more else None, **context})


async def _opportunity_form(request: Request, values: dict[str, Any], errors: dict[str, str],
                            status: int = 200) -> Template:
    customer = await visible_customer(request, values.get("customer"))
    return Template("sales/opportunity_form.html", status_code=status,
                    context={"values": values, "errors": errors, "customer": customer})


@get("/sales/opportunities/new", opt=perm("sales.opportunity.create"))
async def opportunity_new(request: Request, customer: FromQuery[int | None] = None) -> Template:
    return await _opportunity_form(request, {
        "customer": customer or "", "currency": settings_of(request).default_currency}, {})


@post("/sales/opportunities", opt=perm("sales.opportunity.create"), status_code=303)
async def opportunity_create(request: Request) -> Response:
    data = await form_data(request)
    actor = current_actor(request)
    rapport = request.app.state.rapport
    values = dict(data)
    values["customer"] = str(data.get("customer") or data.get("customer_number") or "").strip()
    customer = None
    if values["customer"]:
        customer = await visible_customer(request, values["customer"])
        if customer is None:
            return await _opportunity_form(request, values, {"customer": "no such customer"},
                                           status=400)
    try:
        row = await deals.create_opportunity(rapport, actor, {
            **values, "customer": customer["id"] if customer else None, "owner": actor.id},
            ip=client_ip(request))
    except deals.OpportunityError as exc:
        return await _opportunity_form(request, values, {exc.field: exc.message}, status=400)
    return Redirect(f"/sales/opportunities/{row['id']}", status_code=303)


# --- A deal ----------------------------------------------------------------------------------


@get("/sales/opportunities/{opportunity_id:int}", opt=perm("sales.opportunity.view"))
async def opportunity_detail(request: Request, opportunity_id: FromPath[int]) -> Template:
    deal = await visible_one(request, Opportunity, "sales.opportunity.view", opportunity_id)
    return await opportunity_page(request, deal)


async def opportunity_page(request: Request, deal: dict[str, Any],
                           errors: dict[str, str] | None = None,
                           values: dict[str, str] | None = None, status: int = 200) -> Template:
    """The deal page; forms on it re-render it with ``errors`` (by field) when refused."""
    from plugins.sales import deals_ui

    opportunity_id = deal["id"]
    stages = await deals.stages_of(deal["pipeline"])
    history = await StageChange.select().where(StageChange.opportunity == opportunity_id).order_by(
        StageChange.changed_at).order_by(StageChange.id).limit(500).run()
    names = {s["id"]: s["name"] for s in stages}
    # Stage history can name stages of a pipeline the deal was moved out of.
    missing = {h[k] for h in history for k in ("from_stage", "to_stage")} - set(names) - {None}
    if missing:
        names |= {s["id"]: s["name"] for s in await Stage.select(Stage.id, Stage.name).where(
            Stage.id.is_in(sorted(missing))).run()}
    quotes = await Quote.select(Quote.id, Quote.number, Quote.version, Quote.status,
                                Quote.total_amount, Quote.currency).where(
        Quote.opportunity == opportunity_id).order_by(Quote.id, ascending=False).limit(50).run()
    context = await _card_context(request, [deal])
    users = await lead_service.users_by_id({h["user"] for h in history})
    contact = await customer_names({deal["contact"]}) if deal["contact"] else {}
    return Template("sales/opportunity_detail.html", status_code=status, context={
        "deal": deal, "stages": stages, "stage_names": names, "history": history,
        "quotes": quotes, "history_users": users, **context,
        "contact_name": contact.get(deal["contact"], ""),
        "can_edit": current_actor(request).can("sales.opportunity.edit"),
        "actions": await record_actions(request, "sales.opportunity", deal),
        **await deals_ui.products_context(deal, errors or {}, values or {}),
        "pipelines": await deals_ui.pipeline_choices(),
    })


# --- Changing a deal's details ---------------------------------------------------------------


def _edit_values(deal: dict[str, Any]) -> dict[str, Any]:
    amount = Money(Decimal(str(deal["amount_amount"])), deal["amount_currency"]).rounded()
    return {"name": deal["name"], "amount": str(amount.amount),
            "currency": deal["amount_currency"],
            "expected_close": deal["expected_close"].isoformat() if deal["expected_close"]
            else "", "owner": str(deal["owner"] or ""), "contact": str(deal["contact"] or "")}


async def _edit_form(request: Request, deal: dict[str, Any], values: dict[str, Any],
                     errors: dict[str, str], status: int = 200) -> Template:
    owners = await deals.assignable_users(current_actor(request))
    if deal["owner"] and deal["owner"] not in {u["id"] for u in owners}:
        # The current owner stays choosable (keeping them is no assignment).
        current = await lead_service.users_by_id({deal["owner"]})
        owners = [{"id": deal["owner"], "name": current.get(deal["owner"], "")}] + owners
    contact = await visible_customer(request, values.get("contact"))
    return Template("sales/opportunity_edit.html", status_code=status, context={
        "deal": deal, "values": values, "errors": errors, "owners": owners,
        "contact": contact})


@get("/sales/opportunities/{opportunity_id:int}/edit", opt=perm("sales.opportunity.edit"))
async def opportunity_edit(request: Request, opportunity_id: FromPath[int]) -> Template:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    return await _edit_form(request, deal, _edit_values(deal), {})


@post("/sales/opportunities/{opportunity_id:int}/edit", opt=perm("sales.opportunity.edit"),
      status_code=303)
async def opportunity_save(request: Request, opportunity_id: FromPath[int]) -> Response:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    data = await form_data(request)
    # Fields the form did not send stay as they are.
    values = {k: str(data[k]) for k in deals.EDITABLE if k in data and k != "contact"}
    picked = str(data.get("contact") or data.get("contact_number") or "").strip()
    if picked or data.get("contact_clear") == "on":
        values["contact"] = "" if data.get("contact_clear") == "on" else picked
    if values.get("contact") and values["contact"] != str(deal["contact"] or "") and \
            await visible_customer(request, values["contact"], kind="contact") is None:
        return await _edit_form(request, deal, {**_edit_values(deal), **values},
                                {"contact": "choose a contact person you can see"}, status=400)
    try:
        await deals.update_opportunity(request.app.state.rapport, current_actor(request), deal,
                                       values, ip=client_ip(request))
    except deals.OpportunityError as exc:
        return await _edit_form(request, deal, {**_edit_values(deal), **values},
                                {exc.field: exc.message}, status=400)
    return Redirect(f"/sales/opportunities/{opportunity_id}", status_code=303)


ROUTES = [customer_options, opportunity_list, opportunity_new, opportunity_create,
          opportunity_detail, opportunity_edit, opportunity_save]
