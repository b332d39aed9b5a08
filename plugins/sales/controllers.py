"""Staff pages of the sales plugin: leads, rules, the pipeline board and products (deals
and quotes have their own modules: ``opportunities_web``, ``quotes_web``).

Every query that lists or opens a record goes through ``core.permissions.scoped``; a record
outside the user's scope answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core import records
from core.audit import client_ip
from core.customers.tables import Customer
from core.identity.tables import Team, User
from core.money import Money
from core.permissions import current_actor, scoped
from plugins.sales import leads as lead_service
from plugins.sales import pipeline as deals
from plugins.sales import webform
from plugins.sales.tables import (
    LEAD_STATUSES,
    AssignmentRule,
    CallList,
    CallListEntry,
    Lead,
    LeadActivity,
    Opportunity,
    Pipeline,
    PriceBook,
    Product,
    ProductCategory,
    ProductPrice,
    Quote,
    RelatedProduct,
    ScoringRule,
    Stage,
)

PAGE = 50


def perm(name: str) -> dict[str, str]:
    return {"permission": name}



async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def settings_of(request: Request):
    return request.app.state.rapport.plugin_settings("sales")


async def visible_one(request: Request, table, permission: str, record_id: int) -> dict[str, Any]:
    """The record if the user may reach it with ``permission``; 404 otherwise (never 403)."""
    rapport = request.app.state.rapport
    query = scoped(table.select().where(table.id == record_id), rapport,
                   current_actor(request), permission, table)
    row = await query.first().run()
    if row is None:
        raise NotFoundException("not found")
    return row


async def customer_names(ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    rows = await Customer.select(Customer.id, Customer.name).where(
        Customer.id.is_in(sorted(ids))).run()
    return {r["id"]: r["name"] for r in rows}


async def staff_choices() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    users = await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(500).run()
    teams = await Team.select(Team.id, Team.name).order_by(Team.name).limit(500).run()
    return users, teams


# --- Leads -----------------------------------------------------------------------------------


@get("/sales/leads", opt=perm("sales.lead.view"), name="sales-leads")
async def lead_list(request: Request, status: FromQuery[str | None] = None,
                    after: FromQuery[int | None] = None) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    query = Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.company, Lead.email,
                        Lead.status, Lead.score, Lead.owner, Lead.source, Lead.created_at)
    query = scoped(query, rapport, actor, "sales.lead.view", Lead)
    if status:
        query = query.where(Lead.status == status)
    if after:
        query = query.where(Lead.id < after)
    rows = await query.order_by(Lead.id, ascending=False).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    owners = await lead_service.users_by_id({r["owner"] for r in rows})
    return Template("sales/leads.html", context={
        "leads": rows, "owners": owners, "status": status or "",
        "statuses": LEAD_STATUSES, "lead_name": lead_service.lead_name,
        "next_after": rows[-1]["id"] if more else None,
    })


def _lead_form(values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Template:
    return Template("sales/lead_form.html", status_code=status,
                    context={"values": values, "errors": errors,
                             "fields": lead_service.LEAD_FIELDS})


@get("/sales/leads/new", opt=perm("sales.lead.create"))
async def lead_new() -> Template:
    return _lead_form({}, {})


@post("/sales/leads", opt=perm("sales.lead.create"), status_code=303)
async def lead_create(request: Request) -> Response:
    data = await form_data(request)
    actor = current_actor(request)
    # A representative's own lead is theirs unless they may assign leads to others.
    owner = None if actor.can("sales.lead.assign") and data.get("use_rules") else actor.id
    try:
        row = await lead_service.capture_lead(request.app.state.rapport, actor, data,
                                              source="manual", ip=client_ip(request), owner=owner)
    except lead_service.LeadError as exc:
        return _lead_form(data, {exc.field: exc.message}, status=400)
    return Redirect(f"/sales/leads/{row['id']}", status_code=303)


@get("/sales/leads/{lead_id:int}", opt=perm("sales.lead.view"))
async def lead_detail(request: Request, lead_id: FromPath[int]) -> Template:
    lead = await visible_one(request, Lead, "sales.lead.view", lead_id)
    score, contributions = lead_service.score_lead(lead, await lead_service.active_rules())
    activities = await LeadActivity.select().where(LeadActivity.lead == lead_id).order_by(
        LeadActivity.occurred_at, ascending=False).limit(200).run()
    users, _teams = await staff_choices()
    owners = await lead_service.users_by_id({lead["owner"]} | {a["user"] for a in activities})
    return Template("sales/lead_detail.html", context={
        "lead": lead, "name": lead_service.lead_name(lead), "score": score,
        "contributions": contributions, "activities": activities, "users": users,
        "owners": owners, "actor": current_actor(request),
    })


@post("/sales/leads/{lead_id:int}/assign", opt=perm("sales.lead.assign"), status_code=303)
async def lead_assign(request: Request, lead_id: FromPath[int]) -> Response:
    await visible_one(request, Lead, "sales.lead.assign", lead_id)
    data = await form_data(request)
    owner = int(data["owner"]) if data.get("owner", "").isdigit() else None
    await lead_service.assign_lead(request.app.state.rapport, current_actor(request), lead_id,
                                   owner, ip=client_ip(request))
    return Redirect(f"/sales/leads/{lead_id}", status_code=303)


@post("/sales/leads/{lead_id:int}/activities", opt=perm("sales.lead.edit"), status_code=303)
async def lead_log_activity(request: Request, lead_id: FromPath[int]) -> Response:
    await visible_one(request, Lead, "sales.lead.edit", lead_id)
    data = await form_data(request)
    actor = current_actor(request)
    await records.create(actor, LeadActivity, {
        "lead": lead_id, "channel": data.get("channel", "call")[:16] or "call",
        "subject": data.get("subject", "")[:300], "notes": data.get("notes", "")[:5000],
        "occurred_at": datetime.now(UTC), "user": actor.id,
    }, ip=client_ip(request))
    await Lead.update({Lead.status: "working", Lead.updated_at: datetime.now(UTC)}).where(
        (Lead.id == lead_id) & (Lead.status == "new")).run()
    return Redirect(f"/sales/leads/{lead_id}", status_code=303)


@post("/sales/leads/{lead_id:int}/convert", opt=perm("sales.lead.edit"), status_code=303)
async def lead_convert(request: Request, lead_id: FromPath[int]) -> Response:
    await visible_one(request, Lead, "sales.lead.edit", lead_id)
    data = await form_data(request)
    try:
        result = await lead_service.convert_lead(
            request.app.state.rapport, current_actor(request), lead_id,
            opportunity_name=data.get("opportunity_name", ""), amount=data.get("amount", ""),
            currency=data.get("currency", ""),
            create_opportunity=data.get("create_opportunity", "on") == "on",
            ip=client_ip(request))
    except (lead_service.ConversionError, deals.OpportunityError) as exc:
        return Response(str(exc), status_code=400, media_type="text/plain")
    target = (f"/sales/opportunities/{result['opportunity_id']}" if result["opportunity_id"]
              else f"/sales/leads/{lead_id}")
    return Redirect(target, status_code=303)


@get("/sales/leads/import", opt=perm("sales.lead.create"))
async def lead_import_page() -> Template:
    return Template("sales/lead_import.html", context={"result": None,
                                                       "columns": list(lead_service.LEAD_FIELDS)})


@post("/sales/leads/import", opt=perm("sales.lead.create"))
async def lead_import(request: Request) -> Template:
    form = await request.form()
    upload = form.get("file")
    text = ""
    if upload is not None and not isinstance(upload, str):
        text = (await upload.read()).decode("utf-8", errors="replace")
    text = text or str(form.get("csv_text") or "")
    result = await lead_service.import_leads_csv(request.app.state.rapport,
                                                 current_actor(request), text,
                                                 ip=client_ip(request))
    return Template("sales/lead_import.html", status_code=200 if not result.errors else 400,
                    context={"result": result, "columns": list(lead_service.LEAD_FIELDS)})


# --- Rules (scoring and assignment) ----------------------------------------------------------


async def _rules_page(errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                      status: int = 200) -> Template:
    scoring = await ScoringRule.select().order_by(ScoringRule.position).order_by(
        ScoringRule.id).run()
    assignment = await AssignmentRule.select().order_by(AssignmentRule.position).order_by(
        AssignmentRule.id).run()
    users, teams = await staff_choices()
    return Template("sales/rules.html", status_code=status, context={
        "scoring": scoring, "assignment": assignment, "users": users, "teams": teams,
        "fields": lead_service.SCORABLE_FIELDS, "conditions": lead_service.CONDITIONS,
        "methods": lead_service.ASSIGNMENT_METHODS, "errors": errors or {},
        "values": values or {}, "describe": lead_service.describe_rule,
        "user_names": {u["id"]: u["name"] for u in users},
        "team_names": {t["id"]: t["name"] for t in teams},
    })


@get("/sales/rules", opt=perm("sales.rule.manage"))
async def rules_page() -> Template:
    return await _rules_page()


@post("/sales/rules/scoring", opt=perm("sales.rule.manage"))
async def scoring_rule_add(request: Request) -> Response:
    data = await form_data(request)
    try:
        values = lead_service.check_rule(data)
    except lead_service.LeadError as exc:
        return await _rules_page({f"scoring_{exc.field}": exc.message}, data, status=400)
    await records.create(current_actor(request), ScoringRule, values, ip=client_ip(request))
    return Redirect("/sales/rules", status_code=303)


@post("/sales/rules/scoring/{rule_id:int}/delete", opt=perm("sales.rule.manage"),
      status_code=303)
async def scoring_rule_delete(request: Request, rule_id: FromPath[int]) -> Response:
    try:
        await records.delete(current_actor(request), ScoringRule, rule_id, ip=client_ip(request))
    except records.RecordNotFound:
        raise NotFoundException("not found") from None
    return Redirect("/sales/rules", status_code=303)


@post("/sales/rules/assignment", opt=perm("sales.rule.manage"))
async def assignment_rule_add(request: Request) -> Response:
    data = await form_data(request)
    try:
        values = lead_service.check_assignment_rule(data)
    except lead_service.LeadError as exc:
        return await _rules_page({f"assignment_{exc.field}": exc.message}, data, status=400)
    count = await AssignmentRule.count().run()
    await records.create(current_actor(request), AssignmentRule, {**values, "position": count},
                         ip=client_ip(request))
    return Redirect("/sales/rules", status_code=303)


@post("/sales/rules/assignment/{rule_id:int}/delete", opt=perm("sales.rule.manage"),
      status_code=303)
async def assignment_rule_delete(request: Request, rule_id: FromPath[int]) -> Response:
    try:
        await records.delete(current_actor(request), AssignmentRule, rule_id,
                             ip=client_ip(request))
    except records.RecordNotFound:
        raise NotFoundException("not found") from None
    return Redirect("/sales/rules", status_code=303)


# --- The public web-to-lead form -------------------------------------------------------------


def _embeddable(response: Response, request: Request) -> Response:
    """Let the sites named in settings frame this page (core's CSP forbids framing otherwise)."""
    ancestors = settings_of(request).webform_frame_ancestors
    response.headers["content-security-policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"form-action 'self'; frame-ancestors {ancestors}; base-uri 'self'; object-src 'none'")
    # Core adds X-Frame-Options: DENY; browsers let CSP frame-ancestors override it.
    return response


def _webform_page(request: Request, values: dict[str, str], error: str | None,
                  field: str | None = None, status: int = 200, done: bool = False,
                  token: str | None = None) -> Response:
    secret = request.app.state.rapport.settings.secret_key
    page = Template("sales/web_to_lead.html", status_code=status, context={
        "values": values, "error": error, "field": field, "done": done,
        "token": token or webform.issue_token(secret), "honeypot": webform.HONEYPOT,
    })
    return _embeddable(page, request)


@get("/sales/web-to-lead", opt={"public": True}, include_in_schema=False)
async def web_to_lead_form(request: Request) -> Response:
    return _webform_page(request, {}, None)


@post("/sales/web-to-lead", opt={"public": True, "exclude_from_csrf": True},
      include_in_schema=False)
async def web_to_lead_submit(request: Request) -> Response:
    """No CSRF cookie here: a form framed on another site cannot carry one. The signed time
    token is what proves a person loaded the form first."""
    data = await form_data(request)
    settings = settings_of(request)
    ip = client_ip(request)
    rapport = request.app.state.rapport
    if await webform.too_many_from(rapport, ip, settings.webform_max_per_hour):
        return _webform_page(request, data, "Too many forms from your network; try again later.",
                             status=429)
    if data.get(webform.HONEYPOT):
        await webform.record_rejection(ip, "honeypot filled")
        # Bots get the thank-you page, so they learn nothing.
        return _webform_page(request, {}, None, done=True)
    problem = webform.token_problem(rapport.settings.secret_key, data.get("token", ""),
                                    settings.webform_min_seconds)
    if problem == webform.TOO_QUICK:
        # Keep the token served first: its age grows, so sending again passes.
        await webform.record_rejection(ip, "sent too quickly")
        return _webform_page(request, data, problem, status=400, token=data.get("token"))
    if problem:
        await webform.record_rejection(ip, problem)
        return _webform_page(request, data, problem, status=400)
    fields = {k: v for k, v in data.items() if k in lead_service.LEAD_FIELDS and k != "source"}
    try:
        await lead_service.capture_lead(rapport, None, fields, source="web form", ip=ip)
    except lead_service.LeadError as exc:
        return _webform_page(request, data, exc.message, field=exc.field, status=400)
    return _webform_page(request, {}, None, done=True)


# --- Opportunities and the board -------------------------------------------------------------


async def _card_context(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
    settings = settings_of(request)
    now = datetime.now(UTC)
    return {
        "customers": await customer_names({r["customer"] for r in rows}),
        "owners": await lead_service.users_by_id({r["owner"] for r in rows}),
        "stale": {r["id"] for r in rows if deals.is_stale(r, settings.stale_after_days, now)},
        "money": lambda r: Money.from_row(r, "amount"),
        "stale_after_days": settings.stale_after_days,
    }


BOARD_OPEN_CARDS = 30  # cards per open column; the column header counts them all
BOARD_CLOSED_CARDS = 15  # won / lost columns: the latest closed in the last 30 days


async def _pipeline_of(pipeline_id: int | None) -> dict[str, Any]:
    if pipeline_id:
        found = await Pipeline.select().where(Pipeline.id == pipeline_id).first().run()
        if found is None:
            raise NotFoundException("no such pipeline")
        return found
    return await deals.default_pipeline()


@get("/sales/board", opt=perm("sales.opportunity.view"))
async def board(request: Request, pipeline: FromQuery[int | None] = None) -> Template:
    from piccolo.query.functions.aggregate import Count, Sum

    rapport = request.app.state.rapport
    actor = current_actor(request)
    chosen = await _pipeline_of(pipeline)
    stages = await deals.stages_of(chosen["id"])
    since = datetime.now(UTC) - timedelta(days=30)
    # Column headers: one grouped query for every open stage's count and total (on the
    # (status, stage, id) index), instead of loading the deals.
    totals: dict[int, list[dict[str, Any]]] = {}
    grouped = scoped(Opportunity.select(
        Opportunity.stage, Opportunity.amount_currency, Count(alias="deals"),
        Sum(Opportunity.amount_amount, alias="total")).where(
        (Opportunity.status == "open") & (Opportunity.pipeline == chosen["id"])),
        rapport, actor, "sales.opportunity.view", Opportunity)
    for row in await grouped.group_by(Opportunity.stage, Opportunity.amount_currency).run():
        totals.setdefault(row["stage"], []).append(
            {"deals": row["deals"], "total": Money(Decimal(str(row["total"] or 0)),
                                                   row["amount_currency"])})
    columns = []
    all_rows = []
    for stage in stages:
        # Each column: its latest deals by id, bounded, on the (status, stage, id) index.
        query = scoped(Opportunity.select().where(
            (Opportunity.stage == stage["id"]) & (Opportunity.status == stage["outcome"])),
            rapport, actor, "sales.opportunity.view", Opportunity)
        limit = BOARD_OPEN_CARDS
        if stage["outcome"] != "open":
            query = query.where(Opportunity.closed_at >= since)
            limit = BOARD_CLOSED_CARDS
        rows = await query.order_by(Opportunity.id, ascending=False).limit(limit).run()
        counted = totals.get(stage["id"], [])
        columns.append({"stage": stage, "deals": rows, "totals": counted,
                        "more": sum(t["deals"] for t in counted) > len(rows)})
        all_rows.extend(rows)
    context = await _card_context(request, all_rows)
    pipelines = await Pipeline.select(Pipeline.id, Pipeline.name).order_by(Pipeline.name).limit(
        100).run()
    return Template("sales/board.html", context={"pipeline": chosen, "stages": stages,
                                                 "columns": columns, "pipelines": pipelines,
                                                 **context,
                                                 "can_edit": actor.can("sales.opportunity.edit"),
                                                 "can_manage": actor.can("sales.pipeline.manage")})


@post("/sales/opportunities/{opportunity_id:int}/stage", opt=perm("sales.opportunity.edit"))
async def opportunity_move(request: Request, opportunity_id: FromPath[int]) -> Response:
    opportunity = await visible_one(request, Opportunity, "sales.opportunity.edit",
                                    opportunity_id)
    data = await form_data(request)
    error = None
    try:
        stage_id = int(data.get("stage", ""))
        opportunity = await deals.move_to_stage(current_actor(request), opportunity, stage_id,
                                                reason=data.get("reason", ""),
                                                ip=client_ip(request))
    except ValueError as exc:
        error = exc.message if isinstance(exc, deals.OpportunityError) else "choose a stage"
    if request.htmx:
        stages = await deals.stages_of(opportunity["pipeline"])
        context = await _card_context(request, [opportunity])
        return Template("sales/_card.html", status_code=200, context={
            "deal": opportunity, "stages": stages, "error": error, "can_edit": True, **context})
    if error:
        return Response(error, status_code=400, media_type="text/plain")
    return Redirect(f"/sales/opportunities/{opportunity_id}", status_code=303)


# --- Products --------------------------------------------------------------------------------


@get("/sales/products", opt=perm("sales.product.view"))
async def product_list(q: FromQuery[str] = "", after: FromQuery[str] = "") -> Template:
    query = Product.select(Product.id, Product.sku, Product.name, Product.category,
                           Product.active)
    if q.strip():
        pattern = f"%{q.strip()}%"
        query = query.where(Product.name.ilike(pattern) | Product.sku.ilike(pattern))
    if after:
        query = query.where(Product.name > after)
    rows = await query.order_by(Product.name).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    categories = {c["id"]: c["name"] for c in await ProductCategory.select().limit(1000).run()}
    return Template("sales/products.html", context={
        "products": rows, "categories": categories, "q": q,
        "next_after": rows[-1]["name"] if more else None})


@post("/sales/products", opt=perm("sales.product.create"), status_code=303)
async def product_create(request: Request) -> Response:
    data = await form_data(request)
    sku, name = data.get("sku", "").strip()[:64], data.get("name", "").strip()[:300]
    error = None
    if not sku:
        error = ("sku", "give the product's SKU")
    elif not name:
        error = ("name", "give the product a name")
    elif await Product.exists().where(Product.sku == sku).run():
        error = ("sku", "another product has this SKU")
    if error:
        return Response(f"{error[0]}: {error[1]}", status_code=400, media_type="text/plain")
    category = None
    if data.get("category", "").strip():
        found = await ProductCategory.select().where(
            ProductCategory.name == data["category"].strip()).first().run()
        category = found["id"] if found else (await records.create(
            current_actor(request), ProductCategory, {"name": data["category"].strip()[:200]}))["id"]
    row = await records.create(current_actor(request), Product, {
        "sku": sku, "name": name, "category": category,
        "description": data.get("description", "")[:20000],
        "specifications": data.get("specifications", "")[:20000]}, ip=client_ip(request))
    return Redirect(f"/sales/products/{row['id']}", status_code=303)


@get("/sales/products/{product_id:int}", opt=perm("sales.product.view"))
async def product_detail(request: Request, product_id: FromPath[int]) -> Template:
    return await product_detail_page(request, product_id)


async def product_detail_page(request: Request, product_id: int,
                              errors: dict[str, str] | None = None, status: int = 200
                              ) -> Template:
    from plugins.sales.catalog import product_documents

    product = await Product.select().where(Product.id == product_id).first().run()
    if product is None:
        raise NotFoundException("not found")
    prices = await ProductPrice.select(ProductPrice.id, ProductPrice.currency,
                                       ProductPrice.unit_price,
                                       ProductPrice.price_book.name.as_alias("book")).where(
        ProductPrice.product == product_id).order_by(ProductPrice.currency).run()
    related = await RelatedProduct.select(
        RelatedProduct.kind, RelatedProduct.related.id.as_alias("rid"),
        RelatedProduct.related.name.as_alias("rname")).where(
        RelatedProduct.product == product_id).run()
    category = None
    if product["category"]:
        category = await ProductCategory.select().where(
            ProductCategory.id == product["category"]).first().run()
    specs = [line.partition(":") for line in product["specifications"].splitlines()
             if line.strip()]
    books = await PriceBook.select().where(PriceBook.active == True).run()  # noqa: E712
    actor = current_actor(request)
    return Template("sales/product_detail.html", status_code=status, context={
        "product": product, "prices": prices, "related": related, "category": category,
        "specs": specs, "books": books, "documents": await product_documents(product_id),
        "errors": errors or {}, "can_edit": actor.can("sales.product.edit"),
        "money": lambda amount, currency: str(Money(Decimal(str(amount)), currency))})


@post("/sales/products/{product_id:int}/prices", opt=perm("sales.product.edit"), status_code=303)
async def product_price_set(request: Request, product_id: FromPath[int]) -> Response:
    data = await form_data(request)
    if not await Product.exists().where(Product.id == product_id).run():
        raise NotFoundException("not found")
    try:
        money = Money.parse(data.get("unit_price", ""), data.get("currency", ""))
        book = int(data.get("price_book", ""))
    except (ValueError, ArithmeticError):
        return Response("unit_price: give an amount and a currency", status_code=400,
                        media_type="text/plain")
    actor = current_actor(request)
    existing = await ProductPrice.select(ProductPrice.id).where(
        (ProductPrice.product == product_id) & (ProductPrice.price_book == book)
        & (ProductPrice.currency == money.currency)).first().run()
    if existing:
        await records.update(actor, ProductPrice, existing["id"],
                             {"unit_price": money.amount}, ip=client_ip(request))
    else:
        await records.create(actor, ProductPrice, {"product": product_id, "price_book": book,
                                                   "currency": money.currency,
                                                   "unit_price": money.amount},
                             ip=client_ip(request))
    return Redirect(f"/sales/products/{product_id}", status_code=303)


# --- Dashboard widgets and 360° panels -------------------------------------------------------


@get("/sales/widgets/my-leads", opt=perm("sales.lead.view"), include_in_schema=False)
async def widget_my_leads(request: Request) -> Template:
    actor = current_actor(request)
    rows = await Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.company,
                             Lead.score).where(
        (Lead.owner == actor.id) & (Lead.status == "new")).order_by(
        Lead.id, ascending=False).limit(10).run()
    return Template("sales/widget_my_leads.html",
                    context={"leads": rows, "lead_name": lead_service.lead_name})


@get("/sales/widgets/pipeline", opt=perm("sales.opportunity.view"), include_in_schema=False)
async def widget_pipeline(request: Request) -> Template:
    from plugins.sales.reports import pipeline_by_stage

    rows = await pipeline_by_stage(request.app.state.rapport, current_actor(request))
    return Template("sales/widget_pipeline.html", context={"rows": rows})


@get("/sales/widgets/win-rate", opt=perm("sales.opportunity.view"), include_in_schema=False)
async def widget_win_rate(request: Request) -> Template:
    from plugins.sales.reports import win_rate

    result = await win_rate(request.app.state.rapport, current_actor(request))
    return Template("sales/widget_win_rate.html", context=result)


async def _panel_customer(request: Request, customer_id: int) -> None:
    """A panel answers 404 for a customer the user cannot see, like the 360° page itself."""
    found = await scoped(Customer.select(Customer.id).where(Customer.id == customer_id),
                         request.app.state.rapport, current_actor(request), "core.customer.view",
                         Customer).first().run()
    if found is None:
        raise NotFoundException("not found")


@get("/sales/panels/customer/{customer_id:int}/opportunities",
     opt=perm("sales.opportunity.view"), include_in_schema=False)
async def panel_opportunities(request: Request, customer_id: FromPath[int]) -> Template:
    await _panel_customer(request, customer_id)
    query = scoped(Opportunity.select().where(
        ((Opportunity.customer == customer_id) | (Opportunity.contact == customer_id))
        & (Opportunity.status == "open")), request.app.state.rapport, current_actor(request),
        "sales.opportunity.view", Opportunity)
    rows = await query.order_by(Opportunity.id, ascending=False).limit(20).run()
    stages = {s["id"]: s["name"] for s in await Stage.select(Stage.id, Stage.name).where(
        Stage.id.is_in(sorted({r["stage"] for r in rows}) or [0])).run()}
    context = await _card_context(request, rows)
    return Template("sales/panel_opportunities.html", context={
        "deals": rows, "stage_names": stages, "customer_id": customer_id, **context})


@get("/sales/panels/customer/{customer_id:int}/quotes", opt=perm("sales.quote.view"),
     include_in_schema=False)
async def panel_quotes(request: Request, customer_id: FromPath[int]) -> Template:
    await _panel_customer(request, customer_id)
    query = scoped(Quote.select().where((Quote.customer == customer_id)
                                        & (Quote.superseded == False)),  # noqa: E712
                   request.app.state.rapport, current_actor(request), "sales.quote.view", Quote)
    rows = await query.order_by(Quote.id, ascending=False).limit(20).run()
    return Template("sales/panel_quotes.html", context={"quotes": rows,
                                                        "customer_id": customer_id})


# --- Forecast and suggestions ----------------------------------------------------------------


async def _forecast(request: Request, kind: str, offset: int, currency: str):
    from plugins.sales import forecast as forecasting

    kind = kind if kind in ("month", "quarter") else "quarter"
    period = forecasting.period_of(kind, datetime.now(UTC).date()).shifted(max(-24, min(24,
                                                                                     offset)))
    currency = (currency or settings_of(request).default_currency).upper()[:3]
    result = await forecasting.build_forecast(request.app.state.rapport, current_actor(request),
                                              period, currency)
    return result, kind


@get("/sales/forecast", opt=perm("sales.opportunity.view"))
async def forecast_page(request: Request, period: FromQuery[str] = "quarter",
                        offset: FromQuery[int] = 0, currency: FromQuery[str] = "") -> Template:
    result, kind = await _forecast(request, period, offset, currency)
    owners = await lead_service.users_by_id(set(result.by_owner))
    teams = {t["id"]: t["name"] for t in await Team.select(Team.id, Team.name).where(
        Team.id.is_in(sorted(k for k in result.by_team if k is not None) or [0])).run()}
    peak = max([result.total.pipeline, result.total.won, result.statistical or Decimal(0),
                Decimal(1)])
    bars = [(label, value, int(300 * value / peak)) for label, value in (
        ("Won", result.total.won), ("Commit", result.total.commit),
        ("Best case", result.total.best_case), ("Weighted", result.total.weighted),
        ("Pipeline", result.total.pipeline),
        ("Statistical", result.statistical or Decimal(0)))]
    return Template("sales/forecast.html", context={
        "f": result, "kind": kind, "offset": offset, "owners": owners, "teams": teams,
        "bars": bars, "money": lambda a: str(Money(a, result.currency)),
        "can_manage_targets": current_actor(request).can("sales.target.manage")})


@get("/sales/forecast.csv", opt=perm("sales.opportunity.export"), include_in_schema=False)
async def forecast_csv(request: Request, period: FromQuery[str] = "quarter",
                       offset: FromQuery[int] = 0, currency: FromQuery[str] = "") -> Response:
    from core.spreadsheet import csv_text

    result, _ = await _forecast(request, period, offset, currency)
    owners = await lead_service.users_by_id(set(result.by_owner))
    rows = [("All", result.total)] + [(owners.get(k, "Unassigned"), v)
                                      for k, v in result.by_owner.items()]
    text = csv_text([["period", "representative", "currency", "deals", "pipeline", "weighted",
                      "best_case", "commit"]] + [
        [result.period.label, name, result.currency, figures.deals,
         *(Money(x, result.currency).rounded().amount for x in (
             figures.pipeline, figures.weighted, figures.best_case, figures.commit))]
        for name, figures in rows])
    from core import audit

    await audit.record(current_actor(request), "export", "sales_opportunity", "",
                       summary=f"forecast {result.period.label}", ip=client_ip(request))
    return Response(text, media_type="text/csv", headers={
        "content-disposition": f'attachment; filename="forecast-{result.period.label}.csv"'})


@get("/sales/panels/customer/{customer_id:int}/suggestions", opt=perm("sales.quote.view"),
     include_in_schema=False)
async def panel_suggestions(request: Request, customer_id: FromPath[int]) -> Template:
    from plugins.sales import suggestions

    await _panel_customer(request, customer_id)
    found = await suggestions.suggest(await suggestions.bought_by(customer_id))
    return Template("sales/panel_suggestions.html", context={"suggestions": found,
                                                             "customer_id": customer_id})


# --- Telesales call lists --------------------------------------------------------------------


@get("/sales/calls", opt=perm("sales.call_list.view"))
async def call_lists(request: Request) -> Template:
    query = scoped(CallList.select(), request.app.state.rapport, current_actor(request),
                   "sales.call_list.view", CallList)
    rows = await query.order_by(CallList.id, ascending=False).limit(PAGE).run()
    return Template("sales/call_lists.html", context={
        "lists": rows, "errors": {}, "values": {}, "statuses": LEAD_STATUSES})


@post("/sales/calls", opt=perm("sales.call_list.create"), status_code=303)
async def call_list_create(request: Request) -> Response:
    from plugins.sales import telesales

    data = await form_data(request)
    try:
        row = await telesales.build_call_list(request.app.state.rapport, current_actor(request),
                                              data, ip=client_ip(request))
    except telesales.CallListError as exc:
        return Template("sales/call_lists.html", status_code=400, context={
            "lists": [], "errors": {exc.field: exc.message}, "values": data,
            "statuses": LEAD_STATUSES})
    return Redirect(f"/sales/calls/{row['id']}", status_code=303)


async def _call_page(request: Request, call_list: dict[str, Any], error: str | None = None,
                     status: int = 200) -> Template:
    from plugins.sales import telesales

    entry = await telesales.next_entry(call_list["id"])
    target, decision = None, None
    if entry is not None:
        decision = await telesales.may_call(request.app.state.rapport, entry)
        if entry["customer"] is not None:
            target = await Customer.select(Customer.id, Customer.name, Customer.primary_phone,
                                           Customer.job_title).where(
                Customer.id == entry["customer"]).first().run()
            target = {**target, "phone": target["primary_phone"],
                      "url": f"/customers/{target['id']}"}
        else:
            lead = await Lead.select().where(Lead.id == entry["lead"]).first().run()
            target = {"name": lead_service.lead_name(lead), "phone": lead["phone"],
                      "job_title": lead["job_title"], "url": f"/sales/leads/{lead['id']}"}
    done = await CallListEntry.count().where((CallListEntry.call_list == call_list["id"])
                                             & (CallListEntry.status != "pending")).run()
    total = await CallListEntry.count().where(CallListEntry.call_list == call_list["id"]).run()
    return Template("sales/call_list.html", status_code=status, context={
        "call_list": call_list, "entry": entry, "target": target, "decision": decision,
        "outcomes": telesales.OUTCOMES, "error": error, "done": done, "total": total})


@get("/sales/calls/{call_list_id:int}", opt=perm("sales.call_list.view"))
async def call_list_work(request: Request, call_list_id: FromPath[int]) -> Template:
    call_list = await visible_one(request, CallList, "sales.call_list.view", call_list_id)
    return await _call_page(request, call_list)


async def _entry(request: Request, call_list_id: int, entry_id: int):
    call_list = await visible_one(request, CallList, "sales.call_list.create", call_list_id)
    entry = await CallListEntry.select().where(
        (CallListEntry.id == entry_id) & (CallListEntry.call_list == call_list_id)
        & (CallListEntry.status == "pending")).first().run()
    if entry is None:
        raise NotFoundException("not found")
    return call_list, entry


@post("/sales/calls/{call_list_id:int}/entries/{entry_id:int}/log",
      opt=perm("sales.call_list.create"), status_code=303)
async def call_log(request: Request, call_list_id: FromPath[int],
                   entry_id: FromPath[int]) -> Response:
    from plugins.sales import telesales

    call_list, entry = await _entry(request, call_list_id, entry_id)
    data = await form_data(request)
    try:
        await telesales.log_call(request.app.state.rapport, current_actor(request), entry, data,
                                 ip=client_ip(request))
    except telesales.CallListError as exc:
        return await _call_page(request, call_list, exc.message, status=400)
    return Redirect(f"/sales/calls/{call_list_id}", status_code=303)


@post("/sales/calls/{call_list_id:int}/entries/{entry_id:int}/skip",
      opt=perm("sales.call_list.create"), status_code=303)
async def call_skip(request: Request, call_list_id: FromPath[int],
                    entry_id: FromPath[int]) -> Response:
    from plugins.sales import telesales

    _call_list, entry = await _entry(request, call_list_id, entry_id)
    decision = await telesales.may_call(request.app.state.rapport, entry)
    blocked = decision is not None and not decision.allowed
    await telesales.skip(entry, "blocked" if blocked else "skipped",
                         decision.reason if blocked else "skipped by the caller")
    return Redirect(f"/sales/calls/{call_list_id}", status_code=303)


ROUTES = [
    call_lists, call_list_create, call_list_work, call_log, call_skip,
    forecast_page, forecast_csv, panel_suggestions,
    lead_list, lead_new, lead_create, lead_detail, lead_assign, lead_log_activity, lead_convert,
    lead_import_page, lead_import, rules_page, scoring_rule_add, scoring_rule_delete,
    assignment_rule_add, assignment_rule_delete, web_to_lead_form, web_to_lead_submit, board,
    opportunity_move, product_list, product_create, product_detail, product_price_set, widget_my_leads,
    widget_pipeline, widget_win_rate, panel_opportunities, panel_quotes,
]
