"""The plugin's pages: the list of recent visits, writing a note, and the 360° panel.

Every query goes through ``core.permissions.scoped``: a user sees the notes of the customers
they may see, and a customer outside their reach answers 404.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Response, Template

from core import records
from core.customers.tables import Customer
from core.permissions import current_actor, scoped
from rapport_visit_notes.tables import Note

VIEW = "visit_notes.note.view"
CREATE = "visit_notes.note.create"
RECENT = 50  # the list page is bounded: no unbounded scans, no COUNT(*)


async def visible_customer(request: Request, customer_id: int) -> dict:
    """The customer if the signed-in user may see it, else 404 (never load-then-check)."""
    rapport, actor = request.app.state.rapport, current_actor(request)
    query = Customer.select(Customer.id, Customer.name).where(Customer.id == customer_id)
    customer = await scoped(query, rapport, actor, "core.customer.view", Customer).first().run()
    if customer is None:
        raise NotFoundException("no such customer")
    return customer


@get("/visit-notes/", name="visit_notes:list", opt={"permission": VIEW})
async def recent_visits(request: Request) -> Template:
    rapport, actor = request.app.state.rapport, current_actor(request)
    query = Note.select(Note.id, Note.visited_on, Note.body, Note.customer,
                        Note.customer.name.as_alias("customer_name"))
    notes = await scoped(query, rapport, actor, VIEW, Note).order_by(
        Note.id, ascending=False).limit(RECENT).run()
    return Template("visit_notes/list.html", context={"notes": notes})


@get("/visit-notes/panel/{customer_id:int}", name="visit_notes:panel", opt={"permission": VIEW})
async def customer_panel(request: Request, customer_id: FromPath[int]) -> Template:
    """The 360° panel's content, loaded lazily by htmx."""
    rapport, actor = request.app.state.rapport, current_actor(request)
    customer = await visible_customer(request, customer_id)
    query = Note.select(Note.id, Note.visited_on, Note.body).where(Note.customer == customer_id)
    notes = await scoped(query, rapport, actor, VIEW, Note).order_by(
        Note.visited_on, ascending=False).limit(20).run()
    return Template("visit_notes/panel.html", context={
        "customer": customer, "notes": notes, "can_create": actor.can(CREATE),
        "today": date.today().isoformat(), "errors": {}, "values": {},
    })


@post("/visit-notes/", name="visit_notes:create", opt={"permission": CREATE}, status_code=303)
async def write_note(
    request: Request,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response:
    actor = current_actor(request)
    try:
        customer_id = int(data.get("customer", ""))
    except ValueError:
        raise NotFoundException("no such customer") from None
    customer = await visible_customer(request, customer_id)
    errors: dict[str, str] = {}
    body = data.get("body", "").strip()
    if not body:
        errors["body"] = "Write what happened on the visit."
    try:
        visited_on = date.fromisoformat(data.get("visited_on", ""))
    except ValueError:
        errors["visited_on"] = "Give the date of the visit."
    if errors:
        return Template("visit_notes/panel.html", status_code=422, context={
            "customer": customer, "notes": [], "can_create": True, "today": "",
            "errors": errors, "values": data,
        })
    await records.create(actor, Note, {"customer": customer_id, "author": actor.id,
                                       "visited_on": visited_on, "body": body},
                         ip=request.client.host if request.client else "")
    return Redirect(f"/visit-notes/panel/{customer_id}", status_code=303)
