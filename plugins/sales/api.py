"""The sales JSON API under ``/api/v1/sales/``: leads, opportunities, products, quotes, orders.

Lists are keyset-paginated (``?after=<id>``, ``?limit=`` up to 200, newest first); bad input
answers ``application/problem+json`` naming the field; out-of-scope records answer 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.api_schemas import accepts
from core.audit import client_ip
from core.customers.tables import Customer
from core.money import Money
from core.permissions import current_actor, scoped
from plugins.sales import api_bodies as bodies
from plugins.sales import leads as lead_service
from plugins.sales import pipeline as deals
from plugins.sales import quotes as quote_service
from plugins.sales.controllers import perm, visible_one
from plugins.sales.tables import (
    Lead,
    Opportunity,
    Product,
    ProductPrice,
    Quote,
    Stage,
)

MAX_LIMIT = 200


def problem(field: str, message: str, status: int = 422) -> Response:
    return Response(
        {"type": "about:blank", "title": "Invalid input", "status": status,
         "detail": f"{field}: {message}", "field": field},
        status_code=status, media_type="application/problem+json")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


async def _page(request: Request, table, permission: str, query, limit: int,
                after: int | None) -> dict[str, Any]:
    query = scoped(query, request.app.state.rapport, current_actor(request), permission, table)
    if after:
        query = query.where(table.id < after)
    rows = await query.order_by(table.id, ascending=False).limit(_limit(limit) + 1).run()
    more = len(rows) > _limit(limit)
    rows = rows[:_limit(limit)]
    return {"items": [_jsonable(r) for r in rows],
            "next_after": rows[-1]["id"] if more and rows else None}


# --- Leads -----------------------------------------------------------------------------------


@get("/api/v1/sales/leads", opt=perm("sales.lead.view"))
async def api_leads(request: Request, limit: FromQuery[int] = 50,
                    after: FromQuery[int | None] = None,
                    status: FromQuery[str | None] = None) -> dict[str, Any]:
    """Leads the caller may see, newest first."""
    query = Lead.select()
    if status:
        query = query.where(Lead.status == status)
    return await _page(request, Lead, "sales.lead.view", query, limit, after)


@accepts(bodies.LEAD)
@post("/api/v1/sales/leads", opt=perm("sales.lead.create"))
async def api_lead_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Capture a lead: it is scored and assigned by the rules unless ``owner`` is given."""
    actor = current_actor(request)
    owner = data.get("owner")
    if owner is not None and not actor.can("sales.lead.assign"):
        return problem("owner", "you may not assign leads", status=403)
    try:
        row = await lead_service.capture_lead(
            request.app.state.rapport, actor, data, source=str(data.get("source") or "api"),
            ip=client_ip(request), owner=owner)
    except lead_service.LeadError as exc:
        return problem(exc.field, exc.message)
    return Response(_jsonable(row), status_code=201)


@get("/api/v1/sales/leads/{lead_id:int}", opt=perm("sales.lead.view"))
async def api_lead(request: Request, lead_id: FromPath[int]) -> dict[str, Any]:
    """One lead, with the scoring rules that contributed to its score."""
    lead = await visible_one(request, Lead, "sales.lead.view", lead_id)
    score, contributions = lead_service.score_lead(lead, await lead_service.active_rules())
    return {**_jsonable(lead), "score_now": score,
            "score_reasons": [{"rule_id": c.rule_id, "reason": c.description,
                               "points": c.points} for c in contributions]}


@accepts(bodies.LEAD_CONVERSION)
@post("/api/v1/sales/leads/{lead_id:int}/convert", opt=perm("sales.lead.edit"))
async def api_lead_convert(request: Request, lead_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> Response:
    """Convert a lead into an account, a contact and (unless ``opportunity`` is false) a deal."""
    await visible_one(request, Lead, "sales.lead.edit", lead_id)
    try:
        result = await lead_service.convert_lead(
            request.app.state.rapport, current_actor(request), lead_id,
            opportunity_name=str(data.get("opportunity_name") or ""),
            amount=str(data.get("amount") or ""), currency=str(data.get("currency") or ""),
            create_opportunity=data.get("opportunity", True) is not False, ip=client_ip(request))
    except lead_service.ConversionError as exc:
        return problem("lead", str(exc), status=409)
    except deals.OpportunityError as exc:
        return problem(exc.field, exc.message)
    return Response(result, status_code=201)


# --- Opportunities ---------------------------------------------------------------------------


def _deal(row: dict[str, Any]) -> dict[str, Any]:
    out = _jsonable(row)
    money = Money.from_row(row, "amount")
    out["amount"] = money.to_json() if money else None
    out.pop("amount_amount", None)
    out.pop("amount_currency", None)
    return out


@get("/api/v1/sales/opportunities", opt=perm("sales.opportunity.view"))
async def api_opportunities(request: Request, limit: FromQuery[int] = 50,
                            after: FromQuery[int | None] = None,
                            status: FromQuery[str | None] = None) -> dict[str, Any]:
    query = Opportunity.select()
    if status:
        query = query.where(Opportunity.status == status)
    page = await _page(request, Opportunity, "sales.opportunity.view", query, limit, after)
    page["items"] = [_deal({**i, "amount_amount": i["amount_amount"]}) for i in page["items"]]
    return page


@accepts(bodies.OPPORTUNITY)
@post("/api/v1/sales/opportunities", opt=perm("sales.opportunity.create"))
async def api_opportunity_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer = data.get("customer")
    if customer is not None and await scoped(
            Customer.select(Customer.id).where(Customer.id == customer), rapport, actor,
            "core.customer.view", Customer).first().run() is None:
        return problem("customer", "no such customer")
    amount = data.get("amount")
    if isinstance(amount, dict):
        data = {**data, "amount": amount.get("amount"), "currency": amount.get("currency")}
    if isinstance(data.get("amount"), float):
        return problem("amount", "send amounts as strings, e.g. \"1200.00\"")
    try:
        row = await deals.create_opportunity(rapport, actor, {**data, "owner": actor.id},
                                             ip=client_ip(request))
    except deals.OpportunityError as exc:
        return problem(exc.field, exc.message)
    return Response(_deal(row), status_code=201)


@get("/api/v1/sales/opportunities/{opportunity_id:int}", opt=perm("sales.opportunity.view"))
async def api_opportunity(request: Request, opportunity_id: FromPath[int]) -> dict[str, Any]:
    return _deal(await visible_one(request, Opportunity, "sales.opportunity.view",
                                   opportunity_id))


@accepts(bodies.OPPORTUNITY_CHANGE)
@patch("/api/v1/sales/opportunities/{opportunity_id:int}", opt=perm("sales.opportunity.edit"))
async def api_opportunity_update(request: Request, opportunity_id: FromPath[int],
                                 data: JSONBody[dict[str, Any]]) -> Response:
    """Change a deal's ``name``, ``amount`` (a string, or ``{"amount", "currency"}``),
    ``currency``, ``expected_close`` (YYYY-MM-DD or null), ``owner`` (a user the caller may
    give deals to) or ``contact`` (a contact person id, or null); fields left out stay."""
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    changes = {k: v for k, v in data.items() if k in deals.EDITABLE}
    if isinstance(changes.get("amount"), dict):
        amount = changes.pop("amount")
        changes.update(amount=amount.get("amount"), currency=amount.get("currency"))
    contact = changes.get("contact")
    if contact is not None and contact != deal["contact"]:
        if not isinstance(contact, int) or await scoped(
                Customer.select(Customer.id).where((Customer.id == contact)
                                                   & (Customer.kind == "contact")),
                request.app.state.rapport, current_actor(request), "core.customer.view",
                Customer).first().run() is None:
            return problem("contact", "no such contact person")
    try:
        row = await deals.update_opportunity(request.app.state.rapport, current_actor(request),
                                             deal, changes, ip=client_ip(request))
    except deals.OpportunityError as exc:
        return problem(exc.field, exc.message)
    return Response(_deal(row), status_code=200)


@accepts(bodies.STAGE_MOVE)
@post("/api/v1/sales/opportunities/{opportunity_id:int}/stage",
      opt=perm("sales.opportunity.edit"))
async def api_opportunity_move(request: Request, opportunity_id: FromPath[int],
                               data: JSONBody[dict[str, Any]]) -> Response:
    """Move a deal to ``stage`` (an id of its pipeline); ``reason`` is required for lost."""
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    try:
        row = await deals.move_to_stage(current_actor(request), deal, int(data.get("stage", 0)),
                                        reason=str(data.get("reason") or ""), ip=client_ip(request))
    except deals.OpportunityError as exc:
        return problem(exc.field, exc.message)
    except (TypeError, ValueError):
        return problem("stage", "give a stage id")
    return Response(_deal(row), status_code=200)


@get("/api/v1/sales/stages", opt=perm("sales.opportunity.view"))
async def api_stages() -> list[dict[str, Any]]:
    """Stages of the default pipeline, in order, with their win probabilities."""
    pipeline = await deals.default_pipeline()
    return [_jsonable(s) for s in await deals.stages_of(pipeline["id"])]


# --- Products, quotes, orders ----------------------------------------------------------------


@get("/api/v1/sales/products", opt=perm("sales.product.view"))
async def api_products(limit: FromQuery[int] = 50, after: FromQuery[int | None] = None,
                       q: FromQuery[str] = "") -> dict[str, Any]:
    """The catalogue, with prices per price book and currency."""
    query = Product.select().where(Product.active == True)  # noqa: E712
    if q.strip():
        query = query.where(Product.name.ilike(f"%{q.strip()}%") | (Product.sku == q.strip()))
    if after:
        query = query.where(Product.id < after)
    rows = await query.order_by(Product.id, ascending=False).limit(_limit(limit) + 1).run()
    more = len(rows) > _limit(limit)
    rows = rows[:_limit(limit)]
    prices: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for p in await ProductPrice.select().where(
                ProductPrice.product.is_in([r["id"] for r in rows])).run():
            prices.setdefault(p["product"], []).append(
                {"price_book": p["price_book"], "currency": p["currency"],
                 "unit_price": str(p["unit_price"])})
    return {"items": [{**_jsonable(r), "prices": prices.get(r["id"], [])} for r in rows],
            "next_after": rows[-1]["id"] if more and rows else None}


@get("/api/v1/sales/quotes", opt=perm("sales.quote.view"))
async def api_quotes(request: Request, limit: FromQuery[int] = 50,
                     after: FromQuery[int | None] = None) -> dict[str, Any]:
    return await _page(request, Quote, "sales.quote.view", Quote.select(), limit, after)


@accepts(bodies.QUOTE)
@post("/api/v1/sales/quotes", opt=perm("sales.quote.create"))
async def api_quote_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Create a quote: ``customer``, ``currency``, ``lines`` of ``{product, quantity,
    discount_percent, tax_percent}`` (or ``{source, source_ref}`` from another plugin)."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer = data.get("customer")
    if not isinstance(customer, int) or await scoped(
            Customer.select(Customer.id).where(Customer.id == customer), rapport, actor,
            "core.customer.view", Customer).first().run() is None:
        return problem("customer", "no such customer")
    try:
        row = await quote_service.create_quote(rapport, actor, data, ip=client_ip(request))
    except quote_service.QuoteError as exc:
        return problem(exc.field, exc.message)
    return Response(await _quote_out(row), status_code=201)


async def _quote_out(quote: dict[str, Any]) -> dict[str, Any]:
    """A quote with its lines (``context`` as an object) and other plugins' adjustments."""
    lines = [{**_jsonable(li), "context": quote_service.parse_context(li["context"])}
             for li in await quote_service.quote_lines(quote["id"])]
    adjustments = [{**_jsonable(a), "context": quote_service.parse_context(a["context"])}
                   for a in await quote_service.quote_adjustments(quote["id"])]
    return {**_jsonable(quote), "lines": lines, "adjustments": adjustments}


@get("/api/v1/sales/quotes/{quote_id:int}", opt=perm("sales.quote.view"))
async def api_quote(request: Request, quote_id: FromPath[int]) -> dict[str, Any]:
    quote = await visible_one(request, Quote, "sales.quote.view", quote_id)
    return await _quote_out(quote)


@post("/api/v1/sales/quotes/{quote_id:int}/send", opt=perm("sales.quote.edit"))
async def api_quote_send(request: Request, quote_id: FromPath[int]) -> Response:
    """Make the quote visible in the customer's portal, where they accept or decline it."""
    quote = await visible_one(request, Quote, "sales.quote.edit", quote_id)
    try:
        row = await quote_service.send_quote(current_actor(request), quote, ip=client_ip(request))
    except quote_service.QuoteError as exc:
        return problem(exc.field, exc.message, status=409)
    return Response(_jsonable(row), status_code=200)


@get("/api/v1/sales/forecast", opt=perm("sales.opportunity.view"))
async def api_forecast(request: Request, period: FromQuery[str] = "quarter",
                       offset: FromQuery[int] = 0, currency: FromQuery[str] = "EUR"
                       ) -> dict[str, Any]:
    """Weighted pipeline, commit, best case and won for one period (``month`` or ``quarter``,
    ``offset`` periods from now), per representative and team, with the statistical forecast
    and its measured accuracy."""
    from datetime import UTC, datetime

    from plugins.sales import forecast as forecasting

    kind = period if period in ("month", "quarter") else "quarter"
    span = forecasting.period_of(kind, datetime.now(UTC).date()).shifted(
        max(-24, min(24, offset)))
    f = await forecasting.build_forecast(request.app.state.rapport, current_actor(request),
                                         span, currency.upper()[:3])

    def figures(x) -> dict[str, Any]:
        return {"deals": x.deals, "pipeline": str(x.pipeline), "weighted": str(x.weighted),
                "best_case": str(x.best_case), "commit": str(x.commit), "won": str(x.won)}

    return {"period": f.period.label, "start": f.period.start.isoformat(),
            "end": f.period.end.isoformat(), "currency": f.currency, "total": figures(f.total),
            "by_owner": [{"owner": k, **figures(v)} for k, v in f.by_owner.items()],
            "by_team": [{"team": k, **figures(v)} for k, v in f.by_team.items()],
            "statistical": str(f.statistical) if f.statistical is not None else None,
            "accuracy": str(f.accuracy) if f.accuracy is not None else None,
            "history": [{"period": h["period"], "predicted": str(h["predicted"]),
                         "won": str(h["won"])} for h in f.history]}


@get("/api/v1/sales/customers/{customer_id:int}/suggestions", opt=perm("sales.quote.view"))
async def api_suggestions(request: Request, customer_id: FromPath[int]) -> dict[str, Any]:
    """Cross-sell, up-sell and bought-together suggestions for a customer, each with its
    reason (and support, confidence, lift where mined from orders)."""
    from plugins.sales import suggestions

    await visible_one(request, Customer, "core.customer.view", customer_id)
    found = await suggestions.suggest(await suggestions.bought_by(customer_id))
    return {"items": [{
        "product_id": s.product_id, "product_name": s.product_name, "kind": s.kind,
        "reason": s.reason, "orders": getattr(s, "orders", None),
        **{k: str(getattr(s, k)) if getattr(s, k, None) is not None else None
           for k in ("support", "confidence", "lift")}} for s in found]}


ROUTES = [
    api_forecast, api_suggestions,
    api_leads, api_lead_create, api_lead, api_lead_convert, api_opportunities,
    api_opportunity_create, api_opportunity, api_opportunity_update, api_opportunity_move, api_stages, api_products,
    api_quotes, api_quote_create, api_quote, api_quote_send,
]
_ = Stage  # stages are served through the pipeline helpers
