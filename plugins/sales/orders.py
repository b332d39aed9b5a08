"""Orders: how they are created, the workflow they follow, and what each step announces.

The workflow (``WORKFLOW`` names, per action, the statuses it is allowed from)::

    open -> confirmed -> partly_fulfilled -> fulfilled -> completed
      \\________\\______________ cancelled (nothing shipped yet)

- **confirm** an open order; **ship** lines of a confirmed or partly fulfilled order (never
  more than is left to ship); the order is *fulfilled* once every line is shipped or
  cancelled; **complete** a fulfilled order.
- **cancel** the whole order while nothing has shipped, or **cancel lines** (quantities not
  yet shipped) until it is fulfilled; an order whose every line is cancelled is *cancelled*.
- **return** shipped quantities (with a reason) of a partly fulfilled, fulfilled or
  completed order; **refund** against a return, never more than it is worth.

Every step runs in one transaction: it claims the order row first (so two requests on one
order run one after the other, on SQLite and PostgreSQL alike), checks the rule on fresh
rows, writes the change with its audit entries, puts it on the customer's timeline and
publishes its durable event (``sales.order.*``) carrying the lines affected with quantities
and money. Errors are :class:`OrderError` naming the field, with a message for people.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core import audit, records
from core.customers.tables import Customer
from core.money import Money
from core.permissions import Actor
from plugins.sales.quotes import QuoteError, price_line, resolve_lines
from plugins.sales.tables import (
    Opportunity,
    OrderLine,
    OrderReturn,
    PriceBook,
    Product,
    QuoteLine,
    Refund,
    ReturnLine,
    SalesOrder,
    Shipment,
    ShipmentLine,
    Stage,
    StageChange,
)

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.sales.orders")

STATUSES = {
    "open": "Open",
    "confirmed": "Confirmed",
    "partly_fulfilled": "Partly fulfilled",
    "fulfilled": "Fulfilled",
    "completed": "Completed",
    "cancelled": "Cancelled",
}
WORKFLOW = {
    "confirm": ("open",),
    "ship": ("confirmed", "partly_fulfilled"),
    "cancel": ("open", "confirmed"),
    "cancel_lines": ("open", "confirmed", "partly_fulfilled"),
    "complete": ("fulfilled",),
    "return": ("partly_fulfilled", "fulfilled", "completed"),
}
# Why an action is refused in a status, in words for the person who tried.
REFUSALS = {
    "confirm": "only an open order can be confirmed",
    "ship": "confirm the order before shipping it",
    "cancel": "an order can be cancelled as a whole only before anything has shipped; "
              "cancel the lines not yet shipped instead",
    "cancel_lines": "lines can be cancelled only until the order is fulfilled",
    "complete": "only a fulfilled order can be completed",
    "return": "only shipped goods can be returned",
}
CHANNELS = {"phone": "Phone", "quote": "Accepted quote", "web shop": "Web shop",
            "till": "Till", "api": "API", "email": "E-mail", "visit": "Visit"}
# How a customer's acceptance reached staff, and the timeline channel it is recorded as.
ACCEPTED_VIA = {"phone": "call", "email": "email", "letter": "letter", "meeting": "meeting",
                "visit": "visit", "portal": "portal"}
REFUND_METHODS = ("bank transfer", "card", "cash", "voucher")
MAX_LINES = 200
ZERO = Decimal(0)

EVENTS = {
    "sales.order.created": "An order was placed: from an accepted quote, by staff (telesales) "
                           "or through the API.",
    "sales.order.confirmed": "Staff confirmed an order.",
    "sales.order.fulfilled": "A shipment left (one event per shipment, with its lines).",
    "sales.order.completed": "A fulfilled order was completed.",
    "sales.order.cancelled": "An order, or quantities of its lines, were cancelled.",
    "sales.order.returned": "Delivered goods are coming back, with the customer's reason (a "
                            "service plugin may open a product_return case from it).",
    "sales.order.refunded": "Money was paid back against a return.",
    "sales.quote.accepted": "A customer accepted a quote (in the portal or through staff) and "
                            "it became an order.",
}


class OrderError(ValueError):
    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status  # 409 for a workflow refusal, 422 for bad input


# --- Reading --------------------------------------------------------------------------------


def quantity_text(value: Any) -> str:
    """A quantity for people and payloads: ``2``, ``0.5``, ``1250`` (never ``1E+3``)."""
    number = Decimal(str(value))
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def money_text(amount: Any, currency: str) -> str:
    """An amount for people: grouped digits and the currency's minor units."""
    try:
        from core.money import format_money  # the shared formatter, where it exists
    except ImportError:
        return str(Money(Decimal(str(amount)), currency))
    return format_money(Decimal(str(amount)), currency)


def amount_text(amount: Any, currency: str) -> str:
    """An amount for a form field: the currency's minor units, no grouping (``1011.50``)."""
    return str(Money(Decimal(str(amount)), currency).rounded().amount)


async def order_lines(order_id: int) -> list[dict[str, Any]]:
    return await OrderLine.select().where(OrderLine.sales_order == order_id).order_by(
        OrderLine.position).order_by(OrderLine.id).run()


def open_quantity(line: dict[str, Any]) -> Decimal:
    """What is left to ship (or cancel) of a line."""
    return _d(line["quantity"]) - _d(line["shipped"]) - _d(line["cancelled"])


def returnable_quantity(line: dict[str, Any]) -> Decimal:
    return _d(line["shipped"]) - _d(line["returned"])


def allowed(action: str, status: str) -> bool:
    return status in WORKFLOW.get(action, ())


async def order_history(order_id: int) -> dict[str, list[dict[str, Any]]]:
    """Shipments, returns and refunds of an order, each with its lines (five queries)."""
    shipments = await Shipment.select().where(Shipment.sales_order == order_id).order_by(
        Shipment.id).run()
    returns = await OrderReturn.select().where(OrderReturn.sales_order == order_id).order_by(
        OrderReturn.id).run()
    refunds = await Refund.select().where(Refund.sales_order == order_id).order_by(
        Refund.id).run()
    shipment_lines = await ShipmentLine.select().where(
        ShipmentLine.shipment.is_in([s["id"] for s in shipments] or [0])).run()
    return_lines = await ReturnLine.select().where(
        ReturnLine.sales_return.is_in([r["id"] for r in returns] or [0])).run()
    for shipment in shipments:
        shipment["lines"] = [li for li in shipment_lines if li["shipment"] == shipment["id"]]
    for item in returns:
        item["lines"] = [li for li in return_lines if li["sales_return"] == item["id"]]
        item["refunds"] = [r for r in refunds if r["sales_return"] == item["id"]]
    return {"shipments": shipments, "returns": returns, "refunds": refunds}


# --- Money of a line or part of one ----------------------------------------------------------


def _d(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class Part:
    """A quantity of one order line, priced like the line (discount and tax per unit)."""

    line: dict[str, Any]
    quantity: Decimal

    def priced(self, currency: str):
        line = self.line
        return price_line(self.quantity, _d(line["unit_price"]), _d(line["discount_percent"]),
                          _d(line["tax_percent"]), currency)


def _context_of(line: dict[str, Any]) -> Any:
    raw = line.get("context") or ""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def lines_payload(parts: Iterable[Part], currency: str) -> tuple[list[dict[str, Any]],
                                                                 dict[str, str]]:
    """The ``lines`` of an event and their totals: quantity, unit price, discount, net, tax
    and gross as strings in ``currency``, and where each line came from."""
    out, net, tax, discount = [], ZERO, ZERO, ZERO
    for part in parts:
        priced = part.priced(currency)
        line = part.line
        line_discount = priced.gross - priced.net
        out.append({
            "line_id": line["id"], "position": line["position"], "product_id": line["product"],
            "sku": line.get("sku") or "", "description": line["description"],
            "source": line["source"], "source_ref": line["source_ref"],
            "context": _context_of(line), "parent_position": line.get("parent_position"),
            "quantity": quantity_text(part.quantity), "unit_price": str(_d(line["unit_price"])),
            "discount_percent": str(_d(line["discount_percent"])),
            "discount": str(line_discount), "net": str(priced.net),
            "tax_percent": str(_d(line["tax_percent"])), "tax": str(priced.tax),
            "gross": str(priced.net + priced.tax),
        })
        net, tax, discount = net + priced.net, tax + priced.tax, discount + line_discount
    return out, {"net": str(net), "tax": str(tax), "discount": str(discount),
                 "gross": str(net + tax)}


def _order_payload(order: dict[str, Any], parts: Iterable[Part]) -> dict[str, Any]:
    lines, sums = lines_payload(parts, order["currency"])
    return {
        "order_id": order["id"], "number": order["number"], "status": order["status"],
        "customer_id": order["customer"], "owner_id": order["owner"], "team_id": order["team"],
        "quote_id": order["quote"], "channel": order["channel"], "currency": order["currency"],
        "lines": lines, **sums,
    }


# --- Creating orders -------------------------------------------------------------------------


def request_digest(body: Any) -> str:
    """A digest of an API request body, to tell a retry from a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find_by_idempotency_key(key: str) -> dict[str, Any] | None:
    return await SalesOrder.select().where(SalesOrder.idempotency_key == key).first().run()


def _json_text(value: Any) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        return value[:20000]
    return json.dumps(value, sort_keys=True)[:20000]


async def _insert_order(rapport: Rapport, actor: Actor | None, values: dict[str, Any],
                        lines: list[dict[str, Any]], *, ip: str, summary: str
                        ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Insert the order and its lines (inside the caller's transaction); number it."""
    currency = values["currency"]
    net = tax = gross = ZERO
    for line in lines:
        priced = price_line(_d(line["quantity"]), _d(line["unit_price"]),
                            _d(line["discount_percent"]), _d(line["tax_percent"]), currency)
        line["net_amount"], line["tax_amount"] = priced.net, priced.tax
        net, tax, gross = net + priced.net, tax + priced.tax, gross + priced.gross
    now = datetime.now(UTC)
    values = {"net_amount": net, "tax_amount": tax, "discount_amount": gross - net,
              "total_amount": net + tax, "ordered_at": now, "updated_at": now, **values}
    if not values.get("number"):
        values["number"] = f"pending-{uuid.uuid4().hex}"  # numbered from the id below
    row = await records.create(actor, SalesOrder, values, ip=ip, summary=summary)
    if row["number"].startswith("pending-"):
        number = f"O-{row['id']:06d}"
        await SalesOrder.update({SalesOrder.number: number}).where(
            SalesOrder.id == row["id"]).run()
        row["number"] = number
    columns = {c._meta.name for c in OrderLine._meta.columns}
    await OrderLine.insert(*[
        OrderLine(sales_order=row["id"], **{k: v for k, v in line.items() if k in columns
                                           and k not in ("id", "sales_order")})
        for line in lines
    ]).run()
    stored = await order_lines(row["id"])
    return row, stored


async def _announce_created(rapport: Rapport, actor: Actor | None, order: dict[str, Any],
                            lines: list[dict[str, Any]]) -> None:
    payload = _order_payload(order, [Part(li, _d(li["quantity"])) for li in lines])
    # The keys sales.order.created has always carried (loyalty, analytics rely on them).
    payload.update(total=str(order["total_amount"]),
                   product_ids=sorted({li["product"] for li in lines if li["product"]}))
    await _publish(rapport, "sales.order.created", payload, actor)


async def _publish(rapport: Rapport, name: str, payload: dict[str, Any],
                   actor: Actor | None) -> None:
    """A durable event, in the caller's transaction; subscribers get one order's events in
    the order they happened (created before fulfilled before returned)."""
    await rapport.publish(name, payload, actor_id=_staff_id(actor),
                          key=f"sales.order:{payload['order_id']}")


def _staff_id(actor: Actor | None) -> int | None:
    return actor.id if actor is not None and actor.kind == "staff" else None


def quote_expired(quote: dict[str, Any], today: date | None = None) -> bool:
    valid_until = quote.get("valid_until")
    return valid_until is not None and valid_until < (today or datetime.now(UTC).date())


async def create_from_quote(rapport: Rapport, actor: Actor | None, quote: dict[str, Any],
                            now: datetime, *, acceptance: dict[str, Any] | None = None,
                            ip: str = "") -> dict[str, Any]:
    """The order of an accepted quote, inside the caller's transaction (the one that marked
    the quote accepted): lines copied with their origin, the deal won with the order's
    amount, ``sales.quote.accepted`` and ``sales.order.created`` published."""
    acceptance = acceptance or {}
    quote_lines = await QuoteLine.select().where(QuoteLine.quote == quote["id"]).order_by(
        QuoteLine.position).run()
    copied = [{k: line.get(k) for k in (
        "position", "product", "source", "source_ref", "sku", "description", "quantity",
        "unit_price", "discount_percent", "tax_percent", "parent_position") if k in line}
        for line in quote_lines]
    for line, original in zip(copied, quote_lines, strict=True):
        line["context"] = _json_text(original.get("context"))
    via = acceptance.get("via") or ("portal" if actor is not None and actor.kind == "portal"
                                    else "")
    row, lines = await _insert_order(rapport, actor, {
        "number": f"O-{quote['number'][2:]}-{quote['version']}", "quote": quote["id"],
        "customer": quote["customer"], "owner": quote["owner"], "team": quote["team"],
        "currency": quote["currency"], "channel": "quote",
        "accepted_by": str(acceptance.get("by") or (actor.name if actor else ""))[:200],
        "accepted_via": via, "accepted_at": acceptance.get("at") or now,
    }, copied, ip=ip, summary=f"from quote {quote['number']} v{quote['version']}")
    # The quote's own total (after other plugins' adjustments, e.g. a voucher) is what the
    # customer agreed to pay; the adjustments count as discount on the order.
    adjustments = await _quote_adjustments(quote["id"])
    adjusted = sum((_d(a["amount"]) for a in adjustments), ZERO)
    if adjusted or (quote.get("total_amount") is not None
                    and _d(quote["total_amount"]) != _d(row["total_amount"])):
        total = _d(quote["total_amount"])
        discount = _d(row["discount_amount"]) + adjusted
        await SalesOrder.update({SalesOrder.total_amount: total,
                                 SalesOrder.discount_amount: discount}).where(
            SalesOrder.id == row["id"]).run()
        row.update(total_amount=total, discount_amount=discount)
    won = await _win_opportunity(actor, quote, row, now, ip=ip)
    await _timeline(rapport, row, "created",
                    f"Accepted quote {quote['number']}: order {row['number']} "
                    f"({money_text(row['total_amount'], row['currency'])})",
                    channel=ACCEPTED_VIA.get(via, "web"), direction="inbound",
                    notes=f"Accepted by {row['accepted_by']}" if row["accepted_by"] else "")
    payload = _order_payload(row, [Part(li, _d(li["quantity"])) for li in lines])
    payload.update(quote_id=quote["id"], quote_number=quote["number"],
                   quote_version=quote["version"], opportunity_id=quote.get("opportunity"),
                   opportunity_won=won, accepted_by=row["accepted_by"],
                   accepted_via=row["accepted_via"],
                   accepted_at=(row["accepted_at"] or now).isoformat(),
                   total=str(row["total_amount"]),
                   adjustments=[{"source": a["source"], "source_ref": a["source_ref"],
                                 "label": a["label"], "amount": str(_d(a["amount"]))}
                                for a in adjustments])
    await _publish(rapport, "sales.quote.accepted", payload, actor)
    await _announce_created(rapport, actor, row, lines)
    return {**row, "product_ids": sorted({li["product"] for li in lines if li["product"]}),
            "lines": lines}


async def _quote_adjustments(quote_id: int) -> list[dict[str, Any]]:
    """Adjustments other plugins put on the quote (a voucher), where the table exists."""
    from plugins.sales import tables

    table = getattr(tables, "QuoteAdjustment", None)
    if table is None:
        return []
    return await table.select().where(table.quote == quote_id).run()


async def _win_opportunity(actor: Actor | None, quote: dict[str, Any], order: dict[str, Any],
                           now: datetime, *, ip: str) -> bool:
    """Accepting a quote wins its deal, with the order's amount."""
    if not quote.get("opportunity"):
        return False
    deal = await Opportunity.select().where(Opportunity.id == quote["opportunity"]).first().run()
    if deal is None:
        return False
    won = await Stage.select().where((Stage.pipeline == deal["pipeline"])
                                     & (Stage.outcome == "won")).order_by(
        Stage.position).first().run()
    changes: dict[str, Any] = {
        "status": "won", "amount_amount": _d(order["total_amount"]),
        "amount_currency": order["currency"], "closed_at": now, "last_activity_at": now,
        "updated_at": now, "close_reason": f"Quote {quote['number']} accepted"[:300]}
    if won is not None:
        changes["stage"] = won["id"]
    await records.update(actor, Opportunity, deal["id"], changes, ip=ip,
                         summary=f"won: quote {quote['number']} accepted, order "
                                 f"{order['number']}")
    if won is not None and won["id"] != deal["stage"]:
        await StageChange.insert(StageChange(opportunity=deal["id"], from_stage=deal["stage"],
                                             to_stage=won["id"], changed_at=now,
                                             user=_staff_id(actor))).run()
    return True


def _number(raw: Any, field: str, *, low: Decimal | None = None,
            high: Decimal | None = None) -> Decimal:
    if isinstance(raw, float):
        raw = str(raw)
    try:
        value = Decimal(str(raw).strip().replace(",", "") if raw not in (None, "") else "")
    except InvalidOperation:
        raise OrderError(field, "is not a number") from None
    if not value.is_finite():
        raise OrderError(field, "is not a number")
    if low is not None and value < low:
        raise OrderError(field, f"must be at least {quantity_text(low)}")
    if high is not None and value > high:
        raise OrderError(field, f"must be at most {quantity_text(high)}")
    return value


async def create_order(rapport: Rapport, actor: Actor, data: dict[str, Any], *,
                       channel: str = "phone", idempotency_key: str | None = None,
                       digest: str = "", ip: str = "") -> tuple[dict[str, Any], bool]:
    """An order placed directly: by staff for a customer (inbound teleservice) or through the
    API (a web shop, a till). Returns ``(order, created)``.

    ``data``: ``customer`` (checked visible by the caller), ``currency``, ``price_book``,
    ``notes``, ``owner`` and ``lines`` (``{product, quantity, discount_percent, tax_percent,
    unit_price?}`` priced from the price book unless given, or ``{source, source_ref}``).
    With ``idempotency_key``, the same key answers the order it created before
    (``created=False``) if ``digest`` matches, and raises :class:`OrderError` if not.
    """
    if idempotency_key is not None:
        existing = await find_by_idempotency_key(idempotency_key)
        if existing is not None:
            return _replay(existing, digest), False
    try:
        customer = int(data.get("customer"))
    except (TypeError, ValueError):
        raise OrderError("customer", "choose the customer") from None
    found = await Customer.select(Customer.id, Customer.owner, Customer.team).where(
        Customer.id == customer).first().run()
    if found is None:
        raise OrderError("customer", "no such customer")
    currency = str(data.get("currency") or rapport.plugin_settings("sales").default_currency)
    try:
        currency = Money(ZERO, currency).currency
    except ValueError:
        raise OrderError("currency", "is not an ISO 4217 currency code") from None
    price_book = data.get("price_book") or None
    if price_book is not None:
        try:
            price_book = int(price_book)
        except (TypeError, ValueError):
            raise OrderError("price_book", "no such price book") from None
        if not await PriceBook.exists().where(PriceBook.id == price_book).run():
            raise OrderError("price_book", "no such price book")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise OrderError("lines", "add at least one line")
    if len(raw_lines) > MAX_LINES:
        raise OrderError("lines", f"at most {MAX_LINES} lines")
    if any(not isinstance(line, dict) for line in raw_lines):
        raise OrderError("lines", "each line is an object")
    try:
        resolved = await resolve_lines(rapport, raw_lines, currency, price_book)
    except QuoteError as exc:
        raise OrderError(exc.field, exc.message) from None
    lines = []
    for i, (line, raw) in enumerate(zip(resolved, raw_lines, strict=True), start=1):
        copied = {k: line[k] for k in (
            "position", "product", "source", "source_ref", "sku", "description", "quantity",
            "unit_price", "discount_percent", "tax_percent", "parent_position") if k in line}
        context = line.get("context", raw.get("context"))
        if context not in (None, "") and not isinstance(context, dict | str):
            raise OrderError(f"lines[{i}].context", "must be an object")
        copied["context"] = _json_text(context)
        if not copied.get("sku") and copied.get("product"):
            copied["sku"] = await _sku(copied["product"])
        lines.append(copied)
    owner = actor.id if actor.kind == "staff" else None
    if channel != "phone":  # a web shop's or till's order belongs to the account's owner
        owner = found["owner"] or owner
    async with SalesOrder._meta.db.transaction():
        row, stored = await _insert_order(rapport, actor, {
            "customer": customer, "owner": owner, "team": found["team"],
            "currency": currency, "channel": channel[:20],
            "notes": str(data.get("notes") or "")[:5000],
            "idempotency_key": idempotency_key, "request_digest": digest,
        }, lines, ip=ip, summary=f"{CHANNELS.get(channel, channel)} order")
        await _timeline(rapport, row, "created",
                        f"Order {row['number']} placed ({CHANNELS.get(channel, channel)}, "
                        f"{money_text(row['total_amount'], row['currency'])})",
                        channel="call" if channel == "phone" else "web", direction="inbound",
                        notes=row["notes"])
        await _announce_created(rapport, actor, row, stored)
    return {**row, "lines": stored}, True


async def create_order_once(rapport: Rapport, actor: Actor, data: dict[str, Any], *,
                            channel: str, idempotency_key: str | None, digest: str,
                            ip: str = "") -> tuple[dict[str, Any], bool]:
    """:func:`create_order`; when two retries with one key race, the loser's insert breaks
    the unique key, its transaction rolls back, and it answers the winner's order."""
    try:
        return await create_order(rapport, actor, data, channel=channel,
                                  idempotency_key=idempotency_key, digest=digest, ip=ip)
    except OrderError:
        raise
    except Exception:
        if idempotency_key is not None:
            existing = await find_by_idempotency_key(idempotency_key)
            if existing is not None:
                return _replay(existing, digest), False
        raise


def _replay(existing: dict[str, Any], digest: str) -> dict[str, Any]:
    if digest and existing["request_digest"] and existing["request_digest"] != digest:
        raise OrderError("Idempotency-Key", "this key was used for a different order; send a "
                         "new key for a new order", status=422)
    return existing


async def _sku(product_id: int) -> str:
    row = await Product.select(Product.sku).where(Product.id == product_id).first().run()
    return row["sku"] if row else ""


# --- The workflow ----------------------------------------------------------------------------


async def _claim(order_id: int, action: str) -> dict[str, Any]:
    """Lock the order for this transaction (its first write) and check the workflow."""
    rows = await SalesOrder.update({SalesOrder.updated_at: datetime.now(UTC)}).where(
        SalesOrder.id == order_id).returning(*SalesOrder._meta.columns).run()
    if not rows:
        raise OrderError("order", "no such order", status=404)
    order = rows[0]
    if not allowed(action, order["status"]):
        raise OrderError("status", f"{REFUSALS[action]} (this order is "
                                   f"{STATUSES.get(order['status'], order['status']).lower()})",
                         status=409)
    return order


async def _set_status(actor: Actor | None, order: dict[str, Any], changes: dict[str, Any], *,
                      ip: str, summary: str) -> dict[str, Any]:
    return await records.update(actor, SalesOrder, order["id"], changes, ip=ip,
                                summary=summary)


async def _timeline(rapport: Rapport, order: dict[str, Any], step: str, subject: str, *,
                    channel: str = "web", direction: str = "none", notes: str = "",
                    key: str = "") -> None:
    """Put the step on the customer's timeline (shown in their portal history too)."""
    from core.interactions.service import record_interaction

    # No actor: a trusted plugin write (a portal customer cannot record interactions); who
    # did it is in the audit entry of the change itself.
    await record_interaction(
        rapport, None, customer_id=order["customer"], channel=channel, direction=direction,
        subject=subject[:300], notes=notes[:20000], purpose="order", outcome=step,
        plugin="sales", plugin_record=f"order:{order['id']}", visible_in_portal=True,
        client_id=f"sales-order-{order['id']}-{step}-{key}"[:64] if key else None)


async def confirm(rapport: Rapport, actor: Actor, order_id: int, *, ip: str = ""
                  ) -> dict[str, Any]:
    async with SalesOrder._meta.db.transaction():
        order = await _claim(order_id, "confirm")
        now = datetime.now(UTC)
        row = await _set_status(actor, order, {"status": "confirmed", "confirmed_at": now},
                                ip=ip, summary="order confirmed")
        lines = await order_lines(order_id)
        await _timeline(rapport, row, "confirmed", f"Order {row['number']} confirmed")
        await _publish(rapport, "sales.order.confirmed", _order_payload(
            row, [Part(li, open_quantity(li)) for li in lines if open_quantity(li) > 0]),
            actor)
    return row


def _quantities(raw: dict[Any, Any], lines: dict[int, dict[str, Any]], field: str
                ) -> dict[int, Decimal]:
    """``{line id: quantity}`` from a form or JSON (zero and empty skipped)."""
    if not isinstance(raw, dict):
        raise OrderError(field, "give a quantity per line")
    out: dict[int, Decimal] = {}
    for key, value in raw.items():
        try:
            line_id = int(key)
        except (TypeError, ValueError):
            raise OrderError(field, f"{key!r} is not a line of this order") from None
        if line_id not in lines:
            raise OrderError(field, f"{key!r} is not a line of this order")
        if value in (None, ""):
            continue
        quantity = _number(value, f"{field}[{line_id}]", low=ZERO)
        if quantity != quantity.quantize(Decimal("0.001")):
            raise OrderError(f"{field}[{line_id}]", "use at most three decimals")
        if quantity > 0:
            out[line_id] = quantity
    if not out:
        raise OrderError(field, "give a quantity for at least one line")
    return out


async def ship(rapport: Rapport, actor: Actor, order_id: int, quantities: dict[Any, Any], *,
               carrier: str = "", tracking: str = "", note: str = "", ip: str = ""
               ) -> dict[str, Any]:
    """Record a shipment of ``{line id: quantity}``; never more than is left to ship."""
    async with SalesOrder._meta.db.transaction():
        order = await _claim(order_id, "ship")
        lines = {li["id"]: li for li in await order_lines(order_id)}
        wanted = _quantities(quantities, lines, "quantities")
        for line_id, quantity in wanted.items():
            left = open_quantity(lines[line_id])
            if quantity > left:
                raise OrderError(f"quantities[{line_id}]",
                                 f"only {quantity_text(left)} of "
                                 f"“{lines[line_id]['description']}” left to ship")
        now = datetime.now(UTC)
        shipment = await records.create(actor, Shipment, {
            "sales_order": order_id, "carrier": carrier.strip()[:100],
            "tracking": tracking.strip()[:200], "note": note.strip()[:5000], "shipped_at": now,
            "created_by": _staff_id(actor)}, ip=ip, summary=f"shipment of {order['number']}")
        number = f"S-{shipment['id']:06d}"
        await Shipment.update({Shipment.number: number}).where(
            Shipment.id == shipment["id"]).run()
        shipment["number"] = number
        await ShipmentLine.insert(*[ShipmentLine(shipment=shipment["id"], order_line=line_id,
                                                 quantity=q) for line_id, q in wanted.items()]
                                  ).run()
        for line_id, quantity in wanted.items():
            shipped = _d(lines[line_id]["shipped"]) + quantity
            await OrderLine.update({OrderLine.shipped: shipped}).where(
                OrderLine.id == line_id).run()
            lines[line_id] = {**lines[line_id], "shipped": shipped}
        done = all(open_quantity(li) <= 0 for li in lines.values())
        row = await _set_status(actor, order, {
            "status": "fulfilled" if done else "partly_fulfilled",
            **({"fulfilled_at": now} if done else {})},
            ip=ip, summary=f"shipment {number}")
        parts = [Part(lines[i], q) for i, q in wanted.items()]
        what = ", ".join(f"{quantity_text(p.quantity)} × {p.line['description']}"
                         for p in parts)
        await _timeline(rapport, row, "fulfilled",
                        f"Order {row['number']}: shipment {number} sent", notes=what,
                        key=number)
        payload = _order_payload(row, parts)
        payload.update(shipment_id=shipment["id"], shipment_number=number,
                       carrier=shipment["carrier"], tracking=shipment["tracking"],
                       fully_fulfilled=done)
        await _publish(rapport, "sales.order.fulfilled", payload, actor)
    return {**shipment, "order": row}


async def cancel(rapport: Rapport, actor: Actor, order_id: int, *, reason: str = "",
                 quantities: dict[Any, Any] | None = None, ip: str = "") -> dict[str, Any]:
    """Cancel the whole order (nothing shipped yet) or ``{line id: quantity}`` not shipped."""
    reason = reason.strip()[:2000]
    if not reason:
        raise OrderError("reason", "say why it is cancelled")
    async with SalesOrder._meta.db.transaction():
        order = await _claim(order_id, "cancel_lines" if quantities is not None else "cancel")
        lines = {li["id"]: li for li in await order_lines(order_id)}
        if quantities is None:
            if any(_d(li["shipped"]) > 0 for li in lines.values()):
                raise OrderError("status", REFUSALS["cancel"], status=409)
            wanted = {i: open_quantity(li) for i, li in lines.items() if open_quantity(li) > 0}
        else:
            wanted = _quantities(quantities, lines, "quantities")
            for line_id, quantity in wanted.items():
                left = open_quantity(lines[line_id])
                if quantity > left:
                    raise OrderError(f"quantities[{line_id}]",
                                     f"only {quantity_text(left)} of "
                                     f"“{lines[line_id]['description']}” is not shipped yet "
                                     f"and can be cancelled")
        for line_id, quantity in wanted.items():
            cancelled = _d(lines[line_id]["cancelled"]) + quantity
            await OrderLine.update({OrderLine.cancelled: cancelled}).where(
                OrderLine.id == line_id).run()
            lines[line_id] = {**lines[line_id], "cancelled": cancelled}
        now = datetime.now(UTC)
        everything = all(_d(li["cancelled"]) >= _d(li["quantity"]) for li in lines.values())
        nothing_left = all(open_quantity(li) <= 0 for li in lines.values())
        changes: dict[str, Any] = {"cancel_reason": reason}
        if everything:
            changes.update(status="cancelled", cancelled_at=now)
        elif nothing_left:  # the rest has shipped: the order is fulfilled
            changes.update(status="fulfilled", fulfilled_at=now)
        parts = [Part(lines[i], q) for i, q in wanted.items()]
        what = ", ".join(f"{quantity_text(p.quantity)} × {p.line['description']}"
                         for p in parts)
        row = await _set_status(actor, order, changes, ip=ip,
                                summary=f"cancelled: {what}"[:500])
        subject = (f"Order {row['number']} cancelled" if everything
                   else f"Order {row['number']}: lines cancelled")
        await _timeline(rapport, row, "cancelled", subject, notes=f"{what}\n{reason}",
                        key=str(now.timestamp()))
        payload = _order_payload(row, parts)
        payload.update(reason=reason, whole_order=everything)
        await _publish(rapport, "sales.order.cancelled", payload, actor)
    return row


async def complete(rapport: Rapport, actor: Actor, order_id: int, *, ip: str = ""
                   ) -> dict[str, Any]:
    async with SalesOrder._meta.db.transaction():
        order = await _claim(order_id, "complete")
        row = await _set_status(actor, order, {"status": "completed",
                                               "completed_at": datetime.now(UTC)},
                                ip=ip, summary="order completed")
        lines = await order_lines(order_id)
        await _timeline(rapport, row, "completed", f"Order {row['number']} completed")
        await _publish(rapport, "sales.order.completed", _order_payload(
            row, [Part(li, _d(li["shipped"])) for li in lines if _d(li["shipped"]) > 0]),
            actor)
    return row


async def record_return(rapport: Rapport, actor: Actor, order_id: int,
                        quantities: dict[Any, Any], *, reason: str, via: str = "staff",
                        ip: str = "") -> dict[str, Any]:
    """Shipped goods coming back, with the customer's reason (``via``: staff or portal)."""
    reason = reason.strip()[:2000]
    if not reason:
        raise OrderError("reason", "say why the goods are returned")
    async with SalesOrder._meta.db.transaction():
        order = await _claim(order_id, "return")
        lines = {li["id"]: li for li in await order_lines(order_id)}
        wanted = _quantities(quantities, lines, "quantities")
        for line_id, quantity in wanted.items():
            left = returnable_quantity(lines[line_id])
            if quantity > left:
                raise OrderError(f"quantities[{line_id}]",
                                 f"only {quantity_text(left)} of "
                                 f"“{lines[line_id]['description']}” was delivered and not "
                                 f"returned yet")
        parts = [Part(lines[i], q) for i, q in wanted.items()]
        priced = [p.priced(order["currency"]) for p in parts]
        total = sum((p.net + p.tax for p in priced), ZERO)
        item = await records.create(actor, OrderReturn, {
            "sales_order": order_id, "reason": reason, "requested_via": via,
            "currency": order["currency"], "total_amount": total,
            "created_by": _staff_id(actor)}, ip=ip, summary=f"return for {order['number']}")
        number = f"R-{item['id']:06d}"
        await OrderReturn.update({OrderReturn.number: number}).where(
            OrderReturn.id == item["id"]).run()
        item["number"] = number
        await ReturnLine.insert(*[
            ReturnLine(sales_return=item["id"], order_line=p.line["id"], quantity=p.quantity,
                       net_amount=pr.net, tax_amount=pr.tax)
            for p, pr in zip(parts, priced, strict=True)]).run()
        for line_id, quantity in wanted.items():
            returned = _d(lines[line_id]["returned"]) + quantity
            await OrderLine.update({OrderLine.returned: returned}).where(
                OrderLine.id == line_id).run()
            lines[line_id] = {**lines[line_id], "returned": returned}
        await audit.record(actor, "return", SalesOrder._meta.tablename, order_id,
                           {"returns": [None, number]}, summary=reason[:500], ip=ip)
        what = ", ".join(f"{quantity_text(p.quantity)} × {p.line['description']}"
                         for p in parts)
        await _timeline(rapport, order, "returned",
                        f"Return {number} for order {order['number']}",
                        channel="portal" if via == "portal" else "web",
                        direction="inbound", notes=f"{what}\nReason: {reason}", key=number)
        payload = _order_payload(order, parts)
        payload.update(return_id=item["id"], return_number=number, reason=reason,
                       requested_via=via, case_type="product_return")
        await _publish(rapport, "sales.order.returned", payload, actor)
    return item


async def refund(rapport: Rapport, actor: Actor, return_id: int, amount: Any, *,
                 method: str = "", reference: str = "", note: str = "", ip: str = ""
                 ) -> dict[str, Any]:
    """Record money paid back against a return: at most what is left of its value."""
    if method not in REFUND_METHODS:
        raise OrderError("method", "choose how the money is paid back")
    async with SalesOrder._meta.db.transaction():
        item = await OrderReturn.select().where(OrderReturn.id == return_id).first().run()
        if item is None:
            raise OrderError("return", "no such return", status=404)
        order = await SalesOrder.update({SalesOrder.updated_at: datetime.now(UTC)}).where(
            SalesOrder.id == item["sales_order"]).returning(*SalesOrder._meta.columns).run()
        order = order[0]
        item = await OrderReturn.select().where(OrderReturn.id == return_id).first().run()
        left = _d(item["total_amount"]) - _d(item["refunded_amount"])
        value = _number(amount, "amount", low=Decimal("0.01"))
        if value != Money(value, item["currency"]).rounded().amount:
            raise OrderError("amount", f"use the minor units of {item['currency']}")
        if left <= 0:
            raise OrderError("amount", "this return is refunded in full already", status=409)
        if value > left:
            raise OrderError("amount", f"at most {money_text(left, item['currency'])} is left "
                                       f"to refund on return {item['number']}")
        row = await records.create(actor, Refund, {
            "sales_return": return_id, "sales_order": order["id"], "amount": value,
            "currency": item["currency"], "method": method, "reference": reference[:200],
            "note": note[:5000], "refunded_at": datetime.now(UTC),
            "created_by": _staff_id(actor)}, ip=ip,
            summary=f"refund on {item['number']}")
        refunded = _d(item["refunded_amount"]) + value
        await records.update(actor, OrderReturn, return_id, {
            "refunded_amount": refunded,
            "status": "refunded" if refunded >= _d(item["total_amount"]) else "open"}, ip=ip)
        return_lines = await ReturnLine.select().where(
            ReturnLine.sales_return == return_id).run()
        by_id = {li["id"]: li for li in await order_lines(order["id"])}
        await _timeline(rapport, order, "refunded",
                        f"Refund of {money_text(value, item['currency'])} on return "
                        f"{item['number']} (order {order['number']})",
                        direction="outbound", notes=f"{method} {reference}".strip(),
                        key=f"refund-{row['id']}")
        payload = _order_payload(order, [Part(by_id[li["order_line"]], _d(li["quantity"]))
                                         for li in return_lines])
        payload.update(refund_id=row["id"], return_id=return_id,
                       return_number=item["number"], amount=str(value), method=method,
                       reference=row["reference"],
                       refunded_in_full=refunded >= _d(item["total_amount"]))
        await _publish(rapport, "sales.order.refunded", payload, actor)
    return row
