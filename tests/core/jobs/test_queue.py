"""The job queue: enqueue in the caller's transaction, run once, retries with backoff, time
limit, unique jobs, recurring jobs once per occurrence, cancellation, leases. Both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core import jobs
from core.jobs_tables import JobRow
from tests.conftest import connected
from tests.core.jobs.helpers import with_jobs

FAST = {"jobs_backoff_seconds": "0", "jobs_poll_seconds": "0.05",
        "jobs_lease_grace_seconds": "0.2"}


@pytest.fixture
async def instance(make_rapport):
    rapport = await make_rapport(extra=FAST)
    async with connected(rapport):
        yield rapport


async def _job(job_id: int) -> dict:
    return await JobRow.select().where(JobRow.id == job_id).first().run()


async def test_an_enqueued_job_runs_once_with_its_arguments(instance):
    plugin = with_jobs(instance)
    job_id = await jobs.enqueue(instance, "testing.record", {"customer": 12})
    assert (await _job(job_id))["status"] == "queued"
    await jobs.run_pending(instance)
    await jobs.run_pending(instance)
    assert plugin.ran == [(job_id, {"customer": 12}, 1)]
    assert (await _job(job_id))["status"] == "done"


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_exists(instance):
    plugin = with_jobs(instance)
    with pytest.raises(RuntimeError):
        async with JobRow._meta.db.transaction():
            await jobs.enqueue(instance, "testing.record", {"n": 1})
            raise RuntimeError("the change failed")
    await jobs.run_pending(instance)
    assert plugin.ran == []
    assert await JobRow.count().where(JobRow.name == "testing.record").run() == 0


async def test_an_undeclared_job_or_non_json_arguments_are_refused(instance):
    with_jobs(instance)
    with pytest.raises(ValueError, match="not declared"):
        await jobs.enqueue(instance, "testing.nope", {})
    with pytest.raises(TypeError):
        await jobs.enqueue(instance, "testing.record", {"when": object()})


async def test_a_failing_job_is_retried_then_marked_failed_with_its_error(instance):
    plugin = with_jobs(instance)
    plugin.fail_times = 2
    recovered = await jobs.enqueue(instance, "testing.record", {"n": 1})
    await jobs.run_pending(instance)
    assert [attempt for _, _, attempt in plugin.ran] == [1, 2, 3]
    assert (await _job(recovered))["status"] == "done"

    plugin.ran.clear()
    plugin.fail_times = 10
    doomed = await jobs.enqueue(instance, "testing.record", {"n": 2})
    await jobs.run_pending(instance)
    row = await _job(doomed)
    assert len(plugin.ran) == 3  # max_attempts
    assert row["status"] == "failed" and "job failed on purpose" in row["last_error"]

    plugin.fail_times = 0
    assert await jobs.retry(instance, doomed)
    await jobs.run_pending(instance)
    assert (await _job(doomed))["status"] == "done"


async def test_retries_wait_longer_each_time(make_rapport):
    instance = await make_rapport(extra={"jobs_backoff_seconds": "10"})
    async with connected(instance):
        plugin = with_jobs(instance)
        plugin.fail_times = 5
        job_id = await jobs.enqueue(instance, "testing.record", {})
        delays = []
        for _ in range(2):
            before = jobs.utcnow()
            await jobs.run_pending(instance)
            row = await _job(job_id)
            delays.append((row["run_at"] - before).total_seconds())
            await JobRow.update({JobRow.run_at: jobs.utcnow()}).where(JobRow.id == job_id).run()
        assert 7 < delays[0] < 13 and 15 < delays[1] < 25


async def test_a_job_over_its_time_limit_is_stopped_and_failed(instance):
    plugin = with_jobs(instance)
    job_id = await jobs.enqueue(instance, "testing.slow", {"seconds": 5})
    await jobs.run_pending(instance)
    row = await _job(job_id)
    assert plugin.ran == []
    assert row["status"] == "failed" and "longer than its limit" in row["last_error"]


async def test_a_unique_job_is_queued_once_while_it_waits(instance):
    with_jobs(instance)
    first = await jobs.enqueue(instance, "testing.once", {"n": 1})
    assert await jobs.enqueue(instance, "testing.once", {"n": 2}) == first
    keyed = await jobs.enqueue(instance, "testing.record", {}, unique_key="customer:1")
    assert await jobs.enqueue(instance, "testing.record", {}, unique_key="customer:1") == keyed
    assert await jobs.enqueue(instance, "testing.record", {}, unique_key="customer:2") != keyed
    await jobs.run_pending(instance)
    # Once it ran, a new one may be queued.
    assert await jobs.enqueue(instance, "testing.once", {"n": 3}) != first


async def test_a_job_put_off_waits_for_its_time(instance):
    plugin = with_jobs(instance)
    job_id = await jobs.enqueue(instance, "testing.record", {}, delay=3600)
    await jobs.run_pending(instance)
    assert plugin.ran == []
    await JobRow.update({JobRow.run_at: jobs.utcnow()}).where(JobRow.id == job_id).run()
    await jobs.run_pending(instance)
    assert [r[0] for r in plugin.ran] == [job_id]


async def test_each_occurrence_of_a_recurring_job_is_queued_once_by_any_number_of_workers(
        instance):
    with_jobs(instance)
    for _ in range(3):  # three workers (or rounds) agreeing on the next occurrence
        await jobs.ensure_schedules(instance)
    rows = await JobRow.select(JobRow.name, JobRow.run_at, JobRow.schedule_slot).where(
        JobRow.name.is_in(["testing.tick", "testing.cron"])).run()
    assert sorted(r["name"] for r in rows) == ["testing.cron", "testing.tick"]
    for row in rows:
        assert row["run_at"] == row["schedule_slot"] > jobs.utcnow()
        assert row["run_at"].second == 0
        if row["name"] == "testing.cron":
            assert row["run_at"].minute % 5 == 0


async def test_a_due_occurrence_runs_once_and_the_next_is_queued(instance):
    plugin = with_jobs(instance)
    await jobs.ensure_schedules(instance)
    # As if its minute had come: the occurrence is now in the past.
    past = jobs.utcnow().replace(microsecond=0) - timedelta(seconds=1)
    await JobRow.update({JobRow.run_at: past, JobRow.schedule_slot: past}).where(
        JobRow.name == "testing.tick").run()
    await jobs.run_pending(instance)
    assert len([r for r in plugin.ran if r[0]]) == 1
    assert await JobRow.count().where(
        (JobRow.name == "testing.tick") & (JobRow.status == "queued")).run() == 1


async def test_a_recurring_job_keeps_only_its_latest_run_and_recent_failures(instance):
    """A job every few seconds (push delivery) must not leave a row per run for a week."""
    with_jobs(instance)
    long_ago = jobs.utcnow().replace(microsecond=0) - timedelta(days=1)
    for i, status in enumerate(["done"] * 30 + ["cancelled"] + ["failed"] * 60 + ["done"]):
        slot = long_ago + timedelta(minutes=i)
        await JobRow.insert(JobRow(name="testing.tick", args="{}", status=status, run_at=slot,
                                   schedule_slot=slot, max_attempts=1, exclusive=True,
                                   created_at=slot, finished_at=slot)).run()
    await jobs.enqueue(instance, "testing.record", {})  # another job's rows stay
    await jobs.ensure_schedules(instance)  # queues the next occurrence and tidies
    rows = await JobRow.select(JobRow.status, JobRow.schedule_slot).where(
        JobRow.name == "testing.tick").order_by(JobRow.id).run()
    statuses = [r["status"] for r in rows]
    assert statuses == ["failed"] * jobs.KEEP_RECURRING_FAILED + ["done", "queued"]
    assert rows[-2]["schedule_slot"] == long_ago + timedelta(minutes=91)
    assert await JobRow.count().where(JobRow.name == "testing.record").run() == 1


def test_schedules_are_cron_or_seconds():
    start = jobs.utcnow().replace(hour=10, minute=2, second=0, microsecond=0)
    assert jobs.next_slot("*/5 * * * *", start).minute == 5
    assert jobs.next_slot(300, start).minute == 5
    with pytest.raises(ValueError):
        jobs.next_slot("every tuesday", start)
    with pytest.raises(ValueError):
        jobs.next_slot(0, start)


async def test_a_waiting_job_can_be_cancelled_and_never_runs(instance):
    plugin = with_jobs(instance)
    job_id = await jobs.enqueue(instance, "testing.record", {})
    assert await jobs.cancel(job_id) == "cancelled"
    await jobs.run_pending(instance)
    assert plugin.ran == [] and (await _job(job_id))["status"] == "cancelled"
    assert await jobs.cancel(job_id) is None


async def test_a_running_job_is_cancelled_by_its_worker(make_rapport):
    instance = await make_rapport(extra=FAST)
    async with connected(instance):
        plugin = with_jobs(instance)
        worker = jobs.Worker(instance)
        await worker.start()
        try:
            job_id = await jobs.enqueue(instance, "testing.slow", {"seconds": 0.25})
            # slow's limit is 0.3 s; make this one long enough to cancel.
            await JobRow.update({JobRow.args: '{"seconds": 0.28}'}).where(
                JobRow.id == job_id).run()
            await asyncio.wait_for(plugin.started.wait(), 5)
            assert await jobs.cancel(job_id) == "cancelling"
            for _ in range(100):
                if (await _job(job_id))["status"] != "running":
                    break
                await asyncio.sleep(0.02)
        finally:
            await worker.stop()
        row = await _job(job_id)
        assert row["status"] in {"cancelled", "done"}  # a cancel can arrive as it finishes
        if row["status"] == "cancelled":
            assert plugin.ran == []


async def test_a_job_whose_worker_died_is_run_again_after_its_lease_runs_out(instance):
    plugin = with_jobs(instance)
    config = jobs.WorkerConfig.for_rapport(instance)
    job_id = await jobs.enqueue(instance, "testing.record", {"n": 1})
    # A worker claims it and dies before finishing: nothing but its lease is left.
    claimed = await jobs.claim_jobs(instance, "dead-worker", 5, config)
    assert [c.id for c in claimed] == [job_id]
    await jobs.run_pending(instance)
    assert plugin.ran == []  # the lease still holds
    await JobRow.update({JobRow.locked_until: jobs.utcnow() - timedelta(seconds=1)}).where(
        JobRow.id == job_id).run()
    await jobs.run_pending(instance)
    assert plugin.ran == [(job_id, {"n": 1}, 2)]
    assert (await _job(job_id))["status"] == "done"


async def test_a_worker_in_the_server_runs_jobs_enqueued_by_requests(instance):
    plugin = with_jobs(instance)
    worker = jobs.Worker(instance)
    await worker.start()
    try:
        async with JobRow._meta.db.transaction():
            job_id = await jobs.enqueue(instance, "testing.record", {"n": 1})
        for _ in range(200):
            if plugin.ran:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert plugin.ran == [(job_id, {"n": 1}, 1)]


async def test_health_says_how_old_the_oldest_waiting_job_is(instance):
    with_jobs(instance)
    assert (await jobs.health(instance))["oldest_queued_seconds"] is None
    job_id = await jobs.enqueue(instance, "testing.record", {})
    await JobRow.update({JobRow.run_at: jobs.utcnow() - timedelta(minutes=5)}).where(
        JobRow.id == job_id).run()
    health = await jobs.health(instance)
    assert 290 < health["oldest_queued_seconds"] < 400
    assert health["jobs"]["queued"] >= 1


async def test_a_recurring_job_never_runs_twice_at_the_same_time(instance):
    with_jobs(instance)
    config = jobs.WorkerConfig.for_rapport(instance)
    now = jobs.utcnow().replace(microsecond=0)
    for minutes in (2, 1):  # two occurrences overdue, as after a long-running one
        slot = now - timedelta(minutes=minutes)
        await JobRow.raw(
            "INSERT INTO core_job (name, args, status, run_at, attempts, max_attempts, "
            "schedule_slot, exclusive, cancel_requested, created_at) VALUES "
            "('testing.tick', {}, 'queued', {}, 0, 5, {}, {}, {}, {})",
            "{}", slot, slot, True, False, now).run()
    first = await jobs.claim_jobs(instance, "worker-a", 5, config)
    assert len(first) == 1
    assert await jobs.claim_jobs(instance, "worker-b", 5, config) == []  # it still runs
    await JobRow.update({JobRow.status: "done"}).where(JobRow.id == first[0].id).run()
    second = await jobs.claim_jobs(instance, "worker-b", 5, config)
    assert len(second) == 1 and second[0].id != first[0].id


async def test_a_job_ending_while_the_worker_records_others_is_recorded_as_done(
        instance, monkeypatch):
    """The worker records finished jobs together; one that ends while that write is in flight
    must be recorded at the next round, not forgotten as "running" until its lease runs out
    (which left a recurring job looking stuck for ten minutes and then ran it again)."""
    plugin = with_jobs(instance)
    record_done = jobs.record_done

    async def record_while_the_slow_one_ends(ids, worker_id):
        ids = list(ids)  # the statement is built from them before the write goes out
        for _ in range(250):  # let the slow job finish during this write
            if len(plugin.ran) == 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        await record_done(ids, worker_id)

    monkeypatch.setattr(jobs, "record_done", record_while_the_slow_one_ends)
    fast = await jobs.enqueue(instance, "testing.record", {"n": 1})
    slow = await jobs.enqueue(instance, "testing.slow", {"seconds": 0.1})
    worker = jobs.Worker(instance)
    await worker.start()
    try:
        for _ in range(250):
            if {(await _job(fast))["status"], (await _job(slow))["status"]} == {"done"}:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert [(await _job(job_id))["status"] for job_id in (fast, slow)] == ["done", "done"]
