"""Reminders due at a time (follow-ups), kept in the database and turned into push messages by
the background worker. A reminder whose worker died while sending is claimed again once its
claim expires, so a restart never loses one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.plugin import PushMessage
from pwa import push
from pwa.tables import Reminder

if TYPE_CHECKING:
    from core.app import Rapport

CLAIM_FOR = timedelta(minutes=5)


async def schedule(user_id: int, source: str, due_at: datetime, title: str, body: str = "",
                   url: str = "/field/", topic: str = "core.follow_up.due") -> None:
    """Create or move the reminder for ``source`` (e.g. ``follow_up:42``)."""
    values = {Reminder.user: user_id, Reminder.due_at: due_at, Reminder.title: title[:200],
              Reminder.body: body, Reminder.url: url[:500], Reminder.topic: topic,
              Reminder.status: "pending", Reminder.claimed_until: None, Reminder.sent_at: None}
    async with Reminder._meta.db.transaction():
        same = await Reminder.select(Reminder.id).where(
            (Reminder.source == source) & (Reminder.due_at == due_at)
            & (Reminder.user == user_id)).first().run()
        if same:
            # Same person, same time: keep its state, so an edit never re-sends a reminder.
            await Reminder.update({Reminder.title: title[:200], Reminder.body: body,
                                   Reminder.url: url[:500]}).where(Reminder.id == same["id"]).run()
            return
        updated = await Reminder.update(values).where(Reminder.source == source).returning(
            Reminder.id).run()
        if not updated:
            await Reminder.insert(Reminder(source=source, **{c._meta.name: v
                                                             for c, v in values.items()})).run()


async def cancel(source: str) -> None:
    await Reminder.delete().where(Reminder.source == source).run()


async def run_due(rapport: Rapport, limit: int = 50) -> int:
    """Turn due reminders into outbox rows; return how many were handled."""
    now = datetime.now(UTC)
    claimable = (Reminder.status == "pending") | (
        (Reminder.status == "claimed") & (Reminder.claimed_until < now))
    candidates = await Reminder.select(Reminder.id).where(
        claimable & (Reminder.due_at <= now)).order_by(Reminder.due_at).limit(limit).run()
    handled = 0
    for candidate in candidates:
        claimed = await Reminder.update({Reminder.status: "claimed",
                                         Reminder.claimed_until: now + CLAIM_FOR}).where(
            (Reminder.id == candidate["id"]) & claimable
        ).returning(*Reminder._meta.columns).run()
        if not claimed:
            continue  # another worker took it
        row = claimed[0]
        await push.enqueue(rapport, [PushMessage(
            user_id=row["user"], topic=row["topic"], title=row["title"], body=row["body"],
            url=row["url"], urgency="high", ttl_seconds=4 * 3600)])
        await Reminder.update({Reminder.status: "sent", Reminder.sent_at: datetime.now(UTC),
                               Reminder.claimed_until: None}).where(Reminder.id == row["id"]).run()
        handled += 1
    return handled


FOLLOW_UP_EVENT = "core.followup.changed"  # durable: published with the change itself


async def follow_up_changed(interaction_id: int) -> None:
    """Keep the reminder of one interaction's follow-up in step with it, wherever it was
    recorded or changed (field app, staff pages, API, plugins). Reads the interaction as it is
    now, so running it again (a retried delivery) changes nothing."""
    from core.interactions.tables import Interaction

    row = await Interaction.select(
        Interaction.id, Interaction.customer, Interaction.customer.name, Interaction.subject,
        Interaction.followup_due, Interaction.followup_assignee, Interaction.followup_done,
        Interaction.followup_note,
    ).where(Interaction.id == interaction_id).first().run()
    source = f"follow_up:{interaction_id}"
    if (row is None or row["followup_due"] is None or row["followup_assignee"] is None
            or row["followup_done"]):
        await cancel(source)
        return
    await schedule(row["followup_assignee"], source, row["followup_due"],
                   f"Follow up: {row['customer.name']}",
                   body=row["followup_note"] or row["subject"],
                   url=f"/field/#/customers/{row['customer']}")
