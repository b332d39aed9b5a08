"""The field app: one page (the shell) whose views are drawn on the device from a snapshot kept
in IndexedDB, so that it works the same online and offline. The snapshot holds the day's agenda
and the representative's own customers (with phones, addresses, recent interactions, open
follow-ups and plugins' inline panels)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template

from core.api_schemas import accepts, enum, obj, text
from core.audit import client_ip
from core.customers.service import phone_region
from core.customers.tables import Customer, CustomerAddress
from core.permissions import Actor, current_actor, scoped
from core.plugin import AgendaItem

FIELD = {"permission": "core.field.view"}
MAX_CUSTOMERS = 500  # what a phone keeps offline; the rest is reachable online through search
RECENT_INTERACTIONS = 5
OUTCOMES = ("Done", "Interested", "Order placed", "Call back", "Not interested", "No answer")


@get("/field/", opt=FIELD, include_in_schema=False)
async def field_shell(request: Request) -> Template:
    return Template("pwa/field.html", context={"outcomes": OUTCOMES})


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def phone_for_people(e164: str | None, region: str) -> str:
    """A stored E.164 number as people read it: national format (``030 123456``) when it is
    a number of ``region`` (the representative's), else international (``+49 30 123456``).
    The ``tel:`` link keeps the E.164 form."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    local = phonenumbers.region_code_for_number(number) == region
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL if local
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _address_text(row: dict[str, Any]) -> str:
    parts = [row.get("street"), " ".join(p for p in (row.get("postcode"), row.get("city")) if p),
             row.get("country")]
    return ", ".join(p for p in parts if p)


async def my_customers(rapport, actor: Actor, limit: int = MAX_CUSTOMERS) -> list[dict[str, Any]]:
    """The customers the representative owns (and may see), with their first address."""
    query = Customer.select(
        Customer.id, Customer.name, Customer.kind, Customer.primary_phone,
        Customer.primary_email, Customer.lifecycle_stage, Customer.updated_at,
    ).where((Customer.owner == actor.id) & Customer.erased_at.is_null())
    rows = await scoped(query, rapport, actor, "core.customer.view", Customer).order_by(
        Customer.name).limit(limit).run()
    ids = [r["id"] for r in rows]
    addresses: dict[int, dict[str, Any]] = {}
    if ids:
        for address in await CustomerAddress.select().where(
                CustomerAddress.customer.is_in(ids)).order_by(CustomerAddress.id).run():
            addresses.setdefault(address["customer"], address)
    customers = []
    region = phone_region(actor.region)
    for row in rows:
        address = addresses.get(row["id"])
        customers.append({
            "id": row["id"], "name": row["name"], "kind": row["kind"],
            "phone": row["primary_phone"], "email": row["primary_email"],
            "phone_display": phone_for_people(row["primary_phone"], region),
            "stage": row["lifecycle_stage"], "updated_at": _iso(row["updated_at"]),
            "address": _address_text(address) if address else "",
            "lat": _iso(address["latitude"]) if address else None,
            "lng": _iso(address["longitude"]) if address else None,
        })
    return customers


def _panels(rapport, customer: dict[str, Any], actor: Actor) -> list[dict[str, Any]]:
    """Plugins' panels for the card. Inline (html) panels travel offline; lazy (url) panels
    become links, opened when online."""
    panels = []
    for _, result in rapport.call_in_order("customer_panels", rapport=rapport,
                                           customer=customer, user=actor):
        if inspect.isawaitable(result):
            result.close()  # a coroutine: a lazy panel's job, not the snapshot's
            continue
        for panel in result or []:
            panels.append({"id": panel.id, "title": panel.title, "html": panel.html,
                           "url": panel.url, "order": panel.order})
    return sorted(panels, key=lambda p: (p["order"], p["title"]))


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def sort_agenda(items: Iterable[AgendaItem]) -> list[AgendaItem]:
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda i: (i.starts_at or far, i.order, i.title))


async def agenda(rapport, actor: Actor, day: date) -> list[AgendaItem]:
    """Core's visits and follow-ups for the day, plus what plugins add (``agenda_items``)."""
    items: list[AgendaItem] = list(await core_agenda(rapport, actor, day))
    items += [i for i in await rapport.acollect("agenda_items", rapport=rapport, user=actor,
                                                  day=day) if isinstance(i, AgendaItem)]
    return sort_agenda(items)


async def core_agenda(rapport, actor: Actor, day: date) -> list[AgendaItem]:
    from pwa import interactions_bridge as bridge

    return await bridge.agenda(rapport, actor, day)


async def snapshot(rapport, actor: Actor, day: date) -> dict[str, Any]:
    from pwa import interactions_bridge as bridge

    customers = await my_customers(rapport, actor)
    by_id = {c["id"]: c for c in customers}
    recent = await bridge.recent_interactions(rapport, actor, list(by_id), RECENT_INTERACTIONS)
    follow_ups = await bridge.open_follow_ups(rapport, actor, list(by_id))
    for customer in customers:
        customer["interactions"] = recent.get(customer["id"], [])
        customer["follow_ups"] = follow_ups.get(customer["id"], [])
        customer["panels"] = _panels(rapport, customer, actor)
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "day": day.isoformat(),
        "user": {"id": actor.id, "name": actor.name},
        "agenda": [{"title": i.title, "url": i.url, "kind": i.kind,
                    "starts_at": _iso(i.starts_at), "customer_id": i.customer_id,
                    "detail": i.detail} for i in await agenda(rapport, actor, day)],
        "customers": customers,
        "outcomes": list(OUTCOMES),
        "complete": len(customers) < MAX_CUSTOMERS,
    }


@get("/api/v1/field/snapshot", opt=FIELD, tags=["field"])
async def field_snapshot(request: Request, day: FromQuery[date | None] = None) -> dict[str, Any]:
    """Everything the field app keeps on the device: today's agenda and my customers.

    ``day`` is the device's local date (its "today"), defaulting to the server's.
    """
    actor = current_actor(request)
    return await snapshot(request.app.state.rapport, actor, day or datetime.now(UTC).date())


@accepts(obj({"kind": enum("interaction", "follow_up"), "client_id": text(100, 1)},
             required=["kind", "client_id"],
             description="One item the field app recorded offline; the other fields follow "
                         "its kind (docs/pwa.md)."))
@post("/api/v1/field/sync", opt={**FIELD, "write_permission": "core.interaction.create"}, tags=["field"], status_code=200)
async def field_sync(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Upload one item recorded on the device (idempotent on its ``client_id``).

    Answers ``{"status": "created" | "updated" | "conflict", "record_id", "message",
    "replayed"}``; a problem+json naming the field when the item is refused.
    """
    from pwa import sync
    from pwa.push_web import problem, require_csrf_header

    require_csrf_header(request)
    rapport = request.app.state.rapport
    actor = current_actor(request)
    if "core.interaction.create" in rapport.permissions and not actor.can(
            "core.interaction.create"):
        raise PermissionDeniedException("permission 'core.interaction.create' is required")
    try:
        answer = await sync.handle(rapport, actor, data,
                                   ip=client_ip(request))
    except sync.SyncError as exc:
        return problem(exc.status, "Upload refused", exc.field, exc.message)
    return Response(answer, status_code=200)


@get("/field/attachments/{attachment_id:int}", opt=FIELD, include_in_schema=False)
async def field_attachment(request: Request, attachment_id: FromPath[int]) -> Response:
    """A photo or signature, to whoever may see its customer (404 otherwise)."""
    from pwa.tables import FieldAttachment

    rapport = request.app.state.rapport
    row = await FieldAttachment.select().where(FieldAttachment.id == attachment_id).first().run()
    if row is None:
        raise NotFoundException()
    visible = scoped(Customer.select(Customer.id).where(Customer.id == row["customer"]),
                     rapport, current_actor(request), "core.customer.view", Customer)
    if not await visible.first().run():
        raise NotFoundException()
    path = (rapport.settings.data_dir / row["path"]).resolve()
    if not path.is_relative_to(rapport.settings.data_dir.resolve()) or not path.exists():
        raise NotFoundException()
    return Response(path.read_bytes(), media_type=row["content_type"],
                    headers={"cache-control": "private, max-age=3600"})


ROUTES = [field_shell, field_snapshot, field_sync, field_attachment]
