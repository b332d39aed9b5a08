"""The contact-policy check every plugin asks before an outbound touch point.

    decision = await check_contact(rapport, customer_id, "sms", purpose="marketing")
    if not decision.allowed:
        show(decision.reason)   # a sentence a user understands

It enforces, in this order: the customer exists and was not erased; do-not-contact; the
channel opt-outs; the consent log for the purpose; the preferred channel (never force a
customer onto another one); and the fatigue rule (at most N outbound interactions per
customer per period, an instance setting administrators change at /admin/contact-policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core import audit
from core.customers.tables import CHANNELS, ConsentRecord, Customer
from core.instance import InstanceSetting
from core.interactions import stored_settings
from core.interactions.tables import Interaction
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport

FATIGUE_KEY = "contact_policy.fatigue"
DEFAULT_MAX_OUTBOUND = 3
DEFAULT_PERIOD_DAYS = 7
CHANNEL_WORDS = {"call": "phone call", "email": "email", "meeting": "meeting",
                 "visit": "visit", "chat": "chat", "sms": "SMS", "letter": "letter",
                 "web": "the website", "portal": "the portal", "push": "push notification",
                 "social": "social media"}


@dataclass(frozen=True)
class PolicyDecision:
    """``allowed`` or not, and ``reason``: a sentence naming the rule (empty when allowed).
    ``rule`` is a stable word for code: ``ok``, ``unknown_customer``, ``erased``,
    ``do_not_contact``, ``opted_out``, ``no_consent``, ``preferred_channel``, ``fatigue``,
    ``unknown_channel``."""

    allowed: bool
    reason: str = ""
    rule: str = "ok"

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class FatigueRule:
    max_outbound: int = DEFAULT_MAX_OUTBOUND
    period_days: int = DEFAULT_PERIOD_DAYS

    def describe(self) -> str:
        if self.max_outbound <= 0:
            return "no limit"
        times = "time" if self.max_outbound == 1 else "times"
        days = "day" if self.period_days == 1 else "days"
        return f"at most {self.max_outbound} outbound {times} per {self.period_days} {days}"


class PolicyError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors = {field: message}


async def fatigue_rule() -> FatigueRule:
    """The instance's fatigue rule (defaults: 3 outbound per 7 days)."""
    value = await stored_settings.read(FATIGUE_KEY)
    if value is None:
        return FatigueRule()
    try:
        data = json.loads(value)
        return FatigueRule(int(data["max_outbound"]), int(data["period_days"]))
    except (ValueError, KeyError, TypeError):
        return FatigueRule()


async def set_fatigue_rule(actor: Actor | None, max_outbound: int | str, period_days: int | str,
                           *, ip: str = "") -> FatigueRule:
    """Change the fatigue rule (0 outbound means no limit); audited."""
    try:
        limit = int(max_outbound)
    except (TypeError, ValueError):
        raise PolicyError("max_outbound", "must be a whole number") from None
    try:
        days = int(period_days)
    except (TypeError, ValueError):
        raise PolicyError("period_days", "must be a whole number") from None
    if not 0 <= limit <= 1000:
        raise PolicyError("max_outbound", "must be between 0 (no limit) and 1000")
    if not 1 <= days <= 3650:
        raise PolicyError("period_days", "must be between 1 and 3650 days")
    before = await fatigue_rule()
    rule = FatigueRule(limit, days)
    value = json.dumps({"max_outbound": limit, "period_days": days})
    async with InstanceSetting._meta.db.transaction():
        await stored_settings.write(FATIGUE_KEY, value)
        await audit.record(actor, "update", InstanceSetting._meta.tablename, FATIGUE_KEY,
                           {"fatigue": [before.describe(), rule.describe()]},
                           summary="contact policy: fatigue rule", ip=ip)
    return rule


def _opted_out(customer: dict) -> set[str]:
    return {c.strip().lower() for c in (customer["opted_out_channels"] or "").split(",")
            if c.strip()}


def _words(channel: str) -> str:
    return CHANNEL_WORDS.get(channel, channel)


async def check_contact(rapport: Rapport | None, customer_id: int, channel: str, *,
                        purpose: str = "", at: datetime | None = None) -> PolicyDecision:
    """May the organisation reach out to ``customer_id`` through ``channel`` now (or ``at``)?

    Call it before any outbound touch point (a campaign email, a reminder SMS, a sales call);
    it reads the customer's preferences, consent log and recent outbound interactions with
    bounded, indexed queries. ``purpose`` (e.g. ``"marketing"``) is matched against the
    consent log: the latest record for that purpose (this channel or all channels) wins.
    """
    channel = (channel or "").strip().lower()
    if channel not in CHANNELS:
        return PolicyDecision(False, f"“{channel}” is not a channel Rapport knows "
                                     f"(one of {', '.join(CHANNELS)}).", "unknown_channel")
    customer = await Customer.select(
        Customer.id, Customer.name, Customer.do_not_contact, Customer.opted_out_channels,
        Customer.preferred_channel, Customer.erased_at,
    ).where(Customer.id == customer_id).first().run()
    if customer is None:
        return PolicyDecision(False, f"Customer {customer_id} does not exist.",
                              "unknown_customer")
    if customer["erased_at"] is not None:
        return PolicyDecision(False, "This customer's personal data was erased on request; "
                                     "they must not be contacted.", "erased")
    name = customer["name"] or f"Customer {customer_id}"
    if customer["do_not_contact"]:
        return PolicyDecision(False, f"{name} asked not to be contacted at all "
                                     "(do not contact).", "do_not_contact")
    if channel in _opted_out(customer):
        return PolicyDecision(False, f"{name} opted out of being contacted by "
                                     f"{_words(channel)}.", "opted_out")
    purpose = (purpose or "").strip()
    if purpose:
        consent = await ConsentRecord.select(ConsentRecord.granted, ConsentRecord.recorded_at,
                                             ConsentRecord.channel).where(
            (ConsentRecord.customer == customer_id) & (ConsentRecord.purpose == purpose)
            & ConsentRecord.channel.is_in([channel, ""])
        ).order_by(ConsentRecord.recorded_at, ascending=False).order_by(
            ConsentRecord.id, ascending=False).first().run()
        if consent is not None and not consent["granted"]:
            when = consent["recorded_at"].strftime("%d %b %Y")
            return PolicyDecision(False, f"{name} withdrew consent for {purpose} on {when}.",
                                  "no_consent")
    preferred = (customer["preferred_channel"] or "").strip().lower()
    if preferred and preferred != channel:
        return PolicyDecision(False, f"{name} prefers to be contacted by {_words(preferred)}, "
                                     f"not by {_words(channel)}.", "preferred_channel")
    rule = await fatigue_rule()
    if rule.max_outbound > 0:
        moment = (at or datetime.now(UTC)).astimezone(UTC)
        since = moment - timedelta(days=rule.period_days)
        # Bounded: at most N rows through the (customer, direction, occurred_at) index.
        recent = await Interaction.select(Interaction.occurred_at).where(
            (Interaction.customer == customer_id) & (Interaction.direction == "outbound")
            & (Interaction.occurred_at > since) & (Interaction.occurred_at <= moment)
        ).order_by(Interaction.occurred_at, ascending=False).limit(rule.max_outbound).run()
        if len(recent) >= rule.max_outbound:
            free_again = recent[-1]["occurred_at"] + timedelta(days=rule.period_days)
            return PolicyDecision(
                False,
                f"{name} was already contacted {len(recent)} "
                f"{'time' if len(recent) == 1 else 'times'} in the last {rule.period_days} "
                f"days (the limit is {rule.describe()}); try again after "
                f"{free_again.strftime('%d %b %Y %H:%M')} UTC.",
                "fatigue",
            )
    return PolicyDecision(True)
