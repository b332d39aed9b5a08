"""Staff pages for orders: the list, taking an order on the phone, the order page with its
workflow actions, recording a customer's acceptance of a quote, and the 360° panel.

Every order is read through ``core.permissions.scoped`` for the permission the page or action
needs; an order outside the user's scope answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.identity.tables import User
from core.local_time import parse_local, zone_of
from core.permissions import current_actor, scoped
from core.plugin import Action
from plugins.sales import orders
from plugins.sales import quotes as quote_service
from plugins.sales.tables import OrderLine, PriceBook, Product, Quote, SalesOrder

PAGE = 50
LINE_ROWS = 6


def perm(name: str) -> dict[str, str]:
    return {"permission": name}


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _formatters() -> dict[str, Any]:
    return {"money": orders.money_text, "qty": orders.quantity_text,
            "amount": orders.amount_text,
            "statuses": orders.STATUSES, "channels": orders.CHANNELS}


async def visible_order(request: Request, order_id: int, permission: str) -> dict[str, Any]:
    """The order if the user may reach it with ``permission``; 404 otherwise (never 403)."""
    query = scoped(SalesOrder.select().where(SalesOrder.id == order_id),
                   request.app.state.rapport, current_actor(request), permission, SalesOrder)
    row = await query.first().run()
    if row is None:
        raise NotFoundException("not found")
    return row


async def visible_customer(request: Request, customer_id: Any) -> dict[str, Any] | None:
    try:
        cid = int(customer_id)
    except (TypeError, ValueError):
        return None
    return await scoped(Customer.select(Customer.id, Customer.name).where(Customer.id == cid),
                        request.app.state.rapport, current_actor(request),
                        "core.customer.view", Customer).first().run()


def order_actions(order: dict[str, Any]) -> list[Action]:
    """What can be done next with an order (``record_actions`` for ``sales.order``)."""
    oid, status = order["id"], order["status"]
    actions = []
    if orders.allowed("confirm", status):
        actions.append(Action("Confirm", f"/sales/orders/{oid}/confirm", method="POST",
                              permission="sales.order.edit", order=10))
    if orders.allowed("ship", status):
        actions.append(Action("Ship lines", f"/sales/orders/{oid}#ship",
                              permission="sales.order.fulfil", order=11))
    if orders.allowed("complete", status):
        actions.append(Action("Complete", f"/sales/orders/{oid}/complete", method="POST",
                              permission="sales.order.edit", order=12))
    if orders.allowed("return", status):
        actions.append(Action("Record a return", f"/sales/orders/{oid}#return",
                              permission="sales.order.edit", order=13))
    if orders.allowed("cancel_lines", status):
        actions.append(Action("Cancel…", f"/sales/orders/{oid}#cancel",
                              permission="sales.order.edit", order=20))
    return actions


def quote_actions(quote: dict[str, Any]) -> list[Action]:
    """On a quote waiting for the customer: record their acceptance (phone, e-mail...)."""
    if quote.get("status") != "sent" or quote.get("superseded"):
        return []
    return [Action("Record acceptance", f"/sales/quotes/{quote['id']}/accept",
                   permission="sales.order.create", order=40)]


# --- The list --------------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@get("/sales/orders", opt=perm("sales.order.view"), name="sales-orders")
async def order_list(request: Request, status: FromQuery[str] = "",
                     customer: FromQuery[str] = "", owner: FromQuery[str] = "",
                     since: FromQuery[str] = "", until: FromQuery[str] = "",
                     after: FromQuery[str] = "") -> Template:
    """Orders in the user's scope, newest first, by keyset on the id (``after``)."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    query = scoped(SalesOrder.select(
        SalesOrder.id, SalesOrder.number, SalesOrder.customer, SalesOrder.owner,
        SalesOrder.status, SalesOrder.channel, SalesOrder.currency, SalesOrder.total_amount,
        SalesOrder.ordered_at), rapport, actor, "sales.order.view", SalesOrder)
    filters: dict[str, str] = {}
    if status in orders.STATUSES:
        query = query.where(SalesOrder.status == status)
        filters["status"] = status
    customer_row = await visible_customer(request, customer) if customer.isdigit() else None
    if customer_row is not None:
        query = query.where(SalesOrder.customer == customer_row["id"])
        filters["customer"] = str(customer_row["id"])
    if owner == "me" and actor.id is not None:
        query = query.where(SalesOrder.owner == actor.id)
        filters["owner"] = "me"
    elif owner.isdigit() and len(owner) < 12:
        query = query.where(SalesOrder.owner == int(owner))
        filters["owner"] = owner
    start, end = _day(since), _day(until)
    if start is not None:
        query = query.where(SalesOrder.ordered_at >= datetime.combine(start, time(), UTC))
        filters["since"] = start.isoformat()
    if end is not None:
        query = query.where(SalesOrder.ordered_at < datetime.combine(end + timedelta(days=1),
                                                                     time(), UTC))
        filters["until"] = end.isoformat()
    if after.isdigit() and len(after) < 12:
        query = query.where(SalesOrder.id < int(after))
    rows = await query.order_by(SalesOrder.id, ascending=False).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    names = await _customer_names({r["customer"] for r in rows})
    owners = await _user_names({r["owner"] for r in rows})
    users = await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(200).run()
    from urllib.parse import urlencode

    return Template("sales/orders.html", context={
        "orders": rows, "customers": names, "owners": owners, "users": users,
        "filters": filters, "customer_row": customer_row,
        "next_url": (f"/sales/orders?{urlencode({**filters, 'after': rows[-1]['id']})}"
                     if more else None),
        "may_create": actor.can("sales.order.create"), **_formatters()})


async def _customer_names(ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    rows = await Customer.select(Customer.id, Customer.name).where(
        Customer.id.is_in(sorted(ids))).run()
    return {r["id"]: r["name"] for r in rows}


async def _user_names(ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    rows = await User.select(User.id, User.name).where(User.id.is_in(sorted(ids))).run()
    return {r["id"]: r["name"] for r in rows}


# --- Taking an order (inbound teleservice) ---------------------------------------------------


async def _new_form(request: Request, values: dict[str, Any], errors: dict[str, str],
                    status_code: int = 200) -> Template:
    products = await Product.select(Product.id, Product.name, Product.sku).where(
        Product.active == True).order_by(Product.name).limit(500).run()  # noqa: E712
    books = await PriceBook.select(PriceBook.id, PriceBook.name).where(
        PriceBook.active == True).order_by(PriceBook.name).limit(100).run()  # noqa: E712
    customer = await visible_customer(request, values.get("customer"))
    return Template("sales/order_new.html", status_code=status_code, context={
        "values": values, "errors": errors, "products": products, "books": books,
        "customer": customer, "rows": range(1, LINE_ROWS + 1)})


@get("/sales/orders/new", opt=perm("sales.order.create"))
async def order_new(request: Request, customer: FromQuery[str] = "") -> Template:
    # A fresh key per form: a double-clicked "Place order" creates one order, not two.
    return await _new_form(request, {
        "customer": customer, "request_key": secrets.token_urlsafe(16),
        "currency": request.app.state.rapport.plugin_settings("sales").default_currency}, {})


@get("/sales/orders/customer-options", opt=perm("sales.order.create"), include_in_schema=False)
async def customer_options(request: Request) -> Template:
    """The new-order form's customer picker: customers matching what was typed (name, e-mail
    or phone through core's search), among those the user may see."""
    from core.search.customers import find_customers

    typed = (request.query_params.get("customer_search") or "").strip()
    hits = []
    if len(typed) >= 2:
        hits = await find_customers(request.app.state.rapport, current_actor(request), typed,
                                    limit=15)
    return Template("sales/_order_customer_options.html", context={"hits": hits})


def lines_from_form(data: dict[str, str]) -> list[dict[str, str]]:
    lines = []
    for i in range(1, 21):
        product = data.get(f"line{i}_product", "").strip()
        if not product:
            continue
        lines.append({"product": product, "quantity": data.get(f"line{i}_quantity", "1"),
                      "discount_percent": data.get(f"line{i}_discount", "0"),
                      "tax_percent": data.get(f"line{i}_tax", "0")})
    return lines


@post("/sales/orders", opt=perm("sales.order.create"), status_code=303)
async def order_create(request: Request) -> Response:
    data = await _form(request)
    actor = current_actor(request)
    # The picker's choice, or without JavaScript the customer number typed in.
    data["customer"] = (data.get("customer") or data.get("customer_number") or "").strip()
    if await visible_customer(request, data.get("customer")) is None:
        return await _new_form(request, data, {"customer": "pick the customer who is ordering"},
                               400)
    lines = lines_from_form(data)
    # The form's lines are numbered as on the screen: errors name the row the user sees.
    key = data.get("request_key", "").strip()[:64]
    try:
        order, _created = await orders.create_order_once(
            request.app.state.rapport, actor, {**data, "lines": lines}, channel="phone",
            idempotency_key=f"form:{actor.id}:{key}" if key else None,
            digest=orders.request_digest({**data, "lines": lines}), ip=client_ip(request))
    except orders.OrderError as exc:
        return await _new_form(request, data, {_form_field(exc.field, data): exc.message}, 400)
    return Redirect(f"/sales/orders/{order['id']}", status_code=303)


def _form_field(field: str, data: dict[str, str]) -> str:
    """``lines[2].quantity`` of the submitted lines as the form's ``line5_quantity``."""
    if not field.startswith("lines["):
        return field
    try:
        index = int(field[6:field.index("]")])
    except ValueError:
        return "lines"
    filled = [i for i in range(1, 21) if data.get(f"line{i}_product", "").strip()]
    if index > len(filled):
        return "lines"
    name = field.partition(".")[2] or "product"
    name = {"discount_percent": "discount", "tax_percent": "tax"}.get(name, name)
    return f"line{filled[index - 1]}_{name}"


# --- The order page and its actions ----------------------------------------------------------


async def _page_context(request: Request, order: dict[str, Any]) -> dict[str, Any]:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    lines = await orders.order_lines(order["id"])
    history = await orders.order_history(order["id"])
    by_line = {li["id"]: li for li in lines}
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == order["customer"]).first().run()
    owner = (await _user_names({order["owner"]})).get(order["owner"]) if order["owner"] else ""
    quote = None
    if order["quote"]:
        quote = await Quote.select(Quote.id, Quote.number, Quote.version).where(
            Quote.id == order["quote"]).first().run()
    actions = [a for a in await rapport.acollect("record_actions", rapport=rapport,
                                                 record_type="sales.order", record=order,
                                                 user=actor)
               if a.permission is None or actor.can(a.permission)]
    actions.sort(key=lambda a: (a.order, a.label))
    return {
        "order": order, "lines": lines, "by_line": by_line, "customer": customer,
        "owner": owner, "quote": quote, "actions": actions, **history,
        "may": {name: actor.can(f"sales.order.{name}")
                for name in ("edit", "fulfil", "refund", "create")},
        "allowed": {action: orders.allowed(action, order["status"])
                    for action in orders.WORKFLOW},
        "open_quantity": orders.open_quantity, "returnable": orders.returnable_quantity,
        "refund_methods": orders.REFUND_METHODS, "errors": {}, "values": {},
        "flash": request.query_params.get("done", ""), **_formatters()}


@get("/sales/orders/{order_id:int}", opt=perm("sales.order.view"))
async def order_detail(request: Request, order_id: FromPath[int]) -> Template:
    order = await visible_order(request, order_id, "sales.order.view")
    return Template("sales/order_detail.html", context=await _page_context(request, order))


async def _refused(request: Request, order_id: int, exc: orders.OrderError, form: str,
                   values: dict[str, str]) -> Template:
    """The order page again with the error beside the form that caused it."""
    order = await visible_order(request, order_id, "sales.order.view")
    context = await _page_context(request, order)
    context.update(errors={form: exc.message, f"{form}:{exc.field}": exc.message},
                   values=values, error_form=form)
    return Template("sales/order_detail.html", context=context,
                    status_code=409 if exc.status == 409 else 400)


def _line_quantities(data: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix) and v.strip()}


def _done(order_id: int, what: str) -> Redirect:
    return Redirect(f"/sales/orders/{order_id}?done={what}", status_code=303)


@post("/sales/orders/{order_id:int}/confirm", opt=perm("sales.order.edit"), status_code=303)
async def order_confirm(request: Request, order_id: FromPath[int]) -> Response:
    await visible_order(request, order_id, "sales.order.edit")
    try:
        await orders.confirm(request.app.state.rapport, current_actor(request), order_id,
                             ip=client_ip(request))
    except orders.OrderError as exc:
        return await _refused(request, order_id, exc, "status", {})
    return _done(order_id, "confirmed")


@post("/sales/orders/{order_id:int}/complete", opt=perm("sales.order.edit"), status_code=303)
async def order_complete(request: Request, order_id: FromPath[int]) -> Response:
    await visible_order(request, order_id, "sales.order.edit")
    try:
        await orders.complete(request.app.state.rapport, current_actor(request), order_id,
                              ip=client_ip(request))
    except orders.OrderError as exc:
        return await _refused(request, order_id, exc, "status", {})
    return _done(order_id, "completed")


@post("/sales/orders/{order_id:int}/shipments", opt=perm("sales.order.fulfil"),
      status_code=303)
async def order_ship(request: Request, order_id: FromPath[int]) -> Response:
    await visible_order(request, order_id, "sales.order.fulfil")
    data = await _form(request)
    try:
        await orders.ship(request.app.state.rapport, current_actor(request), order_id,
                          _line_quantities(data, "ship_"), carrier=data.get("carrier", ""),
                          tracking=data.get("tracking", ""), note=data.get("note", ""),
                          ip=client_ip(request))
    except orders.OrderError as exc:
        return await _refused(request, order_id, exc, "ship", data)
    return _done(order_id, "shipped")


@post("/sales/orders/{order_id:int}/cancel", opt=perm("sales.order.edit"), status_code=303)
async def order_cancel(request: Request, order_id: FromPath[int]) -> Response:
    """Cancel the whole order (``whole=1``) or the quantities given per line."""
    await visible_order(request, order_id, "sales.order.edit")
    data = await _form(request)
    whole = data.get("whole") == "1"
    try:
        await orders.cancel(request.app.state.rapport, current_actor(request), order_id,
                            reason=data.get("reason", ""),
                            quantities=None if whole else _line_quantities(data, "cancel_"),
                            ip=client_ip(request))
    except orders.OrderError as exc:
        return await _refused(request, order_id, exc, "cancel", data)
    return _done(order_id, "cancelled")


@post("/sales/orders/{order_id:int}/returns", opt=perm("sales.order.edit"), status_code=303)
async def order_return(request: Request, order_id: FromPath[int]) -> Response:
    await visible_order(request, order_id, "sales.order.edit")
    data = await _form(request)
    try:
        await orders.record_return(request.app.state.rapport, current_actor(request), order_id,
                                   _line_quantities(data, "return_"),
                                   reason=data.get("reason", ""), ip=client_ip(request))
    except orders.OrderError as exc:
        return await _refused(request, order_id, exc, "return", data)
    return _done(order_id, "returned")


@post("/sales/orders/{order_id:int}/returns/{return_id:int}/refunds",
      opt=perm("sales.order.refund"), status_code=303)
async def order_refund(request: Request, order_id: FromPath[int],
                       return_id: FromPath[int]) -> Response:
    await visible_order(request, order_id, "sales.order.refund")
    history = await orders.order_history(order_id)
    if return_id not in {r["id"] for r in history["returns"]}:
        raise NotFoundException("not found")
    data = await _form(request)
    try:
        await orders.refund(request.app.state.rapport, current_actor(request), return_id,
                            data.get("amount", ""), method=data.get("method", ""),
                            reference=data.get("reference", ""), note=data.get("note", ""),
                            ip=client_ip(request))
    except orders.OrderError as exc:
        return await _refused(request, order_id, exc, f"refund-{return_id}", data)
    return _done(order_id, "refunded")


# --- A customer's acceptance of a quote, recorded by staff -----------------------------------


async def _acceptance_page(request: Request, quote: dict[str, Any], values: dict[str, Any],
                           errors: dict[str, str], status_code: int = 200) -> Template:
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == quote["customer"]).first().run()
    return Template("sales/quote_accept.html", status_code=status_code, context={
        "quote": quote, "customer": customer, "values": values, "errors": errors,
        "expired": orders.quote_expired(quote), "ways": orders.ACCEPTED_VIA,
        **_formatters()})


async def _quote_for_acceptance(request: Request, quote_id: int) -> dict[str, Any]:
    query = scoped(Quote.select().where(Quote.id == quote_id), request.app.state.rapport,
                   current_actor(request), "sales.quote.edit", Quote)
    quote = await query.first().run()
    if quote is None:
        raise NotFoundException("not found")
    return quote


@get("/sales/quotes/{quote_id:int}/accept", opt=perm("sales.order.create"))
async def quote_accept_form(request: Request, quote_id: FromPath[int]) -> Template:
    quote = await _quote_for_acceptance(request, quote_id)
    return await _acceptance_page(request, quote, {"via": "phone", "at": datetime.now(UTC)},
                                  {})


@post("/sales/quotes/{quote_id:int}/accept", opt=perm("sales.order.create"), status_code=303)
async def quote_accept(request: Request, quote_id: FromPath[int]) -> Response:
    """Staff record that the customer accepted (who, how, when): the order is created."""
    quote = await _quote_for_acceptance(request, quote_id)
    data = await _form(request)
    errors: dict[str, str] = {}
    by = data.get("by", "").strip()
    if not by:
        errors["by"] = "say who accepted for the customer"
    via = data.get("via", "")
    if via not in orders.ACCEPTED_VIA or via == "portal":
        errors["via"] = "choose how the customer accepted"
    # Typed in the user's own time zone (core.local_time), stored in UTC.
    at = parse_local(data.get("at", ""), zone_of(current_actor(request))) or datetime.now(UTC)
    if not isinstance(at, datetime):
        errors["at"] = "give the date and time, e.g. 2026-12-07 14:30"
        at = datetime.now(UTC)
    elif at > datetime.now(UTC) + timedelta(minutes=5):
        errors["at"] = "cannot be in the future"
    if errors:
        return await _acceptance_page(request, quote, data, errors, 400)
    try:
        result = await quote_service.decide_quote(
            request.app.state.rapport, current_actor(request), quote, True,
            acceptance={"by": by, "via": via, "at": at}, ip=client_ip(request))
    except quote_service.QuoteError as exc:
        return await _acceptance_page(request, quote, data, {exc.field: exc.message},
                                      409 if exc.field in ("status", "valid_until") else 400)
    return Redirect(f"/sales/orders/{result['order']['id']}?done=accepted", status_code=303)


# --- The 360° panel --------------------------------------------------------------------------


@get("/sales/panels/customer/{customer_id:int}/orders", opt=perm("sales.order.view"),
     include_in_schema=False)
async def panel_orders(request: Request, customer_id: FromPath[int]) -> Template:
    """The customer's latest orders with their status (indexed on customer, id)."""
    if await visible_customer(request, customer_id) is None:
        raise NotFoundException("not found")
    actor = current_actor(request)
    query = scoped(SalesOrder.select(
        SalesOrder.id, SalesOrder.number, SalesOrder.status, SalesOrder.currency,
        SalesOrder.total_amount, SalesOrder.ordered_at).where(
        SalesOrder.customer == customer_id), request.app.state.rapport, actor,
        "sales.order.view", SalesOrder)
    rows = await query.order_by(SalesOrder.id, ascending=False).limit(10).run()
    counts: dict[int, int] = {}
    if rows:
        for line in await OrderLine.select(OrderLine.sales_order).where(
                OrderLine.sales_order.is_in([r["id"] for r in rows])).run():
            counts[line["sales_order"]] = counts.get(line["sales_order"], 0) + 1
    return Template("sales/panel_orders.html", context={
        "orders": rows, "line_counts": counts, "customer_id": customer_id,
        "may_create": actor.can("sales.order.create"), **_formatters()})


ROUTES = [order_list, order_new, customer_options, order_create, order_detail, order_confirm,
          order_complete, order_ship, order_cancel, order_return, order_refund,
          quote_accept_form, quote_accept, panel_orders]
