"""Staff pages of quotes: the list, the editor (any number of lines, live totals), a quote, its
printable view, sending and versions.

The editor works without JavaScript (its "Add line", "Remove" and "Update totals" buttons
submit the form, which comes back with the change); with htmx the same buttons change the page
in place and the totals follow every keystroke. Totals always come from the server's pricing
(``quotes.price_quote``): the browser never does arithmetic.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.permissions import current_actor, scoped
from core.portal.identities import has_portal_access
from plugins.sales import quotes as quote_service
from plugins.sales.controllers import customer_names, form_data, perm, settings_of, visible_one
from plugins.sales.opportunities_web import record_actions
from plugins.sales.tables import PriceBook, Product, Quote

PAGE = 50
MAX_ROWS = quote_service.MAX_LINES
FIRST_ROWS = 3  # empty lines a new quote starts with
_LINE_KEY = re.compile(r"^line(\d{1,4})_(product|source|source_ref|quantity|discount|tax|"
                       r"unit_price|description)$")


@get("/sales/quotes", opt=perm("sales.quote.view"))
async def quote_list(request: Request, after: FromQuery[int | None] = None) -> Template:
    query = scoped(Quote.select().where(Quote.superseded == False), request.app.state.rapport,  # noqa: E712
                   current_actor(request), "sales.quote.view", Quote)
    if after:
        query = query.where(Quote.id < after)
    rows = await query.order_by(Quote.id, ascending=False).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return Template("sales/quotes.html", context={
        "quotes": rows, "customers": await customer_names({r["customer"] for r in rows}),
        "next_after": rows[-1]["id"] if more else None})


# --- The editor ------------------------------------------------------------------------------


def row_indexes(data: dict[str, Any]) -> list[int]:
    """The line rows the form holds (their numbers need not be consecutive after removals)."""
    found = {int(m.group(1)) for key in data if (m := _LINE_KEY.match(key))}
    return sorted(found)[:MAX_ROWS]


def lines_from_form(data: dict[str, Any]) -> tuple[list[dict[str, str]], list[int]]:
    """The filled-in lines, and for each the row it came from (to put errors beside it)."""
    lines, rows = [], []
    for i in row_indexes(data):
        product = str(data.get(f"line{i}_product", "")).strip()
        source = str(data.get(f"line{i}_source", "")).strip()
        if not product and not source:
            continue
        lines.append({"product": product, "source": "product" if product else source,
                      "source_ref": data.get(f"line{i}_source_ref", ""),
                      "quantity": data.get(f"line{i}_quantity", "1"),
                      "discount_percent": data.get(f"line{i}_discount", "0"),
                      "tax_percent": data.get(f"line{i}_tax", "0"),
                      "unit_price": data.get(f"line{i}_unit_price", ""),
                      "description": data.get(f"line{i}_description", "")})
        rows.append(i)
    return lines, rows


def _errors_by_row(error: quote_service.QuoteError, rows: list[int]) -> dict[str, str]:
    """``lines[2].quantity`` -> ``{"line5": "quantity: ..."}`` when line 2 is row 5."""
    found = re.match(r"^lines\[(\d+)\](?:\.children\[\d+\])*\.?(\w*)", error.field)
    if found and 0 < int(found.group(1)) <= len(rows):
        what = found.group(2).replace("_", " ") or "line"
        return {f"line{rows[int(found.group(1)) - 1]}": f"{what}: {error.message}"}
    return {error.field: error.message}


def _quote_data(data: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    lines, rows = lines_from_form(data)
    return {**data, "lines": lines}, rows


async def _preview(request: Request, data: dict[str, Any], *, quote: dict[str, Any] | None
                   ) -> dict[str, Any]:
    """The live totals of what the form holds: priced by the server, nets per row."""
    payload, rows = _quote_data(data)
    if quote is not None:
        payload.update(customer=quote["customer"], opportunity=quote["opportunity"])
    if not payload["lines"]:
        return {"preview": None, "preview_error": None, "nets": {}}
    try:
        priced = await quote_service.price_quote(
            request.app.state.rapport, current_actor(request), payload,
            quote_id=quote["id"] if quote else None, preview=True)
    except quote_service.QuoteError as exc:
        message = next(iter(_errors_by_row(exc, rows).items()))
        where = message[0].replace("line", "line ") if message[0].startswith("line") else ""
        return {"preview": None, "nets": {},
                "preview_error": f"{where}: {message[1]}" if where else message[1]}
    nets: dict[int, Any] = {}
    top = [line for line in priced.lines if line["parent_position"] is None]
    for row, line in zip(rows, top, strict=False):
        parts = [p for p in priced.lines if p["parent_position"] == line["position"]]
        nets[row] = sum((p["net_amount"] for p in parts), line["net_amount"])
    return {"preview": priced, "preview_error": None, "nets": nets}


async def editor(request: Request, values: dict[str, Any], errors: dict[str, str], *,
                 quote: dict[str, Any] | None = None, status: int = 200,
                 extra_row: bool = False, drop_row: int | None = None) -> Template:
    """The quote editor, new (``quote`` None) or a draft's, with what was typed kept."""
    rapport = request.app.state.rapport
    products = await Product.select(Product.id, Product.name, Product.sku).where(
        Product.active == True).order_by(Product.name).limit(500).run()  # noqa: E712
    books = await PriceBook.select().where(PriceBook.active == True).run()  # noqa: E712
    rows = [i for i in row_indexes(values) if i != drop_row]
    if drop_row is not None:
        values = {k: v for k, v in values.items() if not k.startswith(f"line{drop_row}_")}
    if not rows:
        rows = list(range(1, FIRST_ROWS + 1))
    if extra_row:
        rows.append(max(rows) + 1)
    customer_id = quote["customer"] if quote else values.get("customer")
    customer = None
    if str(customer_id or "").isdigit():
        customer = await scoped(Customer.select(Customer.id, Customer.name).where(
            Customer.id == int(customer_id)), rapport, current_actor(request),
            "core.customer.view", Customer).first().run()
    suggested = []
    on_quote = {int(v) for k, v in values.items()
                if k.startswith("line") and k.endswith("_product") and str(v).isdigit()}
    if customer or on_quote:
        from plugins.sales import suggestions

        owned = set(on_quote)
        if customer:
            owned |= await suggestions.bought_by(customer["id"])
        suggested = await suggestions.suggest(owned)
    preview = await _preview(request, values, quote=quote)
    return Template("sales/quote_form.html", status_code=status, context={
        "values": values, "errors": errors, "products": products, "books": books,
        "sources": list(quote_service.line_sources(rapport).values()), "rows": rows,
        "next_row": max(rows) + 1, "suggestions": suggested, "quote": quote,
        "customer": customer, "action": f"/sales/quotes/{quote['id']}/edit" if quote
        else "/sales/quotes", **preview})


def _editor_action(data: dict[str, Any]) -> tuple[str, int | None]:
    """What a no-JavaScript editor button asked for: add a line, remove one, re-total."""
    action = str(data.get("editor_action") or "")
    if action.startswith("remove:") and action[7:].isdigit():
        return "remove", int(action[7:])
    return action, None


@get("/sales/quotes/new", opt=perm("sales.quote.create"))
async def quote_new(request: Request, customer: FromQuery[int | None] = None,
                    opportunity: FromQuery[int | None] = None) -> Template:
    return await editor(request, {"customer": customer or "", "opportunity": opportunity or "",
                                  "currency": settings_of(request).default_currency}, {})


def customer_value(data: dict[str, Any]) -> str:
    """The picked customer (a radio of the picker), else the number typed without JavaScript."""
    return str(data.get("customer") or data.get("customer_number") or "").strip()


@post("/sales/quotes", opt=perm("sales.quote.create"), status_code=303)
async def quote_create(request: Request) -> Response:
    data = await form_data(request)
    data["customer"] = customer_value(data)
    action, row = _editor_action(data)
    if action in ("add_line", "remove", "preview"):
        return await editor(request, data, {}, extra_row=action == "add_line", drop_row=row)
    rapport = request.app.state.rapport
    actor = current_actor(request)
    if not data["customer"].isdigit() or await scoped(
            Customer.select(Customer.id).where(Customer.id == int(data["customer"])),
            rapport, actor, "core.customer.view", Customer).first().run() is None:
        return await editor(request, data, {"customer": "choose a customer you can see"},
                            status=400)
    payload, rows = _quote_data(data)
    try:
        created = await quote_service.create_quote(rapport, actor, payload,
                                                   ip=client_ip(request))
    except quote_service.QuoteError as exc:
        return await editor(request, data, _errors_by_row(exc, rows), status=400)
    return Redirect(f"/sales/quotes/{created['id']}", status_code=303)


def _draft_values(quote: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "currency": quote["currency"], "price_book": str(quote["price_book"] or ""),
        "valid_until": quote["valid_until"].isoformat() if quote["valid_until"] else "",
        "notes": quote["notes"]}
    top = [line for line in lines if line["parent_position"] is None]
    for i, line in enumerate(top, start=1):
        source = line["source"] or "product"
        values.update({
            f"line{i}_product": str(line["product"] or "") if source == "product" else "",
            f"line{i}_source": "" if source == "product" else source,
            f"line{i}_source_ref": line["source_ref"],
            f"line{i}_quantity": str(line["quantity"]),
            f"line{i}_discount": str(line["discount_percent"]),
            f"line{i}_tax": str(line["tax_percent"]),
            # A source's price and text are resolved again; a typed price is kept.
            f"line{i}_unit_price": str(line["unit_price"]) if source == "product" else "",
            f"line{i}_description": ""})
    return values


@get("/sales/quotes/{quote_id:int}/edit", opt=perm("sales.quote.edit"))
async def quote_edit(request: Request, quote_id: FromPath[int]) -> Template:
    quote = await visible_one(request, Quote, "sales.quote.edit", quote_id)
    if quote["status"] != "draft" or quote["superseded"]:
        return Template("sales/quote_locked.html", status_code=409, context={"quote": quote})
    lines = await quote_service.quote_lines(quote_id)
    return await editor(request, _draft_values(quote, lines), {}, quote=quote)


@post("/sales/quotes/{quote_id:int}/edit", opt=perm("sales.quote.edit"), status_code=303)
async def quote_save(request: Request, quote_id: FromPath[int]) -> Response:
    quote = await visible_one(request, Quote, "sales.quote.edit", quote_id)
    data = await form_data(request)
    action, row = _editor_action(data)
    if action in ("add_line", "remove", "preview"):
        return await editor(request, data, {}, quote=quote, extra_row=action == "add_line",
                            drop_row=row)
    payload, rows = _quote_data(data)
    try:
        await quote_service.update_draft(request.app.state.rapport, current_actor(request),
                                         quote, payload, ip=client_ip(request))
    except quote_service.QuoteError as exc:
        status = 409 if exc.field == "status" else 400
        return await editor(request, data, _errors_by_row(exc, rows), quote=quote,
                            status=status)
    return Redirect(f"/sales/quotes/{quote_id}", status_code=303)


# --- htmx fragments of the editor ------------------------------------------------------------


@get("/sales/quotes/editor/line", opt=perm("sales.quote.create"), include_in_schema=False)
async def editor_line(request: Request, index: FromQuery[int] = 1) -> Template:
    """One empty line (appended by "Add line"), and the button again for the next one."""
    index = max(1, min(index, 9999))
    products = await Product.select(Product.id, Product.name, Product.sku).where(
        Product.active == True).order_by(Product.name).limit(500).run()  # noqa: E712
    return Template("sales/_quote_line_added.html", context={
        "i": index, "values": {}, "errors": {}, "products": products, "nets": {},
        "sources": list(quote_service.line_sources(request.app.state.rapport).values()),
        "next_row": index + 1})


@post("/sales/quotes/editor/remove", opt=perm("sales.quote.create"), include_in_schema=False)
async def editor_remove(request: Request) -> Response:
    """The removed line's element goes (hx-swap="delete"); the totals then refresh."""
    return Response("", status_code=200, media_type="text/html",
                    headers={"HX-Trigger-After-Swap": "quote-lines-changed"})


@post("/sales/quotes/preview", opt=perm("sales.quote.create"), include_in_schema=False)
async def editor_preview(request: Request, quote: FromQuery[int | None] = None) -> Template:
    """The totals of what the editor holds, and each line's net (out of band)."""
    data = await form_data(request)
    data["customer"] = customer_value(data)
    draft = await visible_one(request, Quote, "sales.quote.edit", quote) if quote else None
    context = await _preview(request, data, quote=draft)
    return Template("sales/_quote_totals.html", context={
        **context, "rows": row_indexes(data), "values": data, "oob": True,
        "currency": (context["preview"].currency if context["preview"] else
                     data.get("currency", ""))})


# --- A quote ---------------------------------------------------------------------------------


async def quote_context(quote: dict[str, Any]) -> dict[str, Any]:
    lines = quote_service.display_lines(await quote_service.quote_lines(quote["id"]))
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == quote["customer"]).first().run()
    versions = await Quote.select(Quote.id, Quote.version, Quote.status).where(
        Quote.number == quote["number"]).order_by(Quote.version).run()
    return {"quote": quote, "lines": lines, "customer": customer, "versions": versions,
            "adjustments": await quote_service.quote_adjustments(quote["id"])}


@get("/sales/quotes/{quote_id:int}", opt=perm("sales.quote.view"))
async def quote_detail(request: Request, quote_id: FromPath[int]) -> Template:
    quote = await visible_one(request, Quote, "sales.quote.view", quote_id)
    context = await quote_context(quote)
    return Template("sales/quote_detail.html", context={
        **context, "can_edit": current_actor(request).can("sales.quote.edit"),
        # A quote is sent to the portal: warn when this customer cannot sign in to it.
        "portal_access": await has_portal_access(quote["customer"]),
        "customer_kind": (await Customer.select(Customer.kind).where(
            Customer.id == quote["customer"]).first().run() or {}).get("kind"),
        "actions": await record_actions(request, "sales.quote", quote)})


@get("/sales/quotes/{quote_id:int}/print", opt=perm("sales.quote.view"))
async def quote_print(request: Request, quote_id: FromPath[int]) -> Template:
    quote = await visible_one(request, Quote, "sales.quote.view", quote_id)
    return Template("sales/quote_print.html", context=await quote_context(quote))


@post("/sales/quotes/{quote_id:int}/send", opt=perm("sales.quote.edit"), status_code=303)
async def quote_send(request: Request, quote_id: FromPath[int]) -> Response:
    quote = await visible_one(request, Quote, "sales.quote.edit", quote_id)
    try:
        await quote_service.send_quote(current_actor(request), quote, ip=client_ip(request))
    except quote_service.QuoteError as exc:
        return Response(exc.message, status_code=400, media_type="text/plain")
    return Redirect(f"/sales/quotes/{quote_id}", status_code=303)


@post("/sales/quotes/{quote_id:int}/version", opt=perm("sales.quote.edit"), status_code=303)
async def quote_version(request: Request, quote_id: FromPath[int]) -> Response:
    quote = await visible_one(request, Quote, "sales.quote.edit", quote_id)
    row = await quote_service.new_version(current_actor(request), quote, ip=client_ip(request))
    return Redirect(f"/sales/quotes/{row['id']}", status_code=303)


ROUTES = [quote_list, quote_new, quote_create, quote_edit, quote_save, editor_line,
          editor_remove, editor_preview, quote_detail, quote_print, quote_send, quote_version]
