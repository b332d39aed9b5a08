"""Durable events: written with the change they announce, delivered to every subscriber at
least once, retried per subscriber, in order per aggregate key. Both backends."""

from __future__ import annotations

import pytest

from core import db, events, jobs
from core.jobs_tables import EventDelivery, OutboxEvent
from core.plugin import hookimpl, subscribes_to
from tests.conftest import connected
from tests.core.events.helpers import EVENT, QUICK, Subscriber, with_subscribers

FAST = {"jobs_backoff_seconds": "0", "jobs_poll_seconds": "0.05"}


@pytest.fixture
async def instance(make_rapport):
    rapport = await make_rapport(extra=FAST)
    async with connected(rapport):
        yield rapport


async def _statuses(subscriber: str) -> list[str]:
    rows = await EventDelivery.select(EventDelivery.status).where(
        EventDelivery.subscriber == subscriber).order_by(EventDelivery.id).run()
    return [r["status"] for r in rows]


async def test_a_subscriber_failing_three_times_is_handled_once_and_the_others_only_once(
        instance):
    flaky, steady = Subscriber(fail_times=3), Subscriber()
    with_subscribers(instance, flaky=flaky, steady=steady)
    event = await instance.publish(EVENT, {"order": 1042}, actor_id=None)
    assert event.id is not None

    await jobs.run_pending(instance)

    assert flaky.handled == [event.id]
    assert len(flaky.calls) == 4  # three failures, then handled
    assert steady.calls == [(event.id, EVENT, {"order": 1042})]
    assert await _statuses("flaky") == ["done"]
    attempts = await EventDelivery.select(EventDelivery.attempts).where(
        EventDelivery.subscriber == "flaky").first().run()
    assert attempts["attempts"] == 4


async def test_a_rolled_back_transaction_emits_nothing(instance):
    subscriber = Subscriber()
    with_subscribers(instance, subscriber=subscriber)
    heard = []

    async def listener(event):
        heard.append(event)

    instance.event_listeners.append(listener)
    with pytest.raises(RuntimeError):
        async with OutboxEvent._meta.db.transaction():
            await instance.publish(EVENT, {"n": 1})
            raise RuntimeError("the change failed")
    await jobs.run_pending(instance)

    assert await OutboxEvent.count().run() == 0
    assert await EventDelivery.count().run() == 0
    assert subscriber.calls == [] and heard == []


async def test_live_listeners_hear_a_durable_event_only_after_the_outermost_commit(instance):
    with_subscribers(instance)
    heard = []

    async def listener(event):
        heard.append((event.id, db.in_transaction(OutboxEvent._meta.db)))

    instance.event_listeners.append(listener)
    engine = OutboxEvent._meta.db
    async with engine.transaction():
        async with engine.transaction():  # nested: Piccolo keeps the outer one
            event = await instance.publish(EVENT, {"n": 1})
        assert heard == []
    assert heard == [(event.id, False)]
    # Outside a transaction the event is written and heard at once.
    second = await instance.publish(EVENT, {"n": 2})
    assert heard[-1] == (second.id, False) and second.id > event.id


async def test_a_later_event_for_a_key_waits_until_the_earlier_one_is_handled(make_rapport):
    # Retries wait a (long) backoff here, so the first event stays pending for a while.
    instance = await make_rapport(extra={"jobs_backoff_seconds": "3600"})
    async with connected(instance):
        subscriber = Subscriber(fail_times=1)
        with_subscribers(instance, subscriber=subscriber)
        first = await instance.publish(EVENT, {"n": 1}, key="customer:12")
        subscriber.fail_ids = {first.id}
        second = await instance.publish(EVENT, {"n": 2}, key="customer:12")
        other = await instance.publish(EVENT, {"n": 3}, key="customer:13")

        await jobs.run_pending(instance)
        # The first failed and waits for its retry; the second (same customer) is held back,
        # the other customer's event is not.
        assert subscriber.handled == [other.id]

        await EventDelivery.update({EventDelivery.run_at: jobs.utcnow()}).where(
            EventDelivery.status == "pending").run()
        await jobs.run_pending(instance)
        assert subscriber.handled == [other.id, first.id, second.id]


async def test_a_subscriber_that_keeps_failing_is_marked_failed_and_can_be_retried(
        make_rapport):
    instance = await make_rapport(extra={**FAST, "jobs_event_max_attempts": "2"})
    async with connected(instance):
        broken, fine = Subscriber(fail_times=2), Subscriber()
        with_subscribers(instance, broken=broken, fine=fine)
        event = await instance.publish(EVENT, {"n": 1}, key="k")
        later = await instance.publish(EVENT, {"n": 2}, key="k")
        await jobs.run_pending(instance)
        assert await _statuses("broken") == ["failed", "done"]  # a failure holds nothing back
        row = await EventDelivery.select().where(
            (EventDelivery.subscriber == "broken") & (EventDelivery.event_id == event.id)
        ).first().run()
        assert row["attempts"] == 2 and "subscriber down" in row["last_error"]
        assert fine.handled == [event.id, later.id]

        assert await events.retry_delivery(instance, row["id"])
        await jobs.run_pending(instance)
        assert broken.handled == [later.id, event.id]
        assert fine.handled == [event.id, later.id]  # not run again


async def test_a_discarded_delivery_is_not_tried_again(make_rapport):
    instance = await make_rapport(extra={"jobs_backoff_seconds": "3600"})
    async with connected(instance):
        broken = Subscriber(fail_times=1)
        with_subscribers(instance, broken=broken)
        await instance.publish(EVENT, {"n": 1})
        await jobs.run_pending(instance)
        row = await EventDelivery.select(EventDelivery.id).where(
            EventDelivery.subscriber == "broken").first().run()
        assert await events.discard_delivery(row["id"])
        await EventDelivery.update({EventDelivery.run_at: jobs.utcnow()}).where(
            EventDelivery.id == row["id"]).run()
        await jobs.run_pending(instance)
        assert broken.handled == [] and await _statuses("broken") == ["discarded"]


async def test_a_non_durable_event_still_reaches_subscribers_at_once_and_leaves_no_row(
        instance):
    subscriber = Subscriber()
    with_subscribers(instance, subscriber=subscriber)
    event = await instance.publish(QUICK, {"n": 1})
    assert event.id is None
    assert subscriber.calls == [(None, QUICK, {"n": 1})]
    assert await OutboxEvent.count().run() == 0


async def test_a_durable_payload_must_be_json(instance):
    with_subscribers(instance)
    with pytest.raises(ValueError, match="must be JSON"):
        await instance.publish(EVENT, {"when": object()})


async def test_a_worker_delivers_events_published_after_it_started(instance):
    subscriber = Subscriber()
    with_subscribers(instance, subscriber=subscriber)
    worker = jobs.Worker(instance)
    await worker.start()
    try:
        async with OutboxEvent._meta.db.transaction():
            event = await instance.publish(EVENT, {"n": 1})
        import asyncio

        for _ in range(200):
            if subscriber.handled:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert subscriber.handled == [event.id]


async def test_handled_events_are_purged_and_open_ones_kept(instance):
    from datetime import timedelta

    broken = Subscriber(fail_times=1)
    with_subscribers(instance, broken=broken)
    await instance.publish(EVENT, {"n": 1})
    await instance.publish(EVENT, {"n": 2})
    broken.fail_ids = {1}
    await OutboxEvent.update({OutboxEvent.created_at: jobs.utcnow() - timedelta(days=30)}).where(
        OutboxEvent.id > 0).run()
    await EventDelivery.update({EventDelivery.status: "done"}).where(
        EventDelivery.event_id == 2).run()
    removed = await events.purge_handled(jobs.utcnow() - timedelta(days=7))
    assert removed == 1
    assert [r["id"] for r in await OutboxEvent.select(OutboxEvent.id).run()] == [1]


class _Picky(Subscriber):
    """Says it wants only sales orders' events."""

    @hookimpl
    @subscribes_to("sales.order.*", "core.customer.merged")
    async def on_event(self, rapport, event):
        await Subscriber.on_event(self, rapport, event)


class _Wants(Subscriber):
    @hookimpl
    @subscribes_to("testing.thing.*")
    async def on_event(self, rapport, event):
        await Subscriber.on_event(self, rapport, event)


async def test_a_subscriber_naming_its_events_hears_only_those_and_one_naming_none_hears_all(
        instance):
    picky, wants, everything = _Picky(), _Wants(), Subscriber()
    with_subscribers(instance, picky=picky, wants=wants, everything=everything)

    durable = await instance.publish(EVENT, {"n": 1})
    await instance.publish(QUICK, {"n": 2})
    await jobs.run_pending(instance)

    # No delivery is even written for a subscriber that did not ask for the event.
    assert await _statuses("picky") == []
    assert picky.calls == []
    assert await _statuses("wants") == ["done"]
    # The non-durable event is heard at once, the durable one from the worker.
    assert wants.calls == [(None, QUICK, {"n": 2}), (durable.id, EVENT, {"n": 1})]
    assert await _statuses("everything") == ["done"]
    assert len(everything.calls) == 2


def test_subscribes_to_refuses_a_wildcard_in_the_middle():
    with pytest.raises(ValueError, match="subscribes_to"):
        subscribes_to("sales.*.created")


async def test_on_postgresql_an_event_from_another_process_wakes_an_idle_worker_at_once(
        make_rapport):
    import asyncio

    rapport = await make_rapport(extra={"jobs_poll_seconds": "60"})
    async with connected(rapport):
        if OutboxEvent._meta.db.engine_type != "postgres":
            pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
        subscriber = Subscriber()
        with_subscribers(rapport, subscriber=subscriber)
        worker = jobs.Worker(rapport)
        await worker.start()
        # As for a publisher in another process: this process's worker is not nudged.
        jobs._workers.pop(rapport, None)
        try:
            for _ in range(100):  # the first look, made at start, has found nothing
                if worker._events_idle_at is not None:
                    break
                await asyncio.sleep(0.02)
            async with OutboxEvent._meta.db.transaction():
                event = await rapport.publish(EVENT, {"n": 1})
            for _ in range(250):
                if subscriber.handled:
                    break
                await asyncio.sleep(0.02)
        finally:
            await worker.stop()
        # Well within the minute-long poll: the NOTIFY sent on commit woke it.
        assert subscriber.handled == [event.id]
