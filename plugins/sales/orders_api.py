"""The orders API under ``/api/v1/sales/orders``: list, read, create (a web shop or a till, with
an ``Idempotency-Key``), and the workflow's transitions.

Lists are keyset-paginated (``?after=<id>``, ``?limit=`` up to 200, newest first) within the
caller's scope; bad input answers ``application/problem+json`` naming the field (422), a step
the workflow does not allow from the order's status 409, an order out of scope 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.api_schemas import accepts
from core.audit import client_ip
from core.customers.tables import Customer
from core.permissions import current_actor, scoped
from plugins.sales import api_bodies as bodies
from plugins.sales import orders
from plugins.sales.api import problem
from plugins.sales.orders_web import perm, visible_order
from plugins.sales.tables import OrderLine, SalesOrder

MAX_LIMIT = 200
MAX_KEY = 200


def _json(row: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key in drop:
            continue
        if isinstance(value, Decimal):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out


PRIVATE = ("idempotency_key", "request_digest")


async def _full(order: dict[str, Any]) -> dict[str, Any]:
    """An order with its lines, shipments, returns and refunds."""
    lines = await orders.order_lines(order["id"])
    history = await orders.order_history(order["id"])
    return {
        **_json(order, drop=PRIVATE),
        "status_label": orders.STATUSES.get(order["status"], order["status"]),
        "lines": [{**_json(li), "context": orders._context_of(li),
                   "open_quantity": str(orders.open_quantity(li))} for li in lines],
        "shipments": [{**_json(s, drop=("lines",)), "lines": [_json(x) for x in s["lines"]]}
                      for s in history["shipments"]],
        "returns": [{**_json(r, drop=("lines", "refunds")),
                     "lines": [_json(x) for x in r["lines"]]} for r in history["returns"]],
        "refunds": [_json(r) for r in history["refunds"]],
    }


def _bounded_int(raw: str, field: str) -> int | Response | None:
    if raw in ("", None):
        return None
    if not raw.isdigit() or len(raw) > 18:
        return problem(field, "is not an id")
    return int(raw)


@get("/api/v1/sales/orders", opt=perm("sales.order.view"))
async def api_orders(request: Request, limit: FromQuery[int] = 50, after: FromQuery[str] = "",
                     status: FromQuery[str] = "", customer: FromQuery[str] = "",
                     owner: FromQuery[str] = "", since: FromQuery[str] = "",
                     until: FromQuery[str] = "") -> Response:
    """Orders the caller may see, newest first, each with its lines; filters ``status``,
    ``customer``, ``owner`` (ids), ``since``/``until`` (dates the order was placed)."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = scoped(SalesOrder.select(), request.app.state.rapport, current_actor(request),
                   "sales.order.view", SalesOrder)
    if status:
        if status not in orders.STATUSES:
            return problem("status", f"is one of {', '.join(orders.STATUSES)}")
        query = query.where(SalesOrder.status == status)
    for name, column in (("customer", SalesOrder.customer), ("owner", SalesOrder.owner),
                         ("after", SalesOrder.id)):
        value = _bounded_int({"customer": customer, "owner": owner, "after": after}[name], name)
        if isinstance(value, Response):
            return value
        if value is not None:
            query = query.where(column < value if name == "after" else column == value)
    for name, raw in (("since", since), ("until", until)):
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return problem(name, "give a date as YYYY-MM-DD")
        if name == "since":
            query = query.where(SalesOrder.ordered_at >= datetime.combine(day, time(), UTC))
        else:
            query = query.where(SalesOrder.ordered_at < datetime.combine(
                day + timedelta(days=1), time(), UTC))
    rows = await query.order_by(SalesOrder.id, ascending=False).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    lines: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for line in await OrderLine.select().where(
                OrderLine.sales_order.is_in([r["id"] for r in rows])).order_by(
                OrderLine.position).run():
            lines.setdefault(line["sales_order"], []).append(
                {**_json(line), "context": orders._context_of(line)})
    return Response({"items": [{**_json(r, drop=PRIVATE), "lines": lines.get(r["id"], [])}
                               for r in rows],
                     "next_after": rows[-1]["id"] if more and rows else None})


@get("/api/v1/sales/orders/{order_id:int}", opt=perm("sales.order.view"))
async def api_order(request: Request, order_id: FromPath[int]) -> dict[str, Any]:
    """One order with its lines, shipments, returns and refunds."""
    return await _full(await visible_order(request, order_id, "sales.order.view"))


@accepts(bodies.ORDER)
@post("/api/v1/sales/orders", opt=perm("sales.order.create"))
async def api_order_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Place an order for ``customer`` with ``lines`` of ``{product, quantity,
    discount_percent, tax_percent, unit_price?}`` or ``{source, source_ref, context?}``;
    ``channel`` is ``web shop``, ``till`` or ``api``. Send an ``Idempotency-Key`` header: a
    retry with the same key and body answers the same order (200), a different body 422."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    key = request.headers.get("idempotency-key")
    if key is not None:
        key = key.strip()
        if not key or len(key) > MAX_KEY - 20:
            return problem("Idempotency-Key", f"send 1 to {MAX_KEY - 20} characters")
    customer = data.get("customer")
    if not isinstance(customer, int) or isinstance(customer, bool) or await scoped(
            Customer.select(Customer.id).where(Customer.id == customer), rapport, actor,
            "core.customer.view", Customer).first().run() is None:
        return problem("customer", "no such customer")
    channel = str(data.get("channel") or "api")
    if channel not in ("web shop", "till", "api"):
        return problem("channel", "is web shop, till or api")
    for i, line in enumerate(data.get("lines") or [], start=1):
        if isinstance(line, dict) and isinstance(line.get("unit_price"), float):
            return problem(f"lines[{i}].unit_price", 'send amounts as strings, e.g. "12.50"')
    try:
        order, created = await orders.create_order_once(
            rapport, actor, data, channel=channel,
            idempotency_key=f"api:{actor.id}:{key}" if key else None,
            digest=orders.request_digest(data), ip=client_ip(request))
    except orders.OrderError as exc:
        return problem(exc.field, exc.message, status=exc.status)
    headers = {"Location": f"/api/v1/sales/orders/{order['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return Response(await _full(order), status_code=201 if created else 200, headers=headers)


async def _transition(request: Request, order_id: int, permission: str, step) -> Response:
    await visible_order(request, order_id, permission)
    try:
        await step()
    except orders.OrderError as exc:
        return problem(exc.field, exc.message, status=exc.status)
    order = await visible_order(request, order_id, "sales.order.view")
    return Response(await _full(order), status_code=200)


def _quantities(data: dict[str, Any]) -> Any:
    """``{"lines": [{"line_id", "quantity"}]}`` or ``{"quantities": {line id: quantity}}``."""
    if isinstance(data.get("lines"), list):
        out = {}
        for item in data["lines"]:
            if not isinstance(item, dict) or "line_id" not in item:
                raise orders.OrderError("lines", "each line is {line_id, quantity}")
            if isinstance(item.get("quantity"), float):
                raise orders.OrderError("lines", 'send quantities as strings, e.g. "2"')
            out[str(item["line_id"])] = str(item.get("quantity", ""))
        return out
    return data.get("quantities")


@post("/api/v1/sales/orders/{order_id:int}/confirm", opt=perm("sales.order.edit"))
async def api_order_confirm(request: Request, order_id: FromPath[int]) -> Response:
    rapport, actor = request.app.state.rapport, current_actor(request)
    return await _transition(request, order_id, "sales.order.edit", lambda: orders.confirm(
        rapport, actor, order_id, ip=client_ip(request)))


@post("/api/v1/sales/orders/{order_id:int}/complete", opt=perm("sales.order.edit"))
async def api_order_complete(request: Request, order_id: FromPath[int]) -> Response:
    rapport, actor = request.app.state.rapport, current_actor(request)
    return await _transition(request, order_id, "sales.order.edit", lambda: orders.complete(
        rapport, actor, order_id, ip=client_ip(request)))


@accepts(bodies.SHIPMENT)
@post("/api/v1/sales/orders/{order_id:int}/shipments", opt=perm("sales.order.fulfil"))
async def api_order_ship(request: Request, order_id: FromPath[int],
                         data: JSONBody[dict[str, Any]]) -> Response:
    """Ship ``lines`` (``[{line_id, quantity}]``) with optional ``carrier``, ``tracking``."""
    rapport, actor = request.app.state.rapport, current_actor(request)

    async def step():
        await orders.ship(rapport, actor, order_id, _quantities(data),
                          carrier=str(data.get("carrier") or ""),
                          tracking=str(data.get("tracking") or ""),
                          note=str(data.get("note") or ""), ip=client_ip(request))

    return await _transition(request, order_id, "sales.order.fulfil", step)


@accepts(bodies.CANCELLATION)
@post("/api/v1/sales/orders/{order_id:int}/cancel", opt=perm("sales.order.edit"))
async def api_order_cancel(request: Request, order_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> Response:
    """Cancel the whole order with a ``reason``, or only ``lines`` (quantities not shipped)."""
    rapport, actor = request.app.state.rapport, current_actor(request)

    async def step():
        quantities = _quantities(data) if ("lines" in data or "quantities" in data) else None
        await orders.cancel(rapport, actor, order_id, reason=str(data.get("reason") or ""),
                            quantities=quantities, ip=client_ip(request))

    return await _transition(request, order_id, "sales.order.edit", step)


@accepts(bodies.RETURN)
@post("/api/v1/sales/orders/{order_id:int}/returns", opt=perm("sales.order.edit"))
async def api_order_return(request: Request, order_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> Response:
    """Record a return of shipped ``lines`` with the customer's ``reason``."""
    rapport, actor = request.app.state.rapport, current_actor(request)

    async def step():
        await orders.record_return(rapport, actor, order_id, _quantities(data),
                                   reason=str(data.get("reason") or ""), ip=client_ip(request))

    return await _transition(request, order_id, "sales.order.edit", step)


@accepts(bodies.REFUND)
@post("/api/v1/sales/orders/{order_id:int}/returns/{return_id:int}/refunds",
      opt=perm("sales.order.refund"))
async def api_order_refund(request: Request, order_id: FromPath[int], return_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> Response:
    """Record a refund of ``amount`` (a string) by ``method`` against a return."""
    rapport, actor = request.app.state.rapport, current_actor(request)
    await visible_order(request, order_id, "sales.order.refund")
    history = await orders.order_history(order_id)
    if return_id not in {r["id"] for r in history["returns"]}:
        return problem("return", "no such return on this order", status=404)
    if isinstance(data.get("amount"), float):
        return problem("amount", 'send amounts as strings, e.g. "12.50"')

    async def step():
        await orders.refund(rapport, actor, return_id, data.get("amount"),
                            method=str(data.get("method") or ""),
                            reference=str(data.get("reference") or ""),
                            note=str(data.get("note") or ""), ip=client_ip(request))

    return await _transition(request, order_id, "sales.order.refund", step)


ROUTES = [api_orders, api_order, api_order_create, api_order_confirm, api_order_complete,
          api_order_ship, api_order_cancel, api_order_return, api_order_refund]
