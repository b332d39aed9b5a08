"""Campaigns' part in core's customer operations: merging two customers moves the merged
one's campaign messages to the survivor (where both got the same campaign the survivor's
row stays: one recipient, one message), the privacy export lists every campaign e-mail a
customer was sent or excluded from, and erasure blanks the address each message went to
(states and dates stay for the campaigns' counts)."""

from __future__ import annotations

import json
from typing import Any

from plugins.campaigns.tables import Message


async def merge(survivor_id: int, merged_id: int) -> None:
    """Runs inside core's merge transaction."""
    both = await Message.select(Message.campaign).where(Message.customer == survivor_id).run()
    shared = [row["campaign"] for row in both]
    if shared:
        await Message.delete().where((Message.customer == merged_id)
                                     & Message.campaign.is_in(shared)).run()
    await Message.update({Message.customer: survivor_id}).where(
        Message.customer == merged_id).run()


async def export(customer_id: int) -> dict[str, Any]:
    rows = await Message.select(
        Message.campaign.name.as_alias("campaign"), Message.email, Message.state,
        Message.reason, Message.sent_at, Message.opened_at, Message.clicked_at, Message.clicks,
        Message.unsubscribed_at,
    ).where(Message.customer == customer_id).order_by(Message.id).limit(100_000).run()
    return {"campaign_emails": json.loads(json.dumps(rows, default=str))} if rows else {}


async def erase(customer_id: int) -> None:
    await Message.update({Message.email: "", Message.detail: ""}).where(
        Message.customer == customer_id).run()
