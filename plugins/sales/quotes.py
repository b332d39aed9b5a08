"""Quotes and orders: exact decimal pricing, versions, the customer's decision, and orders.

Money is ``Decimal`` throughout and rounded per currency (``Money.rounded``) at the line,
so the printed lines always add up to the printed totals.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core import records, references
from core.customers.tables import Customer
from core.money import Money, format_money
from core.permissions import Actor
from plugins.sales import hookspecs as sales_hookspecs
from plugins.sales.hookspecs import LineSource, QuoteContext
from plugins.sales.tables import (
    Opportunity,
    PriceBook,
    Product,
    ProductPrice,
    Quote,
    QuoteAdjustment,
    QuoteLine,
)

if TYPE_CHECKING:
    from core.app import Rapport

HUNDRED = Decimal(100)
log = logging.getLogger(__name__)


class QuoteError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PricedLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    tax_percent: Decimal
    gross: Decimal  # quantity x unit price, rounded
    net: Decimal  # after discount, rounded
    tax: Decimal  # on the net amount, rounded


def _round(amount: Decimal, currency: str) -> Decimal:
    return Money(amount, currency).rounded().amount


def price_line(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal,
               tax_percent: Decimal, currency: str, description: str = "") -> PricedLine:
    gross = _round(quantity * unit_price, currency)
    net = _round(quantity * unit_price * (HUNDRED - discount_percent) / HUNDRED, currency)
    tax = _round(net * tax_percent / HUNDRED, currency)
    return PricedLine(description, quantity, unit_price, discount_percent, tax_percent,
                      gross, net, tax)


@dataclass(frozen=True)
class Totals:
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    adjustments: Money | None = None  # what other plugins' adjustments took off the total


def totals(lines: list[PricedLine], currency: str,
           adjustments: Decimal = Decimal(0)) -> Totals:
    zero = Decimal(0)
    subtotal = sum((line.gross for line in lines), zero)
    net = sum((line.net for line in lines), zero)
    tax = sum((line.tax for line in lines), zero)
    return Totals(Money(subtotal, currency), Money(subtotal - net, currency),
                  Money(tax, currency), Money(net + tax - adjustments, currency),
                  Money(adjustments, currency))


def _decimal(raw: Any, field: str, *, low: Decimal | None = None,
             high: Decimal | None = None, default: str = "0") -> Decimal:
    if isinstance(raw, float):
        raw = str(raw)
    try:
        value = Decimal(str(raw).strip() if raw not in (None, "") else default)
    except InvalidOperation:
        raise QuoteError(field, "is not a number") from None
    if not value.is_finite():
        raise QuoteError(field, "is not a number")
    if low is not None and value < low:
        raise QuoteError(field, f"must be at least {low}")
    if high is not None and value > high:
        raise QuoteError(field, f"must be at most {high}")
    return value


def _given(value: Any) -> bool:
    return value not in (None, "")


# --- Line sources (products, and other plugins' through the hook) ----------------------------

MAX_LINES = 200  # lines of one quote, parts of a bill of materials included
MAX_DEPTH = 3  # a part of a part of a part
MAX_CONTEXT = 20_000  # characters of a line's JSON context


def _ensure_hookspecs(rapport: Rapport) -> None:
    """Core's loader adds sales' hookspecs when the plugin loads; an app built another way
    (a test registering modules by hand) gets them here."""
    if getattr(rapport.pm.hook, "sales_quote_adjustments", None) is None or \
            rapport.pm.hook.sales_quote_adjustments.spec is None:
        rapport.pm.add_hookspecs(sales_hookspecs)


def _field(item: Any, name: str, default: Any = None) -> Any:
    """A key of a dict or an attribute of an object: plugins may return either."""
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _as_source(item: Any) -> LineSource:
    if isinstance(item, LineSource):
        return item
    return LineSource(str(_field(item, "id")), str(_field(item, "label") or _field(item, "id")),
                      _field(item, "resolve"))


def line_sources(rapport: Rapport, context: QuoteContext | None = None) -> dict[str, LineSource]:
    _ensure_hookspecs(rapport)
    found = rapport.collect("sales_quote_line_sources", rapport=rapport, context=context)
    return {s.id: s for s in map(_as_source, found)}


def _takes_context(function: Any) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "context" or p.kind is inspect.Parameter.VAR_KEYWORD
               for p in parameters)


async def _resolve_offer(rapport: Rapport, source: LineSource, ref: str, currency: str,
                         context: QuoteContext | None) -> Any:
    if _takes_context(source.resolve):
        found = source.resolve(rapport, ref, currency, context=context)
    else:  # a resolver written before the context existed
        found = source.resolve(rapport, ref, currency)
    return await found if inspect.isawaitable(found) else found


async def _catalogue_price(product_id: int, price_book: int | None, currency: str) -> Decimal | None:
    query = ProductPrice.select(ProductPrice.unit_price).where(
        (ProductPrice.product == product_id) & (ProductPrice.currency == currency))
    if price_book is not None:
        query = query.where(ProductPrice.price_book == price_book)
    else:
        query = query.where(ProductPrice.price_book.is_default == True)  # noqa: E712
    row = await query.first().run()
    return None if row is None else Decimal(str(row["unit_price"]))


async def _catalogue_product(product: Any, sku: str, where: str) -> dict[str, Any] | None:
    """The product a line names by id (which must exist) or by SKU (None when unknown)."""
    if _given(product):
        try:
            product_id = int(product)
        except (TypeError, ValueError):
            raise QuoteError(f"{where}.product", "choose a product") from None
        found = await Product.select(Product.id, Product.name, Product.sku).where(
            Product.id == product_id).first().run()
        if found is None:
            raise QuoteError(f"{where}.product", "no such product")
        return found
    if sku:
        return await Product.select(Product.id, Product.name, Product.sku).where(
            Product.sku == sku).first().run()
    return None


def _context_json(value: Any, where: str) -> str:
    if value in (None, "", {}):
        return ""
    if not isinstance(value, Mapping):
        raise QuoteError(f"{where}.context", "must be an object of names and values")
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        raise QuoteError(f"{where}.context", "cannot be stored as JSON") from None
    if len(text) > MAX_CONTEXT:
        raise QuoteError(f"{where}.context", f"is longer than {MAX_CONTEXT:,} characters")
    return text


async def resolve_lines(rapport: Rapport, raw_lines: list[dict[str, Any]], currency: str,
                        price_book: int | None, *,
                        context: QuoteContext | None = None) -> list[dict[str, Any]]:
    """Turn submitted lines into priced rows; name the offending line and field on error.

    A line from another plugin's source may bring parts (a bill of materials): they follow
    their line, with ``parent_position`` set and quantities multiplied by the line's.
    """
    if not raw_lines:
        raise QuoteError("lines", "add at least one line")
    resolved: list[dict[str, Any]] = []
    sources: dict[str, LineSource] | None = None
    for i, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, Mapping):
            raise QuoteError(f"lines[{i}]", "must be an object")
        source = str(raw.get("source") or "product")
        if source != "product" and sources is None:
            sources = line_sources(rapport, context)
        await _resolve_line(rapport, raw, f"lines[{i}]", source, sources or {}, currency,
                            price_book, context, resolved, parent=None, times=Decimal(1),
                            depth=1)
    return resolved


async def _resolve_line(rapport: Rapport, raw: Mapping[str, Any], where: str, source: str,
                        sources: dict[str, LineSource], currency: str, price_book: int | None,
                        context: QuoteContext | None, resolved: list[dict[str, Any]], *,
                        parent: int | None, times: Decimal, depth: int) -> None:
    if len(resolved) >= MAX_LINES:
        raise QuoteError("lines", f"a quote has at most {MAX_LINES} lines")
    quantity = None
    if _given(_field(raw, "quantity")):
        quantity = _decimal(_field(raw, "quantity"), f"{where}.quantity", low=Decimal("0.001"))
    ref = str(_field(raw, "source_ref") or "")
    offer: Any = {}
    if source != "product" and parent is None:
        if source not in sources:
            raise QuoteError(f"{where}.source", f"unknown line source {source!r}")
        line_context = replace(context, quantity=quantity or Decimal(1)) if context else None
        try:
            offer = await _resolve_offer(rapport, sources[source], ref, currency, line_context)
        except LookupError:
            raise QuoteError(f"{where}.source_ref", "not found") from None
        if offer is None:
            raise QuoteError(f"{where}.source_ref", "not found")
    elif parent is not None:
        offer, raw = raw, {}  # a part: everything comes from the source's offer

    def pick(name: str) -> Any:
        """The value typed on the line wins over what the source offered."""
        value = _field(raw, name)
        return value if _given(value) else _field(offer, name)

    if quantity is None:
        quantity = _decimal(_field(offer, "quantity"), f"{where}.quantity",
                            low=Decimal("0.001"), default="1")
    quantity = quantity * times
    discount = _decimal(pick("discount_percent"), f"{where}.discount_percent", low=Decimal(0),
                        high=HUNDRED)
    tax = _decimal(pick("tax_percent"), f"{where}.tax_percent", low=Decimal(0), high=HUNDRED)
    sku = str(pick("sku") or "").strip()[:64]
    product = await _catalogue_product(pick("product"), sku, where)
    if source == "product" and product is None:
        raise QuoteError(f"{where}.product", "choose a product")
    description = str(pick("description") or "").strip() or (product["name"] if product else "")
    unit_price = None
    if _given(pick("unit_price")):
        unit_price = _decimal(pick("unit_price"), f"{where}.unit_price", low=Decimal(0))
    elif product is not None:
        unit_price = await _catalogue_price(product["id"], price_book, currency)
    if unit_price is None:
        raise QuoteError(f"{where}.unit_price",
                         f"the product has no {currency} price in this price book"
                         if product else "give the unit price")
    if not description:
        raise QuoteError(f"{where}.description", "describe the line")
    priced = price_line(quantity, unit_price, discount, tax, currency, description[:500])
    position = len(resolved) + 1
    resolved.append({
        "position": position, "parent_position": parent,
        "product": product["id"] if product else None, "source": source[:64],
        "source_ref": (ref or str(_field(offer, "source_ref") or ""))[:64],
        "sku": sku or (product["sku"] if product else ""), "description": priced.description,
        "quantity": quantity, "unit_price": unit_price, "discount_percent": discount,
        "tax_percent": tax, "net_amount": priced.net,
        "context": _context_json(_field(offer, "context"), where), "_priced": priced})
    children = _field(offer, "children") or []
    if children and depth >= MAX_DEPTH:
        raise QuoteError(f"{where}.children", f"parts nest at most {MAX_DEPTH} deep")
    for j, child in enumerate(children, start=1):
        await _resolve_line(rapport, child, f"{where}.children[{j}]", source, sources,
                            currency, price_book, context, resolved, parent=position,
                            times=quantity, depth=depth + 1)


# --- Adjustments (other plugins' discount lines, bounded) ------------------------------------


def _public_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """A line as adjustment hooks see it: stored columns, context parsed."""
    row = {k: v for k, v in line.items() if not k.startswith("_") and k != "id"}
    row["context"] = parse_context(row.get("context"))
    return row


def bound_adjustments(offers: list[Any], before: Decimal, currency: str) -> list[dict[str, Any]]:
    """Adjustments as stored: named, positive, rounded, and cut so that together they never
    take the total below zero (a cut one says so). Malformed offers are skipped and logged:
    one plugin's mistake must not stop a quote."""
    remaining = before
    kept: list[dict[str, Any]] = []
    for offer in offers:
        label = str(_field(offer, "label") or "").strip()
        try:
            amount = _round(Decimal(str(_field(offer, "amount"))), currency)
        except (InvalidOperation, ValueError, TypeError):
            amount = Decimal(-1)
        if not label or not amount.is_finite() or amount <= 0:
            log.warning("quote adjustment skipped (needs a label and a positive amount): %r",
                        offer)
            continue
        explanation = str(_field(offer, "explanation") or "").strip()
        taken = min(amount, remaining)
        if taken <= 0:
            break
        if taken < amount:
            explanation = (explanation + " " if explanation else "") + \
                f"(limited to the quote's total; {format_money(amount, currency)} offered)"
        remaining -= taken
        kept.append({
            "position": len(kept) + 1, "source": str(_field(offer, "source") or "")[:64],
            "source_ref": str(_field(offer, "source_ref") or "")[:64], "label": label[:200],
            "explanation": explanation[:500], "amount": taken,
            "context": _context_json(_field(offer, "context"), "adjustment")})
    return kept


async def adjustments_for(rapport: Rapport, quote: Mapping[str, Any],
                          lines: list[dict[str, Any]], context: QuoteContext) -> list[dict]:
    _ensure_hookspecs(rapport)
    currency = quote["currency"]
    before = totals([line["_priced"] for line in lines], currency).total.amount
    try:
        offers = await rapport.acollect(
            "sales_quote_adjustments", rapport=rapport, quote=dict(quote),
            lines=[_public_line(line) for line in lines], context=context)
    except Exception:  # a failing plugin: quote without its adjustment, and say why in the log
        log.exception("a sales_quote_adjustments implementation failed")
        offers = []
    return bound_adjustments(offers, before, currency)


# --- Pricing and storing quotes --------------------------------------------------------------


@dataclass
class PricedQuote:
    """Everything a quote is before it is stored: for creation, editing and live totals."""

    currency: str
    price_book: int | None
    valid_until: date | None
    lines: list[dict[str, Any]]
    adjustments: list[dict[str, Any]]
    totals: Totals
    context: QuoteContext

    def total_values(self) -> dict[str, Decimal]:
        t = self.totals
        return {"subtotal_amount": t.subtotal.amount, "discount_amount": t.discount.amount,
                "tax_amount": t.tax.amount, "adjustment_amount": t.adjustments.amount,
                "total_amount": t.total.amount}


async def price_quote(rapport: Rapport, actor: Actor | None, data: Mapping[str, Any], *,
                      quote_id: int | None = None, preview: bool = False) -> PricedQuote:
    """Check and price a quote as submitted (customer, currency, price book, lines), with the
    adjustments other plugins offer. Changes nothing; raises :class:`QuoteError`.

    A ``preview`` (the editor's live totals) may have no customer yet: then no adjustments.
    """
    customer = None
    try:
        customer = int(data.get("customer"))
    except (TypeError, ValueError):
        if not preview:
            raise QuoteError("customer", "choose the customer") from None
    currency = str(data.get("currency") or rapport.plugin_settings("sales").default_currency)
    try:
        currency = Money(Decimal(0), currency).currency
    except ValueError:
        raise QuoteError("currency", "is not an ISO 4217 currency code") from None
    price_book = data.get("price_book") or None
    if price_book is not None:
        try:
            price_book = int(price_book)
        except (TypeError, ValueError):
            raise QuoteError("price_book", "no such price book") from None
        if not await PriceBook.exists().where(PriceBook.id == price_book).run():
            raise QuoteError("price_book", "no such price book")
    found = None
    if customer is not None:
        found = await Customer.select(Customer.name).where(Customer.id == customer).first().run()
        if found is None and not preview:
            raise QuoteError("customer", "no such customer")
    customer = customer if found is not None else None
    context = QuoteContext(customer_id=customer, currency=currency, price_book_id=price_book,
                           user=actor, quote_id=quote_id,
                           customer_name=found["name"] if found else "")
    lines = await resolve_lines(rapport, list(data.get("lines") or []), currency, price_book,
                                context=context)
    valid_until = None
    if data.get("valid_until"):
        from plugins.sales.pipeline import OpportunityError, parse_date

        try:
            valid_until = parse_date(data["valid_until"], "valid_until")
        except OpportunityError as exc:
            raise QuoteError("valid_until", exc.message) from None
    quote = {"id": quote_id, "customer": customer, "currency": currency,
               "price_book": price_book, "valid_until": valid_until,
               "opportunity": data.get("opportunity") or None}
    adjustments = [] if customer is None else await adjustments_for(rapport, quote, lines,
                                                                     context)
    taken = sum((a["amount"] for a in adjustments), Decimal(0))
    return PricedQuote(currency, price_book, valid_until, lines, adjustments,
                       totals([line["_priced"] for line in lines], currency, taken), context)


async def _store_lines(quote_id: int, lines: list[dict[str, Any]],
                       adjustments: list[dict[str, Any]] = ()) -> None:
    await QuoteLine.insert(*[
        QuoteLine(quote=quote_id, **{k: v for k, v in line.items() if not k.startswith("_")})
        for line in lines
    ]).run()
    if adjustments:
        await QuoteAdjustment.insert(*[QuoteAdjustment(quote=quote_id, **a)
                                       for a in adjustments]).run()


def _given_id(field: str, raw: Any) -> int | None:
    """An id the client sent (``None`` for none); anything else is refused naming ``field``."""
    if not _given(raw):
        return None
    if isinstance(raw, bool) or not str(raw).strip().isdigit():
        raise QuoteError(field, "must be a record id")
    return int(str(raw).strip())


async def create_quote(rapport: Rapport, actor: Actor, data: dict[str, Any], *,
                       ip: str = "") -> dict[str, Any]:
    priced = await price_quote(rapport, actor, data)
    staff_id = actor.id if actor is not None and actor.kind == "staff" else None
    try:  # every reference within the author's reach (core.references)
        await references.record(rapport, actor, "customer", Customer,
                                priced.context.customer_id, "core.customer.view")
        deal = await references.record(rapport, actor, "opportunity", Opportunity,
                                       _given_id("opportunity", data.get("opportunity")),
                                       "sales.opportunity.view", label="deal")
        owner = await references.owner(rapport, actor, "owner",
                                       _given_id("owner", data.get("owner")) or staff_id,
                                       "sales.quote.create")
        team = await references.team(rapport, actor, "team",
                                     _given_id("team", data.get("team")), "sales.quote.create")
    except references.ReferenceRefused as exc:
        raise QuoteError(exc.field, exc.message) from None
    async with Quote._meta.db.transaction():
        row = await records.create(actor, Quote, {
            "number": "", "customer": priced.context.customer_id,
            "opportunity": deal, "owner": owner, "team": team, "currency": priced.currency,
            "price_book": priced.price_book, "valid_until": priced.valid_until,
            "notes": str(data.get("notes") or "")[:5000], **priced.total_values(),
        }, ip=ip)
        number = f"Q-{row['id']:06d}"
        await Quote.update({Quote.number: number}).where(Quote.id == row["id"]).run()
        await _store_lines(row["id"], priced.lines, priced.adjustments)
    return {**row, "number": number}


async def update_draft(rapport: Rapport, actor: Actor, quote: dict[str, Any],
                       data: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Replace a draft's lines, price book, validity and notes (its customer stays); the
    adjustments are offered again. A sent quote changes only through a new version."""
    if quote["status"] != "draft" or quote["superseded"]:
        raise QuoteError("status", "only the latest draft can be changed; make a new version")
    priced = await price_quote(rapport, actor, {**data, "customer": quote["customer"],
                                                "opportunity": quote["opportunity"]},
                               quote_id=quote["id"])
    async with Quote._meta.db.transaction():
        await QuoteLine.delete().where(QuoteLine.quote == quote["id"]).run()
        await QuoteAdjustment.delete().where(QuoteAdjustment.quote == quote["id"]).run()
        row = await records.update(actor, Quote, quote["id"], {
            "currency": priced.currency, "price_book": priced.price_book,
            "valid_until": priced.valid_until, "notes": str(data.get("notes") or "")[:5000],
            **priced.total_values()},
            ip=ip, summary=f"lines changed ({len(priced.lines)} lines)")
        await _store_lines(quote["id"], priced.lines, priced.adjustments)
    return row


async def quote_lines(quote_id: int) -> list[dict[str, Any]]:
    return await QuoteLine.select().where(QuoteLine.quote == quote_id).order_by(
        QuoteLine.position).run()


async def quote_adjustments(quote_id: int) -> list[dict[str, Any]]:
    return await QuoteAdjustment.select().where(QuoteAdjustment.quote == quote_id).order_by(
        QuoteAdjustment.position).run()


def parse_context(text: Any) -> dict[str, Any]:
    """A stored line context back as a dict ({} when none or unreadable)."""
    if isinstance(text, Mapping):
        return dict(text)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    return str(value)


def display_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines for a page: each with ``configuration``, its context as (label, value) pairs
    (keys starting with an underscore are the plugin's own and not shown)."""
    shown = []
    for line in lines:
        pairs = [(str(k).replace("_", " ").strip().capitalize(), _shown(v))
                 for k, v in parse_context(line.get("context")).items()
                 if not str(k).startswith("_")]
        shown.append({**line, "configuration": pairs})
    return shown


async def new_version(actor: Actor, quote: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Copy a quote as its next version (a draft to edit); the old one stays as it was sent."""
    lines = await quote_lines(quote["id"])
    adjustments = await quote_adjustments(quote["id"])
    async with Quote._meta.db.transaction():
        await Quote.update({Quote.superseded: True}).where(Quote.number == quote["number"]).run()
        latest = await Quote.select(Quote.version).where(Quote.number == quote["number"]).order_by(
            Quote.version, ascending=False).first().run()
        values = {k: v for k, v in quote.items() if k not in ("id", "created_at")}
        values.update(version=latest["version"] + 1, superseded=False, status="draft",
                      sent_at=None, decided_at=None, decline_reason="")
        row = await records.create(actor, Quote, values, ip=ip,
                                   summary=f"version {values['version']} of {quote['number']}")
        if lines:
            await QuoteLine.insert(*[
                QuoteLine(**{**{k: v for k, v in line.items() if k != "id"}, "quote": row["id"]})
                for line in lines
            ]).run()
        if adjustments:
            await QuoteAdjustment.insert(*[
                QuoteAdjustment(**{**{k: v for k, v in a.items() if k != "id"},
                                   "quote": row["id"]})
                for a in adjustments
            ]).run()
    return row


# --- A customer asks for a quote (portal) ----------------------------------------------------


async def request_quote(rapport: Rapport, actor: Actor, customer_id: int,
                        raw_lines: list[dict[str, Any]], *, note: str = "",
                        ip: str = "") -> dict[str, Any]:
    """A portal customer asks for a quote for lines a plugin supplies (a configuration): it
    reaches staff as an opportunity with a draft quote of those lines attached, owned like
    the customer, and ``sales.quote.requested`` is published in the same transaction."""
    from plugins.sales import pipeline

    customer = await Customer.select(Customer.id, Customer.name, Customer.owner,
                                     Customer.team).where(Customer.id == customer_id).first().run()
    if customer is None:
        raise QuoteError("customer", "no such customer")
    data = {"customer": customer_id, "lines": raw_lines}
    priced = await price_quote(rapport, actor, data)
    first = priced.lines[0]["description"]
    more = len([li for li in priced.lines if li["parent_position"] is None]) - 1
    name = f"Quote request: {first}" + (f" and {more} more" if more > 0 else "")
    note = " ".join(str(note or "").split())[:2000]
    async with Quote._meta.db.transaction():
        deal = await pipeline.create_opportunity(rapport, actor, {
            "name": name[:300], "customer": customer_id, "amount": str(priced.totals.total.amount),
            "currency": priced.currency, "owner": customer["owner"], "team": customer["team"],
        }, ip=ip)
        row = await records.create(actor, Quote, {
            "number": "", "customer": customer_id, "opportunity": deal["id"],
            "owner": customer["owner"], "team": customer["team"], "currency": priced.currency,
            "price_book": None, "valid_until": None,
            "notes": f"Requested by the customer in the portal. {note}".strip()[:5000],
            **priced.total_values(),
        }, ip=ip, summary="requested by the customer in the portal")
        number = f"Q-{row['id']:06d}"
        await Quote.update({Quote.number: number}).where(Quote.id == row["id"]).run()
        await _store_lines(row["id"], priced.lines, priced.adjustments)
        await rapport.publish("sales.quote.requested", {
            "quote_id": row["id"], "number": number, "opportunity_id": deal["id"],
            "customer_id": customer_id, "owner_id": customer["owner"],
            "currency": priced.currency, "total": str(priced.totals.total.amount),
            "note": note, "lines": [event_line(line) for line in priced.lines],
        }, actor_id=None)
    return {**row, "number": number, "opportunity": deal["id"]}


def event_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """A quote line as events carry it (amounts as strings, context parsed)."""
    return {"position": line["position"], "parent_position": line.get("parent_position"),
            "product_id": line.get("product"), "sku": line.get("sku", ""),
            "description": line["description"], "quantity": str(line["quantity"]),
            "unit_price": str(line["unit_price"]),
            "discount_percent": str(line["discount_percent"]),
            "tax_percent": str(line["tax_percent"]), "net": str(line["net_amount"]),
            "source": line.get("source", "product"), "source_ref": line.get("source_ref", ""),
            "context": parse_context(line.get("context"))}


async def send_quote(actor: Actor, quote: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    if quote["status"] != "draft" or quote["superseded"]:
        raise QuoteError("status", "only the latest draft can be sent")
    return await records.update(actor, Quote, quote["id"],
                                {"status": "sent", "sent_at": datetime.now(UTC)}, ip=ip,
                                summary="quote sent to the customer portal")


async def decide_quote(rapport: Rapport, actor: Actor, quote: dict[str, Any], accept: bool, *,
                       reason: str = "", ip: str = "",
                       acceptance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The customer accepts (an order is created: ``plugins.sales.orders``) or declines a
    sent quote. ``acceptance`` (``{"by", "via", "at"}``) is staff recording a customer's
    acceptance given on the phone, by e-mail or in person."""
    from plugins.sales import orders

    if quote["status"] != "sent" or quote["superseded"]:
        raise QuoteError("status", "this quote is not waiting for a decision")
    if accept and orders.quote_expired(quote):
        raise QuoteError("valid_until", f"this quote expired on "
                         f"{quote['valid_until'].strftime('%d %B %Y').lstrip('0')}; "
                         "ask for a new quote")
    now = datetime.now(UTC)
    order = None
    async with Quote._meta.db.transaction():
        # Guard against a double click: only the request that flips "sent" wins.
        flipped = await Quote.update({Quote.status: "accepted" if accept else "declined",
                                      Quote.decided_at: now,
                                      Quote.decline_reason: reason.strip()[:2000]}).where(
            (Quote.id == quote["id"]) & (Quote.status == "sent")).returning(Quote.id).run()
        if not flipped:
            raise QuoteError("status", "this quote is not waiting for a decision")
        from core import audit

        await audit.record(actor, "accept" if accept else "decline", Quote._meta.tablename,
                           quote["id"], {"status": ["sent", "accepted" if accept else
                                                    "declined"]}, ip=ip)
        if accept:
            # The order, the won deal and their events join this transaction.
            order = await orders.create_from_quote(rapport, actor, quote, now,
                                                   acceptance=acceptance, ip=ip)
    return {"status": "accepted" if accept else "declined", "order": order}
