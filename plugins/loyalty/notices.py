"""Push notifications to staff: the owner of a customer whose points will soon expire, or
whose tier changed (topics users switch on or off, labelled in plugin.EVENTS)."""

from __future__ import annotations

from typing import Any

from core.plugin import PushMessage


async def push_messages(event: Any) -> list[PushMessage]:
    payload = event.payload or {}
    owner = payload.get("owner_id")
    if not owner:
        return []
    url = f"/loyalty/members/{payload.get('member_id')}"
    if event.name == "loyalty.points.expiring":
        return [PushMessage(user_id=owner, topic=event.name,
                            title="Loyalty points about to expire",
                            body=f"{int(payload.get('points') or 0):,} points of a customer of "
                                 f"yours expire soon.", url=url)]
    direction = payload.get("direction")
    words = {"up": f"reached {payload.get('tier')}", "down": f"moved down to "
             f"{payload.get('tier') or 'no tier'}", "grace": f"will leave {payload.get('tier')} "
             f"after a grace period"}.get(direction, "changed tier")
    return [PushMessage(user_id=owner, topic=event.name, title="Loyalty tier changed",
                        body=f"A customer of yours {words}.", url=url)]
