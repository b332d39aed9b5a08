"""Interactions under customer merges, privacy export and erasure, and demo data."""

from __future__ import annotations

from core.audit import AuditEntry
from core.interactions.demo import seed_demo_interactions, seed_interactions
from core.interactions.service import record_interaction
from core.interactions.tables import Interaction, InteractionParticipant
from tests.core.interactions.conftest import add_customer


async def test_merge_keeps_every_interaction_and_participation(rapport):
    from core.customers.merge import merge_customers

    survivor = await add_customer("Ada Lovelace")
    merged = await add_customer("A. Lovelace")
    other = await add_customer("Bob")
    await record_interaction(rapport, None, customer_id=survivor, channel="call")
    await record_interaction(rapport, None, customer_id=merged, channel="email",
                             participants=[survivor])
    await record_interaction(rapport, None, customer_id=other, channel="meeting",
                             participants=[merged])
    await merge_customers(rapport, None, survivor, merged)
    assert await Interaction.count().where(Interaction.customer == survivor).run() == 2
    assert await Interaction.count().where(Interaction.customer == merged).run() == 0
    rows = await InteractionParticipant.select().run()
    # The survivor no longer "participates" in its own interaction; Bob's meeting follows.
    assert [(r["customer"]) for r in rows] == [survivor]


async def test_privacy_export_and_erasure_of_interactions(rapport):
    from core.privacy.service import erase_customer, export_customer

    ada = await add_customer("Ada Lovelace")
    bob = await add_customer("Bob")
    await record_interaction(rapport, None, customer_id=ada, channel="call",
                             subject="Her divorce", notes="Private details")
    await record_interaction(rapport, None, customer_id=bob, channel="meeting",
                             subject="Bob's meeting", participants=[ada])
    exported = await export_customer(rapport, ada)
    section = exported["sections"]["core_interaction"]
    assert {r["role"] for r in section} == {"customer", "participant"}
    assert any(r["notes"] == "Private details" for r in section)
    await erase_customer(rapport, None, ada)
    row = await Interaction.select().where(Interaction.customer == ada).first().run()
    assert row["subject"] == "" and row["notes"] == "" and row["channel"] == "call"
    assert await Interaction.count().run() == 2  # counts and dates stay
    trail = await AuditEntry.select(AuditEntry.changes).where(
        (AuditEntry.record_type == "core_interaction")
        & (AuditEntry.record_id == str(row["id"]))).run()
    assert all("Private details" not in t["changes"] for t in trail)


async def test_demo_interactions_are_idempotent_and_bulk_seeding_adds_rows(rapport):
    for i in range(4):
        await add_customer(f"Customer {i}")
    created = await seed_demo_interactions(rapport, 4)
    assert created == 20 and await Interaction.count().run() == 20
    assert await seed_demo_interactions(rapport, 4) == 0
    assert await seed_interactions(1234) == 1234
    assert await Interaction.count().run() == 1254
    newest = await Interaction.select().order_by(Interaction.id, ascending=False).first().run()
    assert newest["channel"] and newest["occurred_at"].tzinfo is not None
