"""The in-app inbox: every PushMessage is kept here for its user, read or not.

Flow: an event -> ``push_notifications`` hook -> :func:`pwa.push.enqueue`, which calls
:func:`store` before it looks at devices or preferences: the inbox holds every message,
including topics the user switched off for push (push preferences decide what interrupts a
device; the inbox is passive and never interrupts). Each stored message nudges the user's live
channel so the bell's count updates in every open tab.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.notifications.tables import Notification

if TYPE_CHECKING:
    from core.app import Rapport
    from core.plugin import PushMessage

log = logging.getLogger("rapport.notifications")

RETENTION = timedelta(days=90)  # read notifications older than this are purged
PURGE_EVERY_SECONDS = 3600.0
PURGE_BATCH = 5000  # rows per delete, so one purge never holds long locks
PURGE_MAX_BATCHES = 20  # per round; the next round continues
UNREAD_CAP = 100  # the bell says "99+" rather than counting a huge backlog
PAGE_SIZE = 30
BODY_LIMIT = 4000


def safe_url(url: str | None) -> str:
    """Only a path on this site becomes a link: a message's URL never sends a user elsewhere
    (``//host`` and ``javascript:`` are dropped)."""
    url = (url or "").strip()
    if not url.startswith("/") or url.startswith("//") or url.startswith("/\\"):
        return ""
    return url[:2000]


async def store(rapport: Rapport | None, messages: list[PushMessage]) -> int:
    """Keep each message in its user's inbox; return how many rows were added."""
    if not messages:
        return 0
    now = datetime.now(UTC)
    rows = [Notification(user=m.user_id, topic=(m.topic or "")[:100], title=(m.title or "")[:200],
                         body=(m.body or "")[:BODY_LIMIT], url=safe_url(m.url), created_at=now)
            for m in messages]
    await Notification.insert(*rows).run()
    if rapport is not None:
        nudge(rapport, {m.user_id for m in messages})
    return len(rows)


def nudge(rapport: Rapport, user_ids: set[int]) -> None:
    """Tell the users' open pages that their inbox changed (no contents on the channel)."""
    from core.live import Channels

    plugin = getattr(rapport, "live", (None, None))[0]
    if plugin is None or not user_ids:
        return
    names = Channels(rapport)
    try:
        plugin.publish({"event": "core.notification.changed"},
                       [names.notifications(u) for u in sorted(user_ids)])
    except Exception:  # the bell catches up on the next page load
        log.exception("could not publish notification change")


async def unread_count(user_id: int) -> int:
    """Unread notifications, counted up to :data:`UNREAD_CAP` (index: user, read_at, id)."""
    rows = await Notification.select(Notification.id).where(
        (Notification.user == user_id) & Notification.read_at.is_null()
    ).limit(UNREAD_CAP).run()
    return len(rows)


async def page(user_id: int, *, before: int | None = None, unread_only: bool = False,
               limit: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, keyset by id; returns (rows, the ``before`` of the next page or None)."""
    limit = max(1, min(int(limit), 200))
    where = Notification.user == user_id
    if unread_only:
        where &= Notification.read_at.is_null()
    if before is not None:
        where &= Notification.id < before
    rows = await Notification.select(
        Notification.id, Notification.topic, Notification.title, Notification.body,
        Notification.url, Notification.created_at, Notification.read_at,
    ).where(where).order_by(Notification.id, ascending=False).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more else None)


async def get(user_id: int, notification_id: int) -> dict[str, Any] | None:
    return await Notification.select().where(
        (Notification.id == notification_id) & (Notification.user == user_id)).first().run()


async def mark_read(rapport: Rapport | None, user_id: int, notification_id: int) -> bool:
    """Mark one of the user's own notifications read; ``False`` when it is not theirs."""
    row = await get(user_id, notification_id)
    if row is None:
        return False
    if row["read_at"] is None:
        await Notification.update({Notification.read_at: datetime.now(UTC)}).where(
            (Notification.id == notification_id) & Notification.read_at.is_null()).run()
        if rapport is not None:
            nudge(rapport, {user_id})
    return True


async def mark_all_read(rapport: Rapport | None, user_id: int) -> int:
    rows = await Notification.update({Notification.read_at: datetime.now(UTC)}).where(
        (Notification.user == user_id) & Notification.read_at.is_null()
    ).returning(Notification.id).run()
    if rows and rapport is not None:
        nudge(rapport, {user_id})
    return len(rows)


async def erase_customer(customer_id: int) -> int:
    """Delete notifications linking to one customer (``…/customers/<id>`` in their URL): their
    titles and bodies often name the customer. Notifications without such a link cannot be
    told apart and stay until read and purged."""
    path = f"/customers/{int(customer_id)}"
    link = Notification.url
    rows = await Notification.delete().where(
        link.like(f"%{path}") | link.like(f"%{path}/%") | link.like(f"%{path}?%")
        | link.like(f"%{path}#%")
    ).returning(Notification.id).run()
    return len(rows)


async def purge(now: datetime | None = None) -> int:
    """Delete read notifications older than :data:`RETENTION`, in bounded batches; unread
    ones are kept however old. Returns how many were deleted."""
    cutoff = (now or datetime.now(UTC)) - RETENTION
    deleted = 0
    for _ in range(PURGE_MAX_BATCHES):
        ids = [r["id"] for r in await Notification.select(Notification.id).where(
            Notification.read_at.is_not_null() & (Notification.read_at < cutoff)
        ).limit(PURGE_BATCH).run()]
        if not ids:
            break
        await Notification.delete().where(Notification.id.is_in(ids)).run()
        deleted += len(ids)
        if len(ids) < PURGE_BATCH:
            break
    return deleted


async def purge_job(rapport: Rapport, job) -> None:
    """The hourly ``core.notifications.purge`` job; deleting twice deletes nothing more."""
    removed = await purge()
    if removed:
        log.info("purged %s read notifications older than %s days", removed, RETENTION.days)
