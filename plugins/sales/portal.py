"""Portal pages: a customer sees the quotes sent to them and their orders, and decides.

Mounted under ``/portal/`` by core. Every query is limited to the signed-in portal
customer's own ``customer`` id; another customer's quote answers 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.money import Money
from core.permissions import Actor, current_actor
from core.plugin import NavItem
from plugins.sales import orders
from plugins.sales import quotes as quote_service
from plugins.sales.tables import (
    OrderLine,
    Product,
    ProductDocument,
    ProductPrice,
    Quote,
    SalesOrder,
)

# Portal customers hold ``<id>.portal.<verb>`` permissions at scope "customer".
PORTAL = {"permission": "sales.portal.view"}
VISIBLE = ("sent", "accepted", "declined")
ORDER_PAGE = 20


def _customer_id(request: Request) -> int:
    actor: Actor = current_actor(request)
    if actor.kind != "portal" or actor.customer_id is None:
        raise NotFoundException("not found")
    return actor.customer_id


def _own_quotes(customer_id: int):
    return Quote.select().where((Quote.customer == customer_id) & Quote.status.is_in(
        list(VISIBLE)))


async def _own_quote(request: Request, quote_id: int) -> dict[str, Any]:
    row = await _own_quotes(_customer_id(request)).where(Quote.id == quote_id).first().run()
    if row is None:
        raise NotFoundException("not found")
    return row


def _frame(request: Request) -> str:
    """The portal's page frame when the theme has one, else the staff frame."""
    try:
        request.app.template_engine.get_template("portal/base.html")
    except Exception:  # TemplateNotFound: a theme without a portal frame
        return "base.html"
    return "portal/base.html"


async def _page(request: Request, template: str, context: dict[str, Any],
                status_code: int = 200) -> Template:
    """Render inside the portal's page frame: brand, customer and portal navigation (built from
    the public hooks only, so this plugin needs nothing private from the portal)."""
    rapport = request.app.state.rapport
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == _customer_id(request)).first().run()
    items = [NavItem(label="Home", href="/portal/", order=0)] + rapport.collect(
        "register_portal_nav_items", rapport=rapport, customer=customer or {})
    chrome = {"brand": {"name": rapport.settings.instance_name, "logo_url": ""},
              "portal_frame": _frame(request),
              "customer": customer,
              "portal_nav": sorted(items, key=lambda i: (i.order, i.label))}
    return Template(template, context={**chrome, **context}, status_code=status_code)


def _money(currency: str):
    return lambda amount: str(Money(Decimal(str(amount)), currency))


@get("/sales/quotes", opt=PORTAL)
async def portal_quotes(request: Request) -> Template:
    rows = await _own_quotes(_customer_id(request)).where(Quote.superseded == False).order_by(  # noqa: E712
        Quote.id, ascending=False).limit(100).run()
    return await _page(request, "sales/portal_quotes.html", {"quotes": rows})


@get("/sales/quotes/card", opt=PORTAL, include_in_schema=False)
async def portal_quotes_card(request: Request) -> Template:
    rows = await Quote.select(Quote.id, Quote.number, Quote.total_amount, Quote.currency).where(
        (Quote.customer == _customer_id(request)) & (Quote.status == "sent")
        & (Quote.superseded == False)).order_by(Quote.id, ascending=False).limit(5).run()  # noqa: E712
    return Template("sales/portal_quotes_card.html", context={"quotes": rows})


@get("/sales/quotes/{quote_id:int}", opt=PORTAL)
async def portal_quote(request: Request, quote_id: FromPath[int]) -> Template:
    quote = await _own_quote(request, quote_id)
    return await _page(request, "sales/portal_quote.html", {
        **await _quote_lines(quote), "money": _money(quote["currency"]), "error": None})


async def _quote_lines(quote: dict[str, Any]) -> dict[str, Any]:
    """The quote, its lines (with any configuration) and other plugins' adjustments."""
    return {"quote": quote,
            "lines": quote_service.display_lines(await quote_service.quote_lines(quote["id"])),
            "adjustments": await quote_service.quote_adjustments(quote["id"]),
            "expired": orders.quote_expired(quote)}


@post("/sales/quotes/{quote_id:int}/decision", opt=PORTAL, status_code=303)
async def portal_quote_decision(request: Request, quote_id: FromPath[int]) -> Response:
    quote = await _own_quote(request, quote_id)
    form = await request.form()
    decision = form.get("decision")
    if decision not in ("accept", "decline"):
        raise NotFoundException("not found")
    try:
        await quote_service.decide_quote(
            request.app.state.rapport, current_actor(request), quote, decision == "accept",
            reason=str(form.get("reason") or ""),
            ip=client_ip(request))
    except quote_service.QuoteError as exc:
        return await _page(request, "sales/portal_quote.html", {
            **await _quote_lines(quote), "money": _money(quote["currency"]),
            "error": exc.message}, status_code=409)
    return Redirect(f"/portal/sales/quotes/{quote_id}", status_code=303)


@get("/sales/orders", opt=PORTAL)
async def portal_orders(request: Request, after: FromQuery[str] = "") -> Template:
    """The customer's own orders with their status, newest first (keyset on the id)."""
    query = SalesOrder.select(
        SalesOrder.id, SalesOrder.number, SalesOrder.status, SalesOrder.currency,
        SalesOrder.total_amount, SalesOrder.ordered_at).where(
        SalesOrder.customer == _customer_id(request))
    if after.isdigit() and len(after) < 12:
        query = query.where(SalesOrder.id < int(after))
    rows = await query.order_by(SalesOrder.id, ascending=False).limit(ORDER_PAGE + 1).run()
    more = len(rows) > ORDER_PAGE
    rows = rows[:ORDER_PAGE]
    lines: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for line in await OrderLine.select(
                OrderLine.sales_order, OrderLine.description, OrderLine.quantity).where(
                OrderLine.sales_order.is_in([r["id"] for r in rows])).order_by(
                OrderLine.position).run():
            lines.setdefault(line["sales_order"], []).append(line)
    return await _page(request, "sales/portal_orders.html", {
        "orders": rows, "lines": lines, "next_after": rows[-1]["id"] if more else None,
        **_order_formatters()})


def _order_formatters() -> dict[str, Any]:
    return {"money": orders.money_text, "qty": orders.quantity_text,
            "statuses": orders.STATUSES}


async def _own_order(request: Request, order_id: int) -> dict[str, Any]:
    row = await SalesOrder.select().where(
        (SalesOrder.id == order_id) & (SalesOrder.customer == _customer_id(request))
    ).first().run()
    if row is None:
        raise NotFoundException("not found")
    return row


async def _order_page(request: Request, order: dict[str, Any], *, error: str = "",
                      values: dict[str, str] | None = None, status_code: int = 200
                      ) -> Template:
    lines = await orders.order_lines(order["id"])
    history = await orders.order_history(order["id"])
    return await _page(request, "sales/portal_order.html", {
        "order": order, "lines": lines, "by_line": {li["id"]: li for li in lines},
        "may_return": orders.allowed("return", order["status"])
        and any(orders.returnable_quantity(li) > 0 for li in lines),
        "returnable": orders.returnable_quantity, "error": error, "values": values or {},
        "done": request.query_params.get("done", ""), **history, **_order_formatters()},
        status_code=status_code)


@get("/sales/orders/{order_id:int}", opt=PORTAL)
async def portal_order(request: Request, order_id: FromPath[int]) -> Template:
    """One of the customer's orders: status, lines, shipments, returns and refunds."""
    return await _order_page(request, await _own_order(request, order_id))


@post("/sales/orders/{order_id:int}/returns", opt=PORTAL, status_code=303)
async def portal_return_request(request: Request, order_id: FromPath[int]) -> Response:
    """The customer sends back delivered goods of their own order, with a reason."""
    order = await _own_order(request, order_id)
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    quantities = {k[len("return_"):]: v for k, v in data.items()
                  if k.startswith("return_") and v.strip()}
    try:
        await orders.record_return(request.app.state.rapport, current_actor(request),
                                   order_id, quantities, reason=data.get("reason", ""),
                                   via="portal", ip=client_ip(request))
    except orders.OrderError as exc:
        return await _order_page(request, order, error=exc.message, values=data,
                                 status_code=409 if exc.status == 409 else 400)
    return Redirect(f"/portal/sales/orders/{order_id}?done=returned", status_code=303)


@post("/sales/quotes/{quote_id:int}/renewal", opt=PORTAL, status_code=303)
async def portal_quote_renewal(request: Request, quote_id: FromPath[int]) -> Response:
    """"Request a new quote" for an expired one: it reaches the quote's owner as a follow-up
    on the customer's timeline."""
    from datetime import UTC, datetime

    from core.interactions.service import record_interaction

    quote = await _own_quote(request, quote_id)
    form = await request.form()
    note = str(form.get("note") or "").strip()[:2000]
    await record_interaction(
        request.app.state.rapport, None, customer_id=quote["customer"], channel="portal",
        direction="inbound", subject=f"New quote requested (quote {quote['number']} expired)",
        notes=note, purpose="sales", followup_due=datetime.now(UTC),
        followup_assignee=quote["owner"], plugin="sales",
        plugin_record=f"quote:{quote['id']}", visible_in_portal=True,
        client_id=f"sales-quote-renewal-{quote['id']}", ip=client_ip(request))
    return Redirect(f"/portal/sales/quotes/{quote_id}?renewal=requested", status_code=303)


def _specs(text: str) -> dict[str, str]:
    pairs = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, _, value in pairs}


@get("/sales/products", opt=PORTAL)
async def portal_products(request: Request, q: FromQuery[str] = "") -> Template:
    """The product catalogue for customers: active products, default prices."""
    query = Product.select(Product.id, Product.name, Product.sku, Product.description).where(
        Product.active == True)  # noqa: E712
    if q.strip():
        query = query.where(Product.name.ilike(f"%{q.strip()}%"))
    rows = await query.order_by(Product.name).limit(200).run()
    documents: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for doc in await ProductDocument.select(
                ProductDocument.id, ProductDocument.product, ProductDocument.title,
                ProductDocument.size).where(
                ProductDocument.product.is_in([r["id"] for r in rows])
                & (ProductDocument.public == True)).order_by(  # noqa: E712
                ProductDocument.title).limit(1000).run():
            documents.setdefault(doc["product"], []).append(doc)
    return await _page(request, "sales/portal_products.html", {"products": rows, "q": q,
                                                               "documents": documents})


@get("/sales/products/compare", opt=PORTAL)
async def portal_compare(request: Request, ids: FromQuery[list[int]] | None = None) -> Template:
    """Side-by-side comparison of up to four products: price and every specification."""
    chosen = sorted(set(ids or []))[:4]
    rows = await Product.select().where(Product.id.is_in(chosen or [0]) & (
        Product.active == True)).order_by(Product.name).run()  # noqa: E712
    currency = request.app.state.rapport.plugin_settings("sales").default_currency
    prices = {r["product"]: r["unit_price"] for r in await ProductPrice.select(
        ProductPrice.product, ProductPrice.unit_price).where(
        ProductPrice.product.is_in(chosen or [0]) & (ProductPrice.currency == currency)
        & (ProductPrice.price_book.is_default == True)).run()}  # noqa: E712
    specs = {r["id"]: _specs(r["specifications"]) for r in rows}
    names = list(dict.fromkeys(name for r in rows for name in specs[r["id"]]))
    return await _page(request, "sales/portal_compare.html", {
        "products": rows, "specs": specs, "spec_names": names, "prices": prices,
        "money": _money(currency)})


ROUTES = [portal_products, portal_compare, portal_quotes, portal_quotes_card, portal_quote, portal_quote_decision, portal_orders,
          portal_order, portal_return_request, portal_quote_renewal]
