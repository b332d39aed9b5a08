"""The interaction tables: what the timeline, "my day" and replayed uploads rely on."""

from __future__ import annotations

import pytest

from core.customers.tables import Customer
from core.interactions.tables import Interaction, InteractionParticipant


async def test_interaction_with_participant_is_stored(rapport):
    rows = await Customer.insert(Customer(kind="contact", name="Ada"),
                                 Customer(kind="contact", name="Bob")).returning(Customer.id).run()
    ada, bob = rows[0]["id"], rows[1]["id"]
    stored = await Interaction.insert(
        Interaction(customer=ada, channel="meeting", direction="outbound", subject="Kick-off")
    ).returning(Interaction.id).run()
    await InteractionParticipant.insert(
        InteractionParticipant(interaction=stored[0]["id"], customer=bob)).run()
    row = await Interaction.select().where(Interaction.id == stored[0]["id"]).first().run()
    assert row["channel"] == "meeting" and row["followup_done"] is False
    assert await InteractionParticipant.count().where(
        InteractionParticipant.customer == bob).run() == 1


async def test_client_id_cannot_be_stored_twice(rapport):
    rows = await Customer.insert(Customer(kind="contact", name="Ada")).returning(Customer.id).run()
    customer = rows[0]["id"]
    await Interaction.insert(Interaction(customer=customer, channel="call", client_id="c-1"),
                             Interaction(customer=customer, channel="call")).run()
    with pytest.raises(Exception):  # noqa: B017 - sqlite3 and asyncpg raise different types
        await Interaction.insert(Interaction(customer=customer, channel="call",
                                             client_id="c-1")).run()
