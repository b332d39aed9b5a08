"""Editing a deal on its page: product lines (quantity, price from the price book),
competitors, and moving it to another pipeline. Forms post with htmx and get the changed
section back; without JavaScript they post normally and land on the deal page again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, delete, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Response, Template

from core import records
from core.api_schemas import accepts
from core.audit import client_ip
from core.money import Money
from core.permissions import Actor, current_actor
from plugins.sales import api_bodies as bodies
from plugins.sales.controllers import form_data, perm, visible_one
from plugins.sales.tables import (
    Opportunity,
    OpportunityProduct,
    Pipeline,
    Product,
    ProductPrice,
    Stage,
    StageChange,
)

MAX_LINES = 100
MAX_COMPETITORS = 10


class DealEditError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


async def pipeline_choices() -> list[dict[str, Any]]:
    return await Pipeline.select(Pipeline.id, Pipeline.name).order_by(Pipeline.name).limit(
        100).run()


async def deal_lines(deal: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await OpportunityProduct.select(
        OpportunityProduct.id, OpportunityProduct.product, OpportunityProduct.quantity,
        OpportunityProduct.unit_price, OpportunityProduct.product.name.as_alias("name"),
        OpportunityProduct.product.sku.as_alias("sku")).where(
        OpportunityProduct.opportunity == deal["id"]).order_by(OpportunityProduct.id).limit(
        MAX_LINES).run()
    currency = deal["amount_currency"]
    for row in rows:
        quantity, price = Decimal(str(row["quantity"])), Decimal(str(row["unit_price"]))
        row["total"] = Money(quantity * price, currency).rounded()
        row["price"] = Money(price, currency).rounded()
        row["quantity"] = quantity.normalize() if quantity == quantity.to_integral() else quantity
    return rows


async def products_context(deal: dict[str, Any], errors: dict[str, str],
                           values: dict[str, str]) -> dict[str, Any]:
    lines = await deal_lines(deal)
    total = sum((line["total"].amount for line in lines), Decimal(0))
    products = await Product.select(Product.id, Product.name, Product.sku).where(
        Product.active == True).order_by(Product.name).limit(500).run()  # noqa: E712
    return {"lines": lines, "lines_total": Money(total, deal["amount_currency"]).rounded(),
            "catalogue": products, "errors": errors, "values": values}


async def _book_price(product_id: int, currency: str) -> Decimal | None:
    """The product's price in ``currency`` from the default price book (else any active one)."""
    rows = await ProductPrice.select(ProductPrice.unit_price,
                                     ProductPrice.price_book.is_default.as_alias("default")).where(
        (ProductPrice.product == product_id) & (ProductPrice.currency == currency)
        & (ProductPrice.price_book.active == True)).run()  # noqa: E712
    rows.sort(key=lambda r: not r["default"])
    return Decimal(str(rows[0]["unit_price"])) if rows else None


async def add_line(actor: Actor, deal: dict[str, Any], data: dict[str, Any], *,
                   ip: str = "") -> dict[str, Any]:
    raw_product = str(data.get("product") or "").strip()
    if not raw_product.isdigit():
        raise DealEditError("product", "choose a product")
    product = await Product.select(Product.id, Product.active).where(
        Product.id == int(raw_product)).first().run()
    if product is None or not product["active"]:
        raise DealEditError("product", "no such product in the catalogue")
    raw_quantity = data.get("quantity")
    if isinstance(raw_quantity, float):
        raise DealEditError("quantity", "give the quantity as a string, not a float")
    try:
        quantity = Decimal(str(raw_quantity if raw_quantity not in (None, "") else "1").strip())
    except InvalidOperation:
        raise DealEditError("quantity", "is not a number") from None
    if not quantity.is_finite() or quantity <= 0 or quantity >= Decimal("1e9"):
        raise DealEditError("quantity", "must be more than zero")
    if quantity != quantity.quantize(Decimal("0.001")):
        raise DealEditError("quantity", "has more than three decimals")
    currency = deal["amount_currency"]
    raw_price = data.get("unit_price")
    if isinstance(raw_price, float):
        raise DealEditError("unit_price", "give the price as a string, not a float")
    if raw_price in (None, ""):
        price = await _book_price(product["id"], currency)
        if price is None:
            raise DealEditError("unit_price", f"no price in {currency} in the price books: "
                                "give one")
    else:
        try:
            price = Money.parse(str(raw_price), currency).amount
        except (ValueError, InvalidOperation, ArithmeticError):
            raise DealEditError("unit_price", "is not an amount of money") from None
        if not price.is_finite() or price < 0:
            raise DealEditError("unit_price", "cannot be negative")
    if await OpportunityProduct.count().where(
            OpportunityProduct.opportunity == deal["id"]).run() >= MAX_LINES:
        raise DealEditError("product", f"a deal holds at most {MAX_LINES} products")
    async with Opportunity._meta.db.transaction():
        row = await records.create(actor, OpportunityProduct, {
            "opportunity": deal["id"], "product": product["id"], "quantity": quantity,
            "unit_price": Money(price, currency).rounded().amount}, ip=ip)
        await _touch(deal["id"])
    return row


async def _touch(deal_id: int) -> None:
    now = datetime.now(UTC)
    await Opportunity.update({Opportunity.last_activity_at: now, Opportunity.updated_at: now}).where(
        Opportunity.id == deal_id).run()


def parse_competitors(raw: Any) -> str:
    items = raw if isinstance(raw, list) else str(raw or "").replace("\n", ",").split(",")
    names: list[str] = []
    for item in items:
        name = " ".join(str(item).split())
        if not name:
            continue
        if len(name) > 100:
            raise DealEditError("competitors", f"{name[:30]}...: a name is at most 100 "
                                "characters")
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    if len(names) > MAX_COMPETITORS:
        raise DealEditError("competitors", f"name at most {MAX_COMPETITORS} competitors")
    joined = ", ".join(names)
    if len(joined) > 500:
        raise DealEditError("competitors", "the list is longer than 500 characters")
    return joined


async def move_to_pipeline(actor: Actor, deal: dict[str, Any], pipeline_id: int, *,
                           ip: str = "") -> dict[str, Any]:
    """Move a deal to another pipeline, mapping its stage: the stage of the same name, else
    (open deals) the open stage with the nearest probability, else the stage with the same
    outcome (won, lost)."""
    if pipeline_id == deal["pipeline"]:
        return deal
    target = await Stage.select().where(Stage.pipeline == pipeline_id).order_by(
        Stage.position).order_by(Stage.id).run()
    if not target:
        raise DealEditError("pipeline", "choose a pipeline that has stages")
    current = await Stage.select().where(Stage.id == deal["stage"]).first().run()
    same_name = [s for s in target if s["name"].lower() == (current or {}).get(
        "name", "").lower() and s["outcome"] == deal["status"]]
    same_outcome = [s for s in target if s["outcome"] == deal["status"]]
    if same_name:
        stage = same_name[0]
    elif same_outcome:
        probability = (current or {}).get("probability", 0)
        stage = min(same_outcome, key=lambda s: (abs(s["probability"] - probability),
                                                 s["position"]))
    else:
        raise DealEditError("pipeline", f"that pipeline has no {deal['status']} stage")
    now = datetime.now(UTC)
    async with Opportunity._meta.db.transaction():
        row = await records.update(actor, Opportunity, deal["id"], {
            "pipeline": pipeline_id, "stage": stage["id"], "last_activity_at": now,
            "updated_at": now}, ip=ip, summary=f"moved to pipeline {pipeline_id}, stage "
            f"{stage['name']}")
        await StageChange.insert(StageChange(opportunity=deal["id"], from_stage=deal["stage"],
                                             to_stage=stage["id"], changed_at=now,
                                             user=actor.id)).run()
    return row


# --- Pages -----------------------------------------------------------------------------------


async def _section(request: Request, deal: dict[str, Any], template: str,
                   errors: dict[str, str], values: dict[str, str]) -> Response:
    """htmx gets the section back (200 even with errors, so htmx swaps it in); a plain form
    post gets the deal page (400 with the errors) or a redirect to it."""
    if request.htmx:
        context = await products_context(deal, errors, values)
        return Template(template, context={"deal": deal, "can_edit": True, **context})
    if errors:
        from plugins.sales.opportunities_web import opportunity_page

        return await opportunity_page(request, deal, errors, values, status=400)
    return Redirect(f"/sales/opportunities/{deal['id']}", status_code=303)


@post("/sales/opportunities/{opportunity_id:int}/products",
      opt=perm("sales.opportunity.edit"), status_code=200)
async def product_line_add(request: Request, opportunity_id: FromPath[int]) -> Response:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    data = await form_data(request)
    try:
        await add_line(current_actor(request), deal, data, ip=client_ip(request))
    except DealEditError as exc:
        return await _section(request, deal, "sales/_deal_products.html",
                              {exc.field: exc.message}, data)
    return await _section(request, deal, "sales/_deal_products.html", {}, {})


@post("/sales/opportunities/{opportunity_id:int}/products/{line_id:int}/delete",
      opt=perm("sales.opportunity.edit"), status_code=200)
async def product_line_delete(request: Request, opportunity_id: FromPath[int],
                              line_id: FromPath[int]) -> Response:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    await _delete_line(current_actor(request), deal, line_id, client_ip(request))
    return await _section(request, deal, "sales/_deal_products.html", {}, {})


async def _delete_line(actor: Actor, deal: dict[str, Any], line_id: int, ip: str) -> None:
    if not await OpportunityProduct.exists().where(
            (OpportunityProduct.id == line_id)
            & (OpportunityProduct.opportunity == deal["id"])).run():
        raise NotFoundException("not found")
    async with Opportunity._meta.db.transaction():
        await records.delete(actor, OpportunityProduct, line_id, ip=ip)
        await _touch(deal["id"])


@post("/sales/opportunities/{opportunity_id:int}/amount-from-products",
      opt=perm("sales.opportunity.edit"), status_code=303)
async def amount_from_products(request: Request, opportunity_id: FromPath[int]) -> Response:
    """Set the deal's amount to the total of its product lines."""
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    lines = await deal_lines(deal)
    total = sum((line["total"].amount for line in lines), Decimal(0))
    await records.update(current_actor(request), Opportunity, deal["id"], {
        "amount_amount": total, "updated_at": datetime.now(UTC)}, ip=client_ip(request),
        summary="amount set from products")
    return Redirect(f"/sales/opportunities/{deal['id']}", status_code=303)


@post("/sales/opportunities/{opportunity_id:int}/competitors",
      opt=perm("sales.opportunity.edit"), status_code=200)
async def competitors_save(request: Request, opportunity_id: FromPath[int]) -> Response:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    data = await form_data(request)
    try:
        competitors = parse_competitors(data.get("competitors", ""))
    except DealEditError as exc:
        return await _section(request, deal, "sales/_deal_competitors.html",
                              {exc.field: exc.message}, data)
    deal = await records.update(current_actor(request), Opportunity, deal["id"], {
        "competitors": competitors, "updated_at": datetime.now(UTC)}, ip=client_ip(request))
    return await _section(request, deal, "sales/_deal_competitors.html", {}, {})


@post("/sales/opportunities/{opportunity_id:int}/pipeline",
      opt=perm("sales.opportunity.edit"), status_code=303)
async def pipeline_move(request: Request, opportunity_id: FromPath[int]) -> Response:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    data = await form_data(request)
    raw = data.get("pipeline", "")
    try:
        if not raw.isdigit() or not await Pipeline.exists().where(
                Pipeline.id == int(raw)).run():
            raise DealEditError("pipeline", "choose a pipeline")
        await move_to_pipeline(current_actor(request), deal, int(raw), ip=client_ip(request))
    except DealEditError as exc:
        from plugins.sales.opportunities_web import opportunity_page

        return await opportunity_page(request, deal, {exc.field: exc.message}, data, status=400)
    return Redirect(f"/sales/opportunities/{deal['id']}", status_code=303)


# --- API -------------------------------------------------------------------------------------


def _problem(exc: DealEditError) -> Response:
    return Response({"type": "about:blank", "title": "Invalid input", "status": 422,
                     "detail": f"{exc.field}: {exc.message}", "field": exc.field},
                    status_code=422, media_type="application/problem+json")


def _line_json(line: dict[str, Any]) -> dict[str, Any]:
    return {"id": line["id"], "product": line["product"], "name": line["name"],
            "quantity": str(line["quantity"]), "unit_price": str(line["price"].amount),
            "total": str(line["total"].amount), "currency": line["total"].currency}


@get("/api/v1/sales/opportunities/{opportunity_id:int}/products",
     opt=perm("sales.opportunity.view"))
async def api_lines(request: Request, opportunity_id: FromPath[int]) -> dict[str, Any]:
    """The deal's product lines (at most 100)."""
    deal = await visible_one(request, Opportunity, "sales.opportunity.view", opportunity_id)
    return {"items": [_line_json(line) for line in await deal_lines(deal)]}


@accepts(bodies.DEAL_LINE)
@post("/api/v1/sales/opportunities/{opportunity_id:int}/products",
      opt=perm("sales.opportunity.edit"))
async def api_line_add(request: Request, opportunity_id: FromPath[int],
                       data: JSONBody[dict[str, Any]]) -> Response:
    """Add a product line: ``product``, ``quantity`` (string), ``unit_price`` (string;
    default: the price book's price in the deal's currency)."""
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    try:
        row = await add_line(current_actor(request), deal, data, ip=client_ip(request))
    except DealEditError as exc:
        return _problem(exc)
    line = next(x for x in await deal_lines(deal) if x["id"] == row["id"])
    return Response(_line_json(line), status_code=201)


@delete("/api/v1/sales/opportunities/{opportunity_id:int}/products/{line_id:int}",
        opt=perm("sales.opportunity.edit"), status_code=204)
async def api_line_delete(request: Request, opportunity_id: FromPath[int],
                          line_id: FromPath[int]) -> None:
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    await _delete_line(current_actor(request), deal, line_id, client_ip(request))


@accepts(bodies.PIPELINE_MOVE)
@post("/api/v1/sales/opportunities/{opportunity_id:int}/pipeline",
      opt=perm("sales.opportunity.edit"))
async def api_pipeline_move(request: Request, opportunity_id: FromPath[int],
                            data: JSONBody[dict[str, Any]]) -> Response:
    """Move the deal to pipeline ``pipeline``; its stage is mapped (same name, else nearest
    probability, else same outcome)."""
    deal = await visible_one(request, Opportunity, "sales.opportunity.edit", opportunity_id)
    pipeline = data.get("pipeline")
    if not isinstance(pipeline, int) or not await Pipeline.exists().where(
            Pipeline.id == pipeline).run():
        return _problem(DealEditError("pipeline", "no such pipeline"))
    try:
        row = await move_to_pipeline(current_actor(request), deal, pipeline,
                                     ip=client_ip(request))
    except DealEditError as exc:
        return _problem(exc)
    return Response({"id": row["id"], "pipeline": row["pipeline"], "stage": row["stage"]},
                    status_code=200)


ROUTES = [product_line_add, product_line_delete, amount_from_products, competitors_save,
          pipeline_move, api_lines, api_line_add, api_line_delete, api_pipeline_move]
