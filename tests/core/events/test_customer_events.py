"""Customer merges and deletions are durable events: recorded with the change, handed to
subscribers by the worker, and never announced when the change is undone."""

from __future__ import annotations

import pytest

from core import jobs
from core.customers.merge import merge_customers
from core.customers.service import create_customer, delete_customer
from core.identity.users import load_actor
from core.jobs_tables import OutboxEvent
from tests.conftest import make_user
from tests.core.events.helpers import Subscriber


async def test_a_merge_reaches_subscribers_once_with_its_event_id(rapport):
    subscriber = Subscriber()
    rapport.pm.register(subscriber, name="listening")
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    keep = await create_customer(rapport, actor, {"kind": "account", "name": "Acme"})
    gone = await create_customer(rapport, actor, {"kind": "account", "name": "ACME Ltd"})
    await merge_customers(rapport, actor, keep["id"], gone["id"])
    await jobs.run_pending(rapport)
    await jobs.run_pending(rapport)
    merged = [c for c in subscriber.calls if c[1] == "core.customer.merged"]
    assert len(merged) == 1
    event_id, _, payload = merged[0]
    assert event_id is not None
    assert payload["id"] == keep["id"] and payload["merged_id"] == gone["id"]
    stored = await OutboxEvent.select().where(OutboxEvent.id == event_id).first().run()
    assert stored["key"] == f"customer:{keep['id']}" and stored["actor_id"] == actor.id


async def test_a_deletion_is_announced_durably_and_a_refused_one_not_at_all(rapport):
    subscriber = Subscriber()
    rapport.pm.register(subscriber, name="listening")
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    rep = await load_actor(rapport, await make_user("rep@example.test",
                                                    roles=("sales_representative",)))
    row = await create_customer(rapport, actor, {"kind": "account", "name": "Acme"})
    with pytest.raises(Exception):  # noqa: B017 - refused for lack of permission
        await delete_customer(rapport, rep, row["id"])
    assert await OutboxEvent.count().run() == 0
    await delete_customer(rapport, actor, row["id"])
    await jobs.run_pending(rapport)
    deleted = [c for c in subscriber.calls if c[1] == "core.customer.deleted"]
    assert [c[2]["id"] for c in deleted] == [row["id"]]
