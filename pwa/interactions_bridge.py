"""Everything the field app reads from core's interactions (``core_interaction``): the day's
visits and follow-ups, each customer's recent touch points and open follow-ups."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core.interactions.tables import Interaction
from core.permissions import Actor, scoped
from core.plugin import AgendaItem
from pwa import field as _field


async def agenda(rapport, actor: Actor, day: date) -> list[AgendaItem]:
    """Follow-ups due that day (or overdue) assigned to the user, and the user's visits."""
    start, end = _field.day_bounds(day)
    items: list[AgendaItem] = []
    due = await Interaction.select(
        Interaction.id, Interaction.customer, Interaction.customer.name, Interaction.subject,
        Interaction.followup_due, Interaction.followup_note,
    ).where(
        (Interaction.followup_assignee == actor.id) & (Interaction.followup_done == False)  # noqa: E712
        & (Interaction.followup_due < end)
    ).order_by(Interaction.followup_due).limit(200).run()
    for row in due:
        overdue = row["followup_due"] < start
        items.append(AgendaItem(
            title=f"Follow up: {row['customer.name']}", kind="follow_up",
            url=f"/field/#/customers/{row['customer']}",
            starts_at=None if overdue else row["followup_due"], customer_id=row["customer"],
            detail=("Overdue · " if overdue else "") + (row["followup_note"] or row["subject"]),
            order=10 if overdue else 50,
        ))
    visits = await Interaction.select(
        Interaction.id, Interaction.customer, Interaction.customer.name, Interaction.subject,
        Interaction.occurred_at,
    ).where(
        (Interaction.user == actor.id) & (Interaction.channel == "visit")
        & (Interaction.occurred_at >= start) & (Interaction.occurred_at < end)
    ).order_by(Interaction.occurred_at).limit(100).run()
    for row in visits:
        items.append(AgendaItem(
            title=f"Visit: {row['customer.name']}", kind="visit",
            url=f"/field/#/customers/{row['customer']}", starts_at=row["occurred_at"],
            customer_id=row["customer"], detail=row["subject"],
        ))
    return items


def _iso(value):
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _visible(rapport, actor: Actor, query):
    """Interactions the actor may see (``None`` when they may see none at all)."""
    if not actor.can("core.interaction.view"):
        return None
    return scoped(query, rapport, actor, "core.interaction.view", Interaction)


async def recent_interactions(rapport, actor: Actor, customer_ids: list[int],
                              per_customer: int) -> dict[int, list]:
    """The last few touch points of each customer, in one bounded query."""
    query = _visible(rapport, actor, Interaction.select(
        Interaction.id, Interaction.customer, Interaction.channel, Interaction.subject,
        Interaction.notes, Interaction.outcome, Interaction.occurred_at, Interaction.client_id,
    ))
    if not customer_ids or query is None:
        return {}
    rows = await query.where(Interaction.customer.is_in(customer_ids)).order_by(
        Interaction.occurred_at, ascending=False).limit(len(customer_ids) * per_customer).run()
    found: dict[int, list] = {}
    for row in rows:
        bucket = found.setdefault(row["customer"], [])
        if len(bucket) < per_customer:
            bucket.append({"id": row["id"], "channel": row["channel"], "subject": row["subject"],
                           "notes": row["notes"][:500], "outcome": row["outcome"],
                           "occurred_at": _iso(row["occurred_at"]),
                           "client_id": row["client_id"]})
    return found


async def open_follow_ups(rapport, actor: Actor, customer_ids: list[int]) -> dict[int, list]:
    query = _visible(rapport, actor, Interaction.select(
        Interaction.id, Interaction.customer, Interaction.subject, Interaction.followup_due,
        Interaction.followup_note, Interaction.updated_at,
    ))
    if not customer_ids or query is None:
        return {}
    rows = await query.where(Interaction.customer.is_in(customer_ids) & Interaction.followup_due.is_not_null()
            & (Interaction.followup_done == False)  # noqa: E712
            ).order_by(Interaction.followup_due).limit(1000).run()
    found: dict[int, list] = {}
    for row in rows:
        found.setdefault(row["customer"], []).append({
            "interaction_id": row["id"], "subject": row["subject"],
            "due": _iso(row["followup_due"]), "note": row["followup_note"],
            "updated_at": _iso(row["updated_at"]),
        })
    return found
