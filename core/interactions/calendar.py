"""Each user's secret iCalendar feed of their follow-ups and visits.

A phone calendar subscribes to ``/calendar/<token>.ics`` without signing in, so the token is
the credential: ``<user id>-<HMAC of the user id and a per-user nonce>``. The nonce lives in
``core_instance_setting``; regenerating the URL changes it and the old URL stops working at
once. Nothing secret is stored in clear, and the URL can be shown again on the page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from core.interactions import stored_settings
from core.interactions.tables import Interaction

FEED_PAST_DAYS = 30
FEED_FUTURE_DAYS = 180
FEED_LIMIT = 500


def _key(user_id: int) -> str:
    return f"calendar.nonce.{int(user_id)}"


async def _nonce(user_id: int, *, create: bool) -> str | None:
    nonce = await stored_settings.read(_key(user_id))
    if nonce is not None or not create:
        return nonce
    return await regenerate(user_id)


async def regenerate(user_id: int) -> str:
    """A new nonce for the user: the previous feed URL stops working."""
    nonce = secrets.token_urlsafe(16)
    await stored_settings.write(_key(user_id), nonce)
    return nonce


def _sign(secret: str, user_id: int, nonce: str) -> str:
    message = f"calendar:{int(user_id)}:{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


async def feed_token(secret: str, user_id: int) -> str:
    nonce = await _nonce(user_id, create=True)
    return f"{int(user_id)}-{_sign(secret, user_id, nonce)}"


async def user_for_token(secret: str, token: str) -> int | None:
    """The user a feed token belongs to, or ``None`` (wrong, old or malformed token)."""
    user_part, _, signature = token.partition("-")
    if not user_part.isdigit() or not signature:
        return None
    user_id = int(user_part)
    nonce = await _nonce(user_id, create=False)
    if nonce is None or not hmac.compare_digest(signature, _sign(secret, user_id, nonce)):
        return None
    return user_id


async def feed(user_id: int, *, instance_name: str, base_url: str) -> bytes:
    """The iCalendar document: open follow-ups assigned to the user and the user's visits,
    from a month ago to six months ahead (bounded)."""
    now = datetime.now(UTC)
    start, end = now - timedelta(days=FEED_PAST_DAYS), now + timedelta(days=FEED_FUTURE_DAYS)
    followups = await Interaction.select(
        Interaction.id, Interaction.customer, Interaction.customer.name, Interaction.subject,
        Interaction.followup_due, Interaction.followup_note, Interaction.updated_at,
    ).where(
        (Interaction.followup_assignee == user_id) & (Interaction.followup_done == False)  # noqa: E712
        & (Interaction.followup_due >= start) & (Interaction.followup_due < end)
    ).order_by(Interaction.followup_due).limit(FEED_LIMIT).run()
    visits = await Interaction.select(
        Interaction.id, Interaction.customer, Interaction.customer.name, Interaction.subject,
        Interaction.occurred_at, Interaction.duration_seconds, Interaction.updated_at,
    ).where(
        (Interaction.user == user_id) & (Interaction.channel == "visit")
        & (Interaction.occurred_at >= start) & (Interaction.occurred_at < end)
    ).order_by(Interaction.occurred_at).limit(FEED_LIMIT).run()
    host = base_url.split("://", 1)[-1].split("/", 1)[0] or "rapport"
    calendar = Calendar()
    calendar.add("prodid", "-//Rapport CRM//Follow-ups and visits//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{instance_name}: my follow-ups and visits")
    for row in followups:
        event = Event()
        event.add("uid", f"followup-{row['id']}@{host}")
        event.add("summary", f"Follow up: {row['customer.name']}")
        event.add("dtstart", row["followup_due"])
        event.add("dtend", row["followup_due"] + timedelta(minutes=30))
        event.add("dtstamp", row["updated_at"])
        event.add("description", row["followup_note"] or row["subject"] or "")
        event.add("url", f"{base_url}/customers/{row['customer']}")
        calendar.add_component(event)
    for row in visits:
        event = Event()
        event.add("uid", f"visit-{row['id']}@{host}")
        event.add("summary", f"Visit: {row['customer.name']}")
        event.add("dtstart", row["occurred_at"])
        event.add("dtend", row["occurred_at"] + timedelta(
            seconds=row["duration_seconds"] or 3600))
        event.add("dtstamp", row["updated_at"])
        event.add("description", row["subject"] or "")
        event.add("url", f"{base_url}/customers/{row['customer']}")
        calendar.add_component(event)
    return calendar.to_ical()
