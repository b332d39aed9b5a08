"""Quotes and orders: exact decimal pricing, versions, the customer's decision, and orders.

Money is ``Decimal`` throughout and rounded per currency (``Money.rounded``) at the line,
so the printed lines always add up to the printed totals.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core import records
from core.money import Money
from core.permissions import Actor
from core.plugin import hookspec
from plugins.sales.tables import (
    OrderLine,
    PriceBook,
    Product,
    ProductPrice,
    Quote,
    QuoteLine,
    SalesOrder,
)

if TYPE_CHECKING:
    from core.app import Rapport

HUNDRED = Decimal(100)


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


def totals(lines: list[PricedLine], currency: str) -> Totals:
    zero = Decimal(0)
    subtotal = sum((line.gross for line in lines), zero)
    net = sum((line.net for line in lines), zero)
    tax = sum((line.tax for line in lines), zero)
    return Totals(Money(subtotal, currency), Money(subtotal - net, currency),
                  Money(tax, currency), Money(net + tax, currency))


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


# --- Line sources (products, and other plugins' through the hook) ----------------------------


@dataclass(frozen=True)
class LineSource:
    """Where quote lines can come from besides the catalogue (e.g. a configurator).

    ``resolve`` is ``(rapport, ref, currency) -> {"description", "unit_price"}`` (may be
    async); it raises ``LookupError`` for an unknown ``ref``.
    """

    id: str
    label: str
    resolve: Any


class SalesHookspecs:
    """Hooks the sales plugin calls; other plugins implement them with
    ``@hookimpl(optionalhook=True)`` so they still load when sales is disabled."""

    @hookspec
    def sales_quote_line_sources(rapport: Rapport) -> list[LineSource] | None:
        """Return :class:`LineSource` objects offering quote lines (configurations, services).
        Lists from every plugin are concatenated; ids must be unique."""


def line_sources(rapport: Rapport) -> dict[str, LineSource]:
    hook = getattr(rapport.pm.hook, "sales_quote_line_sources", None)
    if hook is None or hook.spec is None:
        rapport.pm.add_hookspecs(SalesHookspecs)
    return {s.id: s for s in rapport.collect("sales_quote_line_sources", rapport=rapport)}


async def _catalogue_price(product_id: int, price_book: int | None, currency: str) -> Decimal | None:
    query = ProductPrice.select(ProductPrice.unit_price).where(
        (ProductPrice.product == product_id) & (ProductPrice.currency == currency))
    if price_book is not None:
        query = query.where(ProductPrice.price_book == price_book)
    else:
        query = query.where(ProductPrice.price_book.is_default == True)  # noqa: E712
    row = await query.first().run()
    return None if row is None else Decimal(str(row["unit_price"]))


async def resolve_lines(rapport: Rapport, raw_lines: list[dict[str, Any]], currency: str,
                        price_book: int | None) -> list[dict[str, Any]]:
    """Turn submitted lines into priced rows; name the offending line and field on error."""
    if not raw_lines:
        raise QuoteError("lines", "add at least one line")
    sources = None
    resolved = []
    for i, raw in enumerate(raw_lines, start=1):
        where = f"lines[{i}]"
        source = str(raw.get("source") or "product")
        quantity = _decimal(raw.get("quantity"), f"{where}.quantity", low=Decimal("0.001"),
                            default="1")
        discount = _decimal(raw.get("discount_percent"), f"{where}.discount_percent",
                            low=Decimal(0), high=HUNDRED)
        tax = _decimal(raw.get("tax_percent"), f"{where}.tax_percent", low=Decimal(0),
                       high=HUNDRED)
        product_id, ref, description = None, str(raw.get("source_ref") or ""), \
            str(raw.get("description") or "").strip()
        unit_price = None
        if raw.get("unit_price") not in (None, ""):
            unit_price = _decimal(raw.get("unit_price"), f"{where}.unit_price", low=Decimal(0))
        if source == "product":
            try:
                product_id = int(raw.get("product"))
            except (TypeError, ValueError):
                raise QuoteError(f"{where}.product", "choose a product") from None
            product = await Product.select(Product.name, Product.sku).where(
                Product.id == product_id).first().run()
            if product is None:
                raise QuoteError(f"{where}.product", "no such product")
            description = description or product["name"]
            if unit_price is None:
                unit_price = await _catalogue_price(product_id, price_book, currency)
                if unit_price is None:
                    raise QuoteError(f"{where}.unit_price",
                                     f"the product has no {currency} price in this price book")
        else:
            sources = sources if sources is not None else line_sources(rapport)
            if source not in sources:
                raise QuoteError(f"{where}.source", f"unknown line source {source!r}")
            try:
                found = sources[source].resolve(rapport, ref, currency)
                if inspect.isawaitable(found):
                    found = await found
            except LookupError:
                raise QuoteError(f"{where}.source_ref", "not found") from None
            description = description or str(found["description"])
            if unit_price is None:
                unit_price = _decimal(found["unit_price"], f"{where}.unit_price", low=Decimal(0))
        if not description:
            raise QuoteError(f"{where}.description", "describe the line")
        priced = price_line(quantity, unit_price, discount, tax, currency, description[:500])
        resolved.append({"position": i, "product": product_id, "source": source,
                         "source_ref": ref[:64], "description": priced.description,
                         "quantity": quantity, "unit_price": unit_price,
                         "discount_percent": discount, "tax_percent": tax,
                         "net_amount": priced.net, "_priced": priced})
    return resolved


async def _store_lines(quote_id: int, lines: list[dict[str, Any]]) -> None:
    await QuoteLine.insert(*[
        QuoteLine(quote=quote_id, **{k: v for k, v in line.items() if not k.startswith("_")})
        for line in lines
    ]).run()


def _total_values(lines: list[dict[str, Any]], currency: str) -> dict[str, Decimal]:
    t = totals([line["_priced"] for line in lines], currency)
    return {"subtotal_amount": t.subtotal.amount, "discount_amount": t.discount.amount,
            "tax_amount": t.tax.amount, "total_amount": t.total.amount}


async def create_quote(rapport: Rapport, actor: Actor, data: dict[str, Any], *,
                       ip: str = "") -> dict[str, Any]:
    try:
        customer = int(data.get("customer"))
    except (TypeError, ValueError):
        raise QuoteError("customer", "choose the customer") from None
    currency = str(data.get("currency") or rapport.plugin_settings("sales").default_currency)
    try:
        currency = Money(Decimal(0), currency).currency
    except ValueError:
        raise QuoteError("currency", "is not an ISO 4217 currency code") from None
    price_book = data.get("price_book") or None
    if price_book is not None:
        price_book = int(price_book)
        if not await PriceBook.exists().where(PriceBook.id == price_book).run():
            raise QuoteError("price_book", "no such price book")
    lines = await resolve_lines(rapport, list(data.get("lines") or []), currency, price_book)
    valid_until = None
    if data.get("valid_until"):
        from plugins.sales.pipeline import OpportunityError, parse_date

        try:
            valid_until = parse_date(data["valid_until"], "valid_until")
        except OpportunityError as exc:
            raise QuoteError("valid_until", exc.message) from None
    async with Quote._meta.db.transaction():
        row = await records.create(actor, Quote, {
            "number": "", "customer": customer, "opportunity": data.get("opportunity") or None,
            "owner": data.get("owner") or actor.id, "team": data.get("team") or None,
            "currency": currency, "price_book": price_book, "valid_until": valid_until,
            "notes": str(data.get("notes") or "")[:5000], **_total_values(lines, currency),
        }, ip=ip)
        number = f"Q-{row['id']:06d}"
        await Quote.update({Quote.number: number}).where(Quote.id == row["id"]).run()
        await _store_lines(row["id"], lines)
    return {**row, "number": number}


async def quote_lines(quote_id: int) -> list[dict[str, Any]]:
    return await QuoteLine.select().where(QuoteLine.quote == quote_id).order_by(
        QuoteLine.position).run()


async def new_version(actor: Actor, quote: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Copy a quote as its next version (a draft to edit); the old one stays as it was sent."""
    lines = await quote_lines(quote["id"])
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
    return row


async def send_quote(actor: Actor, quote: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    if quote["status"] != "draft" or quote["superseded"]:
        raise QuoteError("status", "only the latest draft can be sent")
    return await records.update(actor, Quote, quote["id"],
                                {"status": "sent", "sent_at": datetime.now(UTC)}, ip=ip,
                                summary="quote sent to the customer portal")


async def decide_quote(rapport: Rapport, actor: Actor, quote: dict[str, Any], accept: bool, *,
                       reason: str = "", ip: str = "") -> dict[str, Any]:
    """The customer accepts (an order is created) or declines a sent quote."""
    if quote["status"] != "sent" or quote["superseded"]:
        raise QuoteError("status", "this quote is not waiting for a decision")
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
            order = await _order_from_quote(actor, quote, now, ip=ip)
    if order is not None:
        await rapport.publish("sales.order.created", {
            "order_id": order["id"], "number": order["number"], "customer_id": order["customer"],
            "quote_id": quote["id"], "total": str(order["total_amount"]),
            "currency": order["currency"], "owner_id": order["owner"],
            "product_ids": order["product_ids"],
        }, actor_id=None)
    return {"status": "accepted" if accept else "declined", "order": order}


async def _order_from_quote(actor: Actor, quote: dict[str, Any], now: datetime, *,
                            ip: str) -> dict[str, Any]:
    lines = await quote_lines(quote["id"])
    row = await records.create(actor, SalesOrder, {
        "number": f"O-{quote['number'][2:]}-{quote['version']}", "quote": quote["id"],
        "customer": quote["customer"], "owner": quote["owner"], "team": quote["team"],
        "currency": quote["currency"], "total_amount": quote["total_amount"], "ordered_at": now,
    }, ip=ip, summary=f"from quote {quote['number']} v{quote['version']}")
    if lines:
        await OrderLine.insert(*[
            OrderLine(sales_order=row["id"], product=line["product"],
                      description=line["description"], quantity=line["quantity"],
                      unit_price=line["unit_price"], net_amount=line["net_amount"])
            for line in lines
        ]).run()
    return {**row, "product_ids": sorted({li["product"] for li in lines if li["product"]})}
