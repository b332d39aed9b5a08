"""Finding any caller: the ``core.customer.find`` grant and the minimal view it gives.

A help desk must be able to open a case for whoever calls, but an agent should not read the
whole record of every customer to do so. ``core.customer.find`` (granted with a scope, ``all``
for the built-in service agent) lets the customer picker and global search find customers
beyond ``core.customer.view``, showing only name, e-mail, phone and city; the full record (360°
view, timeline, edits) still needs ``core.customer.view`` in scope.

Every query here is bounded by the ids of one page of hits and goes through primary keys or
``core_customer_address.customer``'s index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw

from core.customers.tables import Customer, CustomerAddress
from core.permissions import Actor, row_filter, scoped

if TYPE_CHECKING:
    from core.app import Rapport

FIND = "core.customer.find"
VIEW = "core.customer.view"
# The fields of a found customer shown to someone who may not open the record.
MINIMAL_FIELDS = ("id", "kind", "name", "email", "phone", "city")


def find_filter(rapport: Rapport, actor: Actor) -> Any | None:
    """Where-clause of the customers ``actor`` may find: those they may view, plus those in
    the scope of ``core.customer.find``. ``None`` means every customer."""
    view = row_filter(rapport, actor, VIEW, Customer) if actor.can(VIEW) else WhereRaw("1 = 0")
    if actor.kind != "staff" or not actor.can(FIND):
        return view
    find = row_filter(rapport, actor, FIND, Customer)
    if view is None or find is None:
        return None
    return view | find


def may_find(actor: Actor) -> bool:
    return actor.kind == "staff" and (actor.can(VIEW) or actor.can(FIND))


async def openable_ids(rapport: Rapport, actor: Actor, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` (one page of hits) ``actor`` may open in full."""
    wanted = sorted(set(ids))
    if not wanted or not actor.can(VIEW):
        return set()
    if actor.grants.get(VIEW) == "all" and actor.kind == "staff":
        return set(wanted)
    query = Customer.select(Customer.id).where(Customer.id.is_in(wanted))
    return {r["id"] for r in await scoped(query, rapport, actor, VIEW, Customer).run()}


async def cities(ids: Iterable[int]) -> dict[int, str]:
    """The city of each customer's first address (by address id), for one page of hits."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await CustomerAddress.select(
        CustomerAddress.customer, CustomerAddress.city
    ).where(CustomerAddress.customer.is_in(wanted), CustomerAddress.city != "").order_by(
        CustomerAddress.id).run()
    found: dict[int, str] = {}
    for row in rows:
        found.setdefault(row["customer"], row["city"])
    return found


async def found_customer(rapport: Rapport, actor: Actor, customer_id: int
                         ) -> dict[str, Any] | None:
    """The minimal view of one customer ``actor`` may find (``None`` when out of reach), with
    ``openable`` saying whether they may open the full record."""
    if not may_find(actor):
        return None
    query = Customer.select(Customer.id, Customer.kind, Customer.name, Customer.primary_email,
                            Customer.primary_phone).where(
        Customer.id == customer_id, Customer.erased_at.is_null())
    where = find_filter(rapport, actor)
    if where is not None:
        query = query.where(where)
    row = await query.first().run()
    if row is None:
        return None
    city = (await cities([customer_id])).get(customer_id, "")
    return {"id": row["id"], "kind": row["kind"], "name": row["name"],
            "email": row["primary_email"] or "", "phone": row["primary_phone"] or "",
            "city": city,
            "openable": customer_id in await openable_ids(rapport, actor, [customer_id])}
