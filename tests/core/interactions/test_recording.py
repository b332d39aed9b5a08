"""Recording touch points through the one service every area and plugin uses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from core.audit import AuditEntry
from core.interactions.service import (
    InteractionError,
    complete_followup,
    my_followups,
    record_interaction,
    update_interaction,
)
from core.interactions.tables import Interaction, InteractionParticipant
from tests.core.interactions.conftest import actor_for, add_customer


async def test_recorded_interaction_is_stored_audited_and_announced(rapport):
    events = []

    async def listen(event):
        events.append(event)

    rapport.event_listeners.append(listen)
    actor = await actor_for(rapport, "ada@example.test")
    customer = await add_customer()
    other = await add_customer("Bob Babbage")
    row, created = await record_interaction(
        rapport, actor, customer_id=customer, channel="meeting", direction="outbound",
        subject="Kick-off", occurred_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        duration_seconds=1800, participants=[other], plugin="sales", plugin_record=7)
    assert created and row["user"] == actor.id and row["plugin_record"] == "7"
    assert await InteractionParticipant.count().where(
        InteractionParticipant.interaction == row["id"]).run() == 1
    audit = await AuditEntry.select().where(AuditEntry.record_type == "core_interaction").run()
    assert audit[0]["action"] == "create" and "Kick-off" in audit[0]["changes"]
    assert [e.name for e in events] == ["core.interaction.created"]
    assert events[0].payload["customer_id"] == customer
    assert events[0].payload["participants"] == [other]


async def test_replayed_client_id_returns_the_first_row(rapport):
    actor = await actor_for(rapport, "ada@example.test")
    customer = await add_customer()
    first, created = await record_interaction(rapport, actor, customer_id=customer,
                                              channel="visit", client_id="device-1:42")
    again, created_again = await record_interaction(rapport, actor, customer_id=customer,
                                                    channel="visit", subject="changed",
                                                    client_id="device-1:42")
    assert created and not created_again
    assert again["id"] == first["id"] and again["subject"] == ""
    assert await Interaction.count().run() == 1


async def test_every_bad_field_is_named(rapport):
    actor = await actor_for(rapport, "ada@example.test")
    with pytest.raises(InteractionError) as caught:
        await record_interaction(rapport, actor, customer_id=999, channel="fax",
                                 direction="sideways", subject="x" * 301,
                                 duration_seconds=-5, occurred_at="yesterday-ish")
    errors = caught.value.errors
    assert set(errors) >= {"customer_id", "channel", "direction", "subject",
                           "duration_seconds", "occurred_at"}
    assert "call, email" in errors["channel"]
    assert errors["customer_id"] == "no such customer"


async def test_customer_outside_scope_cannot_be_recorded(rapport):
    rep = await actor_for(rapport, "rep@example.test", roles=["field_representative"])
    theirs = await add_customer("Someone Else's")
    with pytest.raises(InteractionError) as caught:
        await record_interaction(rapport, rep, customer_id=theirs, channel="call")
    assert caught.value.field == "customer_id"


async def test_follow_up_defaults_to_the_recorder_and_appears_in_my_day(rapport):
    actor = await actor_for(rapport, "ada@example.test")
    customer = await add_customer()
    today = datetime.now(UTC).date()
    row, _ = await record_interaction(rapport, actor, customer_id=customer, channel="call",
                                      subject="Pricing", followup_due=today)
    assert row["followup_assignee"] == actor.id
    day = await my_followups(actor.id, today=today)
    assert [r["id"] for r in day["today"]] == [row["id"]]
    assert day["overdue"] == [] and day["upcoming"] == []
    later = await my_followups(actor.id, today=date(today.year + 1, 1, 1))
    assert [r["id"] for r in later["overdue"]] == [row["id"]]


async def test_completing_a_follow_up_removes_it_from_my_day(rapport):
    events = []

    async def listen(event):
        events.append(event.name)

    rapport.event_listeners.append(listen)
    actor = await actor_for(rapport, "ada@example.test")
    customer = await add_customer()
    row, _ = await record_interaction(rapport, actor, customer_id=customer, channel="call",
                                      followup_due=datetime.now(UTC))
    done = await complete_followup(rapport, actor, row["id"])
    assert done["followup_done"] is True
    assert (await my_followups(actor.id))["today"] == []
    assert events[-1] == "core.followup.completed"


async def test_update_names_fields_that_cannot_change(rapport):
    actor = await actor_for(rapport, "ada@example.test")
    customer = await add_customer()
    row, _ = await record_interaction(rapport, actor, customer_id=customer, channel="call")
    with pytest.raises(InteractionError) as caught:
        await update_interaction(rapport, actor, row["id"], {"customer": 5, "channel": "x"})
    assert set(caught.value.errors) == {"customer", "channel"}
    changed = await update_interaction(rapport, actor, row["id"], {"outcome": "interested"})
    assert changed["outcome"] == "interested"
    audit = await AuditEntry.select(AuditEntry.changes).where(
        AuditEntry.action == "update").first().run()
    assert json.loads(audit["changes"])["outcome"] == ["", "interested"]
