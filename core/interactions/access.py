"""Who reaches which interaction: a query filter, never a check after loading.

Staff with ``own`` or ``team`` scope reach an interaction when they reach its customer at that
scope (the customers' own rule, so a plugin's ``row_filter`` for customers applies here too),
or when they recorded it, or when its follow-up is theirs. Portal customers use core's
convention (the ``customer`` column); the portal adds its own visibility rule on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw

from core.customers.tables import Customer
from core.interactions.tables import Interaction
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport


def customer_clause(rapport: Rapport, actor: Actor, scope: str) -> Any:
    """The customers ``actor`` reaches at ``scope`` (``own``/``team``)."""
    custom = rapport.hook.row_filter(rapport=rapport, user=actor,
                                     permission="core.customer.view", table=Customer,
                                     scope=scope)
    if custom is not None:
        return custom
    if scope == "own":
        return Customer.owner == actor.id
    clauses = [Customer.owner == actor.id]
    if actor.team_ids:
        clauses.append(Customer.team.is_in(sorted(actor.team_ids)))
    combined = clauses[0]
    for clause in clauses[1:]:
        combined = combined | clause
    return combined


def interaction_filter(rapport: Rapport, actor: Actor, scope: str) -> Any:
    if actor.id is None:
        return WhereRaw("1 = 0")
    reachable = Customer.select(Customer.id).where(customer_clause(rapport, actor, scope))
    return (Interaction.customer.is_in(reachable) | (Interaction.user == actor.id)
            | (Interaction.followup_assignee == actor.id))
