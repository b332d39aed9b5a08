"""Interactions under a customer merge and under privacy export and erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core import audit
from core.interactions.listing import involving
from core.interactions.tables import Interaction, InteractionParticipant


async def repoint(survivor_id: int, merged_id: int) -> None:
    """Every interaction of the merged customer (as primary customer or as participant) now
    belongs to the survivor. Runs inside the merge's transaction."""
    await Interaction.update({Interaction.customer: survivor_id}).where(
        Interaction.customer == merged_id).run()
    # A participant row naming the merged customer would repeat the survivor (as primary
    # customer or as another participant): drop those, move the rest.
    primary = Interaction.select(Interaction.id).where(Interaction.customer == survivor_id)
    already = InteractionParticipant.select(InteractionParticipant.interaction).where(
        InteractionParticipant.customer == survivor_id)
    await InteractionParticipant.delete().where(
        (InteractionParticipant.customer == merged_id)
        & (InteractionParticipant.interaction.is_in(primary)
           | InteractionParticipant.interaction.is_in(already))
    ).run()
    await InteractionParticipant.update({InteractionParticipant.customer: survivor_id}).where(
        InteractionParticipant.customer == merged_id).run()
    await InteractionParticipant.delete().where(
        (InteractionParticipant.customer == survivor_id)
        & InteractionParticipant.interaction.is_in(primary)
    ).run()


async def export(customer_id: int) -> dict[str, Any]:
    """The customer's interactions (primary or participant), oldest first."""
    found: dict[int, dict[str, Any]] = {}
    for clause in involving(customer_id):  # one indexed query per clause (see involving)
        for row in await Interaction.select(
            Interaction.id, Interaction.channel, Interaction.direction, Interaction.subject,
            Interaction.notes, Interaction.purpose, Interaction.outcome, Interaction.occurred_at,
            Interaction.duration_seconds, Interaction.plugin, Interaction.visible_in_portal,
            Interaction.followup_due, Interaction.followup_done, Interaction.followup_note,
            Interaction.created_at, Interaction.customer,
        ).where(clause).run():
            found[row["id"]] = row
    rows = sorted(found.values(), key=lambda r: (r["occurred_at"], r["id"]))
    for row in rows:
        row["role"] = "customer" if row.pop("customer") == customer_id else "participant"
    return {"core_interaction": rows}


async def erase(customer_id: int) -> None:
    """Blank what was said (subject, notes, follow-up note) in the customer's own
    interactions; keep channels, dates, directions and counts. Participations are removed."""
    ids = [r["id"] for r in await Interaction.select(Interaction.id).where(
        Interaction.customer == customer_id).run()]
    await Interaction.update({
        Interaction.subject: "", Interaction.notes: "", Interaction.followup_note: "",
        Interaction.updated_at: datetime.now(UTC),
    }).where(Interaction.customer == customer_id).run()
    # The audit trail of those interactions held the same words: redact its values too.
    if ids:
        await audit.redact(Interaction._meta.tablename, ids)
    await InteractionParticipant.delete().where(
        InteractionParticipant.customer == customer_id).run()
