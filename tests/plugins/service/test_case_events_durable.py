"""Case events are durable (docs/events.md): written in the transaction of the change, so a
change that rolls back announces nothing, and handed to every subscriber by the job worker,
in order per case. Both databases."""

from __future__ import annotations

import json

import pytest

from core import jobs
from core.jobs_tables import OutboxEvent
from plugins.service import cases
from plugins.service.tables import Case
from tests.conftest import connected
from tests.core.events.helpers import Subscriber
from tests.plugins.service.cases_helpers import staff_actor
from tests.plugins.service.conftest import new_customer


class Undo(Exception):
    pass


async def _stored(name: str) -> list[dict]:
    rows = await OutboxEvent.select().where(OutboxEvent.name == name).order_by(
        OutboxEvent.id).run()
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


async def test_case_events_are_written_with_the_change_and_reach_subscribers_in_order(
        make_rapport):
    rapport = await make_rapport(["service"], {})
    subscriber = Subscriber()
    rapport.pm.register(subscriber, name="listening")
    live: list[str] = []

    async def listener(event):  # an in-process listener (live updates) still hears them
        if event.name.startswith("service.case."):
            live.append(event.name)

    async with connected(rapport):
        rapport.event_listeners.append(listener)
        agent = await staff_actor(rapport, "agent@example.test")
        other = await staff_actor(rapport, "other@example.test")
        customer = await new_customer()

        # Undone changes write no event, and listeners never hear of them.
        with pytest.raises(Undo):
            async with Case._meta.db.transaction():
                await cases.open_case(rapport, agent, customer_id=customer, subject="Gone")
                raise Undo
        assert await OutboxEvent.count().run() == 0 and live == []

        case = await cases.open_case(rapport, agent, customer_id=customer, subject="Leaking",
                                     description="Water everywhere")
        with pytest.raises(Undo):
            async with Case._meta.db.transaction():
                await cases.change_status(rapport, agent, case["id"], "resolved")
                await cases.assign(rapport, agent, case["id"], owner_id=other.id)
                raise Undo
        assert await _stored("service.case.status_changed") == []
        assert await _stored("service.case.assigned") == []
        assert (await Case.select(Case.status).where(Case.id == case["id"]).first().run()
                )["status"] == "new"

        await cases.assign(rapport, agent, case["id"], owner_id=other.id)
        await cases.add_message(rapport, agent, case["id"], kind="reply", body="On my way.")
        await cases.change_status(rapport, agent, case["id"], "resolved")
        await cases.add_message(rapport, None, case["id"], kind="inbound", body="Still wet.")
        await cases.change_status(rapport, agent, case["id"], "resolved")
        await cases.rate(rapport, case["id"], customer_id=customer, score=4)

        expected = ["service.case.created", "service.case.assigned", "service.case.replied",
                    "service.case.status_changed", "service.case.status_changed",
                    "service.case.customer_replied", "service.case.status_changed",
                    "service.case.status_changed", "service.case.rated"]
        assert live == expected
        stored = await OutboxEvent.select().where(OutboxEvent.name.like("service.case.%")
                                                  ).order_by(OutboxEvent.id).run()
        assert [r["name"] for r in stored] == expected
        assert {r["key"] for r in stored} == {f"case:{case['id']}"}
        [reopened] = await _stored("service.case.customer_replied")
        assert reopened["payload"]["reopened"] is True
        assert reopened["payload"]["case_id"] == case["id"]

        for _ in range(len(expected)):  # one event per case at a time: in order
            await jobs.run_pending(rapport)
        handled = [(name, payload) for _, name, payload in subscriber.calls
                   if name.startswith("service.case.")]
        assert [name for name, _ in handled] == expected
        assert [p["new"] for n, p in handled if n == "service.case.status_changed"] == [
            "waiting", "resolved", "open", "resolved"]
        assert [p["owner_id"] for n, p in handled if n == "service.case.assigned"] == [other.id]
        assert {event_id for event_id, name, _ in subscriber.calls
                if name.startswith("service.case.")} == {r["id"] for r in stored}
