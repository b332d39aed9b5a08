"""Consent and contact-preference changes are durable events (core.customer.consent_changed):
recorded in the transaction of the change, handed to subscribers by the worker, and never
announced when the change is undone. Both databases."""

from __future__ import annotations

import json

import pytest

from core import jobs
from core.customers.service import create_customer, update_customer
from core.customers.tables import Customer
from core.identity.users import load_actor
from core.jobs_tables import OutboxEvent
from core.privacy.service import record_consent
from tests.conftest import make_user
from tests.core.events.helpers import Subscriber

EVENT = "core.customer.consent_changed"


class Undo(Exception):
    pass


async def _stored() -> list[dict]:
    rows = await OutboxEvent.select().where(OutboxEvent.name == EVENT).order_by(
        OutboxEvent.id).run()
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


async def test_consent_and_contact_preferences_are_announced_durably(rapport):
    subscriber = Subscriber()
    rapport.pm.register(subscriber, name="listening")
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    row = await create_customer(rapport, actor, {"kind": "contact", "name": "Ada Lovelace"})
    cid = row["id"]

    # Undone: neither the consent record nor a preference change announces anything.
    with pytest.raises(Undo):
        async with Customer._meta.db.transaction():
            await record_consent(actor, cid, "marketing", False, "phone call", "email",
                                 rapport=rapport)
            await update_customer(rapport, actor, cid, {"do_not_contact": True})
            raise Undo
    assert await _stored() == []

    consent = await record_consent(actor, cid, "marketing", False, "phone call", "email",
                                   rapport=rapport)
    await update_customer(rapport, actor, cid, {"notes": "Prefers mornings"})  # not consent
    await update_customer(rapport, actor, cid, {"do_not_contact": True,
                                                "opted_out_channels": ["sms"]})
    stored = await _stored()
    assert [s["payload"]["changed"] for s in stored] == [
        ["consent"], ["do_not_contact", "opted_out_channels"]]
    assert {s["key"] for s in stored} == {f"customer:{cid}"}
    assert {s["actor_id"] for s in stored} == {actor.id}
    first, second = (s["payload"] for s in stored)
    assert first["consent"] == {"id": consent["id"], "purpose": "marketing", "channel": "email",
                                "granted": False, "source": "phone call"}
    assert first["do_not_contact"] is False
    assert second["consent"] is None
    assert second["do_not_contact"] is True and second["opted_out_channels"] == ["sms"]

    await jobs.run_pending(rapport)
    await jobs.run_pending(rapport)
    handled = [(event_id, payload) for event_id, name, payload in subscriber.calls
               if name == EVENT]
    assert [event_id for event_id, _ in handled] == [s["id"] for s in stored]
    assert handled[1][1]["id"] == cid
