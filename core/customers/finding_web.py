"""The card of a customer found through ``core.customer.find``: the minimal view (name,
e-mail, phone, city) and what may be done with it (e.g. open a case), for staff who may not
open the full record. Staff who may open it are sent to the 360° view."""

from __future__ import annotations

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.customers import finding
from core.customers.service import display_phone
from core.permissions import current_actor

# The record type plugins receive in ``record_actions`` for a card: offer only actions that
# work without reading the full record (opening a case does; editing does not).
CARD_RECORD_TYPE = "found_customer"


@get("/customers/{customer_id:int}/card", name="customer-card",
     opt={"permission": "authenticated"}, include_in_schema=False)
async def customer_card(request: Request, customer_id: FromPath[int]) -> Template | Redirect:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    found = await finding.found_customer(rapport, actor, customer_id)
    if found is None:
        raise NotFoundException("No such customer")
    if found["openable"]:
        return Redirect(f"/customers/{customer_id}", status_code=303)
    actions = [a for a in await rapport.acollect("record_actions", rapport=rapport,
                                                 record_type=CARD_RECORD_TYPE, record=found,
                                                 user=actor)
               if a.permission is None or actor.can(a.permission)]
    actions.sort(key=lambda a: (a.order, a.label))
    return Template("customers/card.html", context={
        "customer": found, "phone": display_phone(found["phone"]), "actions": actions})


ROUTES = [customer_card]
