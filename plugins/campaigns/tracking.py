"""Signed links in campaign e-mails: one-click unsubscribe, the opens pixel and click
redirects, and what each does when it is followed.

A message's token is ``<message id>.<signature>``, the signature an HMAC (SHA-256) of the id
with the instance's secret, so nobody can guess another recipient's links. A click redirect
carries the number of one of the campaign's links, frozen when sending started: the target is
read from the campaign, never from the URL, so the redirect cannot send anyone elsewhere.

Each response is a touch point on the customer's timeline (an inbound e-mail interaction,
recorded once per message for the open, once per link for a click). An unsubscribe takes
effect at once: e-mail joins the customer's opted-out channels and a withdrawal of consent
for marketing e-mail is logged, so the contact-policy check refuses the very next send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import audit
from core.customers.service import announce_consent_changed
from core.customers.tables import ConsentRecord, Customer
from core.interactions.service import record_interaction
from plugins.campaigns.campaigns import frozen_links
from plugins.campaigns.tables import Message

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.campaigns")
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _signature(rapport: Rapport, message_id: int) -> str:
    key = rapport.settings.secret("campaigns_links").encode()
    digest = hmac.new(key, f"campaigns.message:{message_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def token_for(rapport: Rapport, message_id: int) -> str:
    return f"{message_id}.{_signature(rapport, message_id)}"


def message_id_of(rapport: Rapport, token: str) -> int | None:
    """The message a token names, or None when it is malformed or its signature is wrong."""
    raw_id, _, signature = (token or "").partition(".")
    if not raw_id.isdigit() or len(raw_id) > 12:
        return None
    message_id = int(raw_id)
    if not hmac.compare_digest(signature, _signature(rapport, message_id)):
        return None
    return message_id


def base_url(rapport: Rapport) -> str:
    return rapport.settings.base_url.rstrip("/")


def unsubscribe_url(rapport: Rapport, message_id: int) -> str:
    return f"{base_url(rapport)}/campaigns/u/{token_for(rapport, message_id)}"


def open_url(rapport: Rapport, message_id: int) -> str:
    return f"{base_url(rapport)}/campaigns/o/{token_for(rapport, message_id)}"


def click_url(rapport: Rapport, message_id: int, index: int) -> str:
    return f"{base_url(rapport)}/campaigns/r/{token_for(rapport, message_id)}/{index}"


async def message_for(rapport: Rapport, token: str) -> dict[str, Any] | None:
    message_id = message_id_of(rapport, token)
    if message_id is None:
        return None
    return await Message.select(
        Message.id, Message.customer, Message.state, Message.opened_at, Message.clicked_at,
        Message.unsubscribed_at, Message.email, Message.campaign,
        Message.campaign.name.as_alias("campaign_name"),
        Message.campaign.links.as_alias("links"),
    ).where(Message.id == message_id).first().run()


async def _touch_point(rapport: Rapport, message: dict[str, Any], subject: str, key: str,
                       outcome: str) -> None:
    try:
        await record_interaction(
            rapport, None, customer_id=message["customer"], channel="email",
            direction="inbound", subject=subject, purpose="marketing", outcome=outcome,
            plugin="campaigns", plugin_record=str(message["id"]),
            client_id=f"campaigns:{key}:{message['id']}")
    except Exception:  # the response is counted; a failing timeline entry must not lose it
        log.exception("recording a campaign response for message %s failed", message["id"])


async def record_open(rapport: Rapport, token: str) -> None:
    message = await message_for(rapport, token)
    if message is None or message["state"] != "sent":
        return
    first = await Message.update({Message.opened_at: datetime.now(UTC)}).where(
        (Message.id == message["id"]) & Message.opened_at.is_null()
    ).returning(Message.id).run()
    if first:
        await _touch_point(rapport, message, f"Opened “{message['campaign_name']}”", "open",
                           "opened")


async def record_click(rapport: Rapport, token: str, index: int) -> str | None:
    """The target of link ``index`` of the message's campaign (None: no such message or
    link), after counting the click."""
    message = await message_for(rapport, token)
    if message is None:
        return None
    links = frozen_links({"links": message["links"]})
    if not 0 <= index < len(links):
        return None
    now = datetime.now(UTC)
    await Message.update({Message.clicks: Message.clicks + 1}).where(
        Message.id == message["id"]).run()
    # A click implies the e-mail was opened (images are often blocked).
    await Message.update({Message.opened_at: now}).where(
        (Message.id == message["id"]) & Message.opened_at.is_null()).run()
    await Message.update({Message.clicked_at: now}).where(
        (Message.id == message["id"]) & Message.clicked_at.is_null()).run()
    await _touch_point(rapport, message, f"Clicked {links[index]} in “{message['campaign_name']}”",
                       f"click{index}", "clicked")
    return links[index]


async def unsubscribe(rapport: Rapport, token: str, *, source: str = "unsubscribe link",
                      ip: str = "") -> dict[str, Any] | None:
    """Opt the message's customer out of e-mail at once; None for a bad token. Repeating it
    changes nothing."""
    message = await message_for(rapport, token)
    if message is None:
        return None
    now = datetime.now(UTC)
    async with Message._meta.db.transaction():
        customer = await Customer.select(Customer.id, Customer.opted_out_channels).where(
            Customer.id == message["customer"]).first().run()
        if customer is None:
            return message
        channels = [c.strip() for c in (customer["opted_out_channels"] or "").split(",")
                    if c.strip()]
        if "email" not in channels:
            channels.append("email")
            await Customer.update({Customer.opted_out_channels: ",".join(channels),
                                   Customer.updated_at: now}).where(
                Customer.id == customer["id"]).run()
            [consent] = await ConsentRecord.insert(ConsentRecord(
                customer=customer["id"], purpose="marketing", channel="email", granted=False,
                source=source, recorded_at=now)).returning(ConsentRecord.id).run()
            await audit.record(None, "update", Customer._meta.tablename, customer["id"],
                               {"opted_out_channels": [customer["opted_out_channels"],
                                                       ",".join(channels)]},
                               summary=f"unsubscribed from e-mail through campaign "
                                       f"“{message['campaign_name']}”", ip=ip)
            await announce_consent_changed(rapport, None, customer["id"],
                                           ["opted_out_channels", "consent"], consent={
                "id": consent["id"], "purpose": "marketing", "channel": "email",
                "granted": False, "source": source})
        await Message.update({Message.unsubscribed_at: now}).where(
            (Message.id == message["id"]) & Message.unsubscribed_at.is_null()).run()
    await _touch_point(rapport, message, f"Unsubscribed from e-mail (“{message['campaign_name']}”)",
                       "unsubscribe", "unsubscribed")
    return message

