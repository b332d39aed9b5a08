"""Job and durable-event throughput of core.jobs / core.events (not part of `make bench`).

    .venv/bin/python bench/jobs.py --backends sqlite,postgres --jobs 5000 --events 5000

For each backend, in a scratch database: (1) the cost of publishing inside a transaction that
also writes a row (an audit entry), durable event with two subscribers against a non-durable one; (2) job
throughput: N no-op jobs enqueued, then run by ``--processes`` `rapport worker`-like workers
(in-process Worker objects when 1); (3) event delivery throughput: N durable events with two
subscribers each, delivered end to end; (4) an interaction created through core's service, as
today, against the same create with a durable event published in its transaction for two
subscribers; (5) with ``--processes N`` (PostgreSQL): N separate worker processes (woken by
LISTEN/NOTIFY) delivering durable events published meanwhile by this process, end to end.
Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import audit, db, jobs  # noqa: E402
from core.app import Rapport  # noqa: E402
from core.jobs_tables import EventDelivery, JobRow  # noqa: E402
from core.plugin import EventType, JobType, hookimpl  # noqa: E402
from core.settings import Settings  # noqa: E402


class BenchPlugin:
    def __init__(self) -> None:
        self.ran = 0

    async def noop(self, rapport, job):
        self.ran += 1

    @hookimpl
    def register_jobs(self):
        return [JobType("bench.noop", self.noop)]

    @hookimpl
    def register_events(self):
        return [EventType("bench.thing.done", "bench", durable=True),
                EventType("bench.thing.quick", "bench"),
                EventType("bench.interaction.recorded", "bench", durable=True)]


class Sub:
    def __init__(self) -> None:
        self.seen = 0

    @hookimpl
    async def on_event(self, event):
        self.seen += 1


def bench_rapport(url: str, concurrency: int, event_concurrency: int
                  ) -> tuple[Rapport, BenchPlugin, Sub, Sub]:
    data = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=data, database_url=url, plugins_toml=data / "none.toml",
                        extra={"worker": "off", "jobs_poll_seconds": "1",
                               "jobs_concurrency": str(concurrency),
                               "jobs_event_concurrency": str(event_concurrency)})
    rapport = Rapport(settings, plugins=[])
    plugin, a, b = BenchPlugin(), Sub(), Sub()
    rapport.pm.register(plugin, name="bench")
    rapport.pm.register(a, name="bench_a")
    rapport.pm.register(b, name="bench_b")
    for name in ("pwa.plugin", "core.webhooks"):
        if rapport.pm.get_plugin(name) is not None:
            rapport.pm.unregister(name=name)
    rapport.activate()
    return rapport, plugin, a, b


async def worker_child(url: str, event_concurrency: int) -> None:
    """One `rapport worker`-like process for --processes: runs until killed."""
    rapport, *_ = bench_rapport(url, 4, event_concurrency)
    await db.connect(rapport.engine, pool_size=event_concurrency + 8)
    worker = jobs.Worker(rapport)
    await worker.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def measure_processes(url: str, n_events: int, processes: int,
                            event_concurrency: int, publishers: int = 4) -> None:
    rapport, *_ = bench_rapport(url, 4, event_concurrency)
    await db.connect(rapport.engine, pool_size=publishers + 4)
    children = [subprocess.Popen(
        [sys.executable, __file__, "--worker-child", url, "--event-concurrency",
         str(event_concurrency)], stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        engine = JobRow._meta.db

        async def publisher(batches: list[int]) -> None:
            for first in batches:  # 50 events per transaction, as a busy app would
                async with engine.transaction():
                    for i in range(first, min(first + 50, n_events)):
                        await rapport.publish("bench.thing.done", {"i": i},
                                              key=f"customer:{i % 500}")

        # Several requests publish at once in a real server: `publishers` concurrent tasks,
        # each on its own connection, share the batches.
        batches = list(range(0, n_events, 50))
        start = time.perf_counter()
        await asyncio.gather(*(publisher(batches[k::publishers]) for k in range(publishers)))
        published = time.perf_counter() - start
        done = EventDelivery.status == "done"
        while await EventDelivery.count().where(done).run() < 2 * n_events:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        print(f"postgresql: {n_events} events x 2 subscribers, {processes} worker processes, "
              f"end to end (published by {publishers} concurrent tasks in {published:.2f} s "
              f"meanwhile) in {elapsed:.2f} s = {n_events / elapsed:,.0f} events/s")
        # The workers' own capacity: a backlog committed at once (its NOTIFY wakes both).
        async with engine.transaction():
            for i in range(n_events):
                await rapport.publish("bench.thing.done", {"i": i}, key=f"customer:{i % 500}")
        start = time.perf_counter()
        while await EventDelivery.count().where(done).run() < 4 * n_events:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        print(f"postgresql: a backlog of {n_events} events x 2 subscribers drained by "
              f"{processes} worker processes in {elapsed:.2f} s = "
              f"{n_events / elapsed:,.0f} events/s")
    finally:
        for child in children:
            child.kill()
            child.wait()
        await db.disconnect(rapport.engine)


async def measure_interactions(rapport: Rapport, kind: str, count: int = 300) -> None:
    from core.customers import service as customers
    from core.interactions import service as interactions

    customer = await customers.create_customer(rapport, None, {"kind": "account",
                                                               "name": "Bench account"})
    engine = JobRow._meta.db
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for label in ("today", "durable", "today", "durable"):  # interleaved against drift
        start, started_cpu = time.perf_counter(), time.process_time()
        for i in range(count):
            if label == "today":
                await interactions.record_interaction(
                    rapport, None, customer_id=customer["id"], channel="call", subject=f"c{i}")
            else:
                async with engine.transaction():
                    row, _ = await interactions.record_interaction(
                        rapport, None, customer_id=customer["id"], channel="call",
                        subject=f"c{i}")
                    await rapport.publish("bench.interaction.recorded", {"id": row["id"]},
                                          key=f"customer:{customer['id']}")
        results.setdefault(label, []).append((time.perf_counter() - start) / count * 1000)
        cpu.setdefault(label, []).append((time.process_time() - started_cpu) / count * 1000)
    today, durable = min(results["today"]), min(results["durable"])
    cpu_today, cpu_durable = min(cpu["today"]), min(cpu["durable"])
    # The CPU time of this process (not the database server's) moves less with the load of a
    # shared machine than the wall time.
    print(f"{kind}: interaction create, today: {today:.2f} ms; with a durable event for two "
          f"subscribers in its transaction: {durable:.2f} ms ({(durable / today - 1) * 100:+.0f}%)"
          f"; this process's CPU {cpu_today:.2f} -> {cpu_durable:.2f} ms "
          f"({(cpu_durable / cpu_today - 1) * 100:+.0f}%)")


async def measure(url: str, n_jobs: int, n_events: int, concurrency: int,
                  event_concurrency: int) -> None:
    data = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=data, database_url=url, plugins_toml=data / "none.toml",
                        extra={"worker": "off", "jobs_poll_seconds": "0.05",
                               "jobs_concurrency": str(concurrency),
                               "jobs_event_concurrency": str(event_concurrency)})
    rapport = Rapport(settings, plugins=[])
    await rapport.migrate()
    plugin, a, b = BenchPlugin(), Sub(), Sub()
    rapport.pm.register(plugin, name="bench")
    rapport.pm.register(a, name="bench_a")
    rapport.pm.register(b, name="bench_b")
    # pwa's and core.webhooks' subscribers would also get every durable event: measure two
    # subscribers only.
    for name in ("pwa.plugin", "core.webhooks"):
        if rapport.pm.get_plugin(name) is not None:
            rapport.pm.unregister(name=name)
    rapport.activate()
    await db.connect(rapport.engine, pool_size=concurrency * 5 + 4)
    kind = url.split(":")[0]
    try:
        await measure_interactions(rapport, kind)
        await EventDelivery.delete().where(EventDelivery.id > 0).run()
        engine = JobRow._meta.db
        for label, name in (("non-durable", "bench.thing.quick"), ("durable", "bench.thing.done")):
            start = time.perf_counter()
            count = 500
            for i in range(count):
                async with engine.transaction():
                    # The change the event announces: one audited row, as a write would.
                    await audit.record(None, "update", "bench", i, summary="bench")
                    await rapport.publish(name, {"i": i}, key=f"customer:{i % 50}")
            per = (time.perf_counter() - start) / count * 1000
            print(f"{kind}: publish in a transaction, {label}: {per:.2f} ms each")
        await EventDelivery.delete().where(EventDelivery.id > 0).run()
        a.seen = b.seen = 0

        async with engine.transaction():
            for i in range(n_jobs):
                await jobs.enqueue(rapport, "bench.noop", {"i": i})
        worker = jobs.Worker(rapport)
        start = time.perf_counter()
        await worker.start()
        while plugin.ran < n_jobs:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        await worker.stop()
        print(f"{kind}: {n_jobs} jobs in {elapsed:.2f} s = {n_jobs / elapsed:,.0f} jobs/s "
              f"(one worker, {concurrency} at once)")

        async with engine.transaction():
            for i in range(n_events):
                await rapport.publish("bench.thing.done", {"i": i}, key=f"customer:{i % 500}")
        worker = jobs.Worker(rapport)
        start = time.perf_counter()
        await worker.start()
        while a.seen < n_events or b.seen < n_events:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        await worker.stop()
        print(f"{kind}: {n_events} events x 2 subscribers in {elapsed:.2f} s = "
              f"{n_events / elapsed:,.0f} events/s ({2 * n_events / elapsed:,.0f} deliveries/s)")
    finally:
        await db.disconnect(rapport.engine)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--event-concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=0,
                        help="PostgreSQL: also deliver end to end with N worker processes")
    parser.add_argument("--publishers", type=int, default=4,
                        help="--processes: concurrent publishing tasks (requests)")
    parser.add_argument("--worker-child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--postgres-url", default=os.environ.get(
        "RAPPORT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    if args.worker_child:
        await worker_child(args.worker_child, args.event_concurrency)
        return
    for backend in args.backends.split(","):
        if backend == "sqlite":
            path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
            await measure(f"sqlite:///{path}", args.jobs, args.events, args.concurrency,
                          args.event_concurrency)
        else:
            import asyncpg

            name = f"rapport_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(args.postgres_url)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
                await measure(url, args.jobs, args.events, args.concurrency,
                              args.event_concurrency)
                if args.processes:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await admin.execute(f'CREATE DATABASE "{name}"')
                    rapport, *_ = bench_rapport(url, 4, args.event_concurrency)
                    await rapport.migrate()
                    await measure_processes(url, args.events, args.processes,
                                            args.event_concurrency, args.publishers)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
