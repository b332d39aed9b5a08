"""The contact-policy check: each refusal says which rule refused, in a sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.customers.tables import ConsentRecord, Customer
from core.interactions.policy import (
    PolicyError,
    check_contact,
    fatigue_rule,
    set_fatigue_rule,
)
from core.interactions.service import record_interaction
from tests.core.interactions.conftest import add_customer


async def test_customer_without_restrictions_may_be_contacted(rapport):
    customer = await add_customer()
    decision = await check_contact(rapport, customer, "email", purpose="marketing")
    assert decision.allowed and decision.reason == ""


async def test_do_not_contact_refuses_every_channel(rapport):
    customer = await add_customer(do_not_contact=True)
    for channel in ("email", "call", "letter"):
        decision = await check_contact(rapport, customer, channel)
        assert not decision.allowed and decision.rule == "do_not_contact"
    assert decision.reason == "Ada Lovelace asked not to be contacted at all (do not contact)."


async def test_opted_out_channel_is_refused_and_others_are_not(rapport):
    customer = await add_customer(opted_out_channels="sms,call")
    refused = await check_contact(rapport, customer, "sms")
    assert refused.rule == "opted_out"
    assert refused.reason == "Ada Lovelace opted out of being contacted by SMS."
    assert (await check_contact(rapport, customer, "email")).allowed


async def test_another_channel_than_the_preferred_one_is_refused_naming_it(rapport):
    customer = await add_customer(preferred_channel="email")
    refused = await check_contact(rapport, customer, "call")
    assert refused.rule == "preferred_channel"
    assert refused.reason == ("Ada Lovelace prefers to be contacted by email, "
                              "not by phone call.")
    assert (await check_contact(rapport, customer, "email")).allowed


async def test_withdrawn_consent_for_the_purpose_is_refused(rapport):
    customer = await add_customer()
    await ConsentRecord.insert(
        ConsentRecord(customer=customer, purpose="marketing", granted=True, source="web",
                      recorded_at=datetime(2026, 1, 1, tzinfo=UTC)),
        ConsentRecord(customer=customer, purpose="marketing", granted=False, source="phone",
                      recorded_at=datetime(2026, 3, 2, tzinfo=UTC)),
    ).run()
    refused = await check_contact(rapport, customer, "email", purpose="marketing")
    assert refused.rule == "no_consent"
    assert refused.reason == "Ada Lovelace withdrew consent for marketing on 02 Mar 2026."
    assert (await check_contact(rapport, customer, "email", purpose="service")).allowed


async def test_fatigue_rule_refuses_the_fourth_outbound_contact_in_a_week(rapport):
    customer = await add_customer()
    now = datetime.now(UTC)
    for days_ago in (1, 2, 3):
        await record_interaction(rapport, None, customer_id=customer, channel="email",
                                 direction="outbound", occurred_at=now - timedelta(days=days_ago))
    await record_interaction(rapport, None, customer_id=customer, channel="call",
                             direction="inbound", occurred_at=now)  # inbound never counts
    refused = await check_contact(rapport, customer, "email")
    assert refused.rule == "fatigue"
    assert refused.reason.startswith("Ada Lovelace was already contacted 3 times in the last "
                                     "7 days (the limit is at most 3 outbound times per 7 days)")
    assert "try again after" in refused.reason
    # Four days later the oldest of the three has left the window.
    assert (await check_contact(rapport, customer, "email", at=now + timedelta(days=4))).allowed


async def test_administrator_changes_the_fatigue_rule(rapport):
    customer = await add_customer()
    await record_interaction(rapport, None, customer_id=customer, channel="email",
                             direction="outbound")
    assert (await check_contact(rapport, customer, "email")).allowed
    await set_fatigue_rule(None, 1, 30)
    assert await fatigue_rule() == type(await fatigue_rule())(1, 30)
    assert (await check_contact(rapport, customer, "email")).rule == "fatigue"
    await set_fatigue_rule(None, 0, 30)  # no limit
    assert (await check_contact(rapport, customer, "email")).allowed
    with pytest.raises(PolicyError) as caught:
        await set_fatigue_rule(None, 2, 0)
    assert caught.value.field == "period_days"


async def test_unknown_and_erased_customers_are_refused(rapport):
    assert (await check_contact(rapport, 12345, "email")).rule == "unknown_customer"
    customer = await add_customer()
    await Customer.update({Customer.erased_at: datetime.now(UTC)}).where(
        Customer.id == customer).run()
    assert (await check_contact(rapport, customer, "email")).rule == "erased"
    assert (await check_contact(rapport, customer, "pigeon")).rule == "unknown_channel"
