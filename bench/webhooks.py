"""Webhook delivery throughput of core.webhooks against a local receiver (not part of
`make bench`).

    .venv/bin/python bench/webhooks.py --backends sqlite,postgres --events 1000

For each backend, in a scratch database: one administrator subscribes a webhook to a durable
event; ``--events`` events are published in one transaction; an in-process job worker
(``--concurrency`` jobs at once) hands them to core.webhooks and delivers them to a receiver
on 127.0.0.1 (a ThreadingHTTPServer in its own process, answering 200). Prints events/s end to
end (publish committed -> every delivery logged as delivered).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import db, jobs, webhooks  # noqa: E402
from core.app import Rapport  # noqa: E402
from core.plugin import EventType, hookimpl  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.webhooks_tables import SUCCEEDED, WebhookDelivery  # noqa: E402

EVENT = "bench.thing.done"


class BenchPlugin:
    @hookimpl
    def register_events(self):
        return [EventType(EVENT, "A bench thing was done", durable=True)]


def _receive(port_queue) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_port)
    server.serve_forever()


async def measure(url: str, n_events: int, concurrency: int, receiver_url: str) -> None:
    from core.identity.users import create_user, load_actor

    data = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=data, database_url=url, plugins_toml=data / "none.toml",
                        extra={"worker": "off", "jobs_poll_seconds": "0.05",
                               "jobs_concurrency": str(concurrency),
                               "webhooks_allow_private": "1"})
    rapport = Rapport(settings, plugins=[])
    await rapport.migrate()
    rapport.pm.register(BenchPlugin(), name="bench")
    rapport.activate()
    await db.connect(rapport.engine, pool_size=concurrency * 2 + 8)
    kind = url.split(":")[0]
    try:
        user_id = await create_user("bench@example.test", "Bench", "correct horse battery",
                                    roles=["administrator"])
        actor = await load_actor(rapport, user_id)
        await webhooks.create(rapport, actor, {"name": "Bench receiver", "url": receiver_url,
                                               "events": [EVENT]})
        async with WebhookDelivery._meta.db.transaction():
            for i in range(n_events):
                await rapport.publish(EVENT, {"i": i}, key=f"customer:{i % 500}")
        # Count the statements the worker sends (a figure the machine's load cannot move).
        statements = [0]
        engine = WebhookDelivery._meta.db
        run_querystring = engine.run_querystring

        async def counted(*args, **kwargs):
            statements[0] += 1
            return await run_querystring(*args, **kwargs)

        engine.run_querystring = counted
        worker = jobs.Worker(rapport)
        start, cpu = time.perf_counter(), time.process_time()
        await worker.start()
        delivered = 0
        while delivered < n_events:
            await asyncio.sleep(0.2)
            delivered = await WebhookDelivery.count().where(
                WebhookDelivery.status == SUCCEEDED).run()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await worker.stop()
        engine.run_querystring = run_querystring
        # (The bench's own polling, one count every 0.2 s, is included: a few per second.)
        # CPU time of this process (the worker; the receiver runs in another) per delivery:
        # on a shared machine it moves far less with the load than the wall time does.
        print(f"{kind}: {n_events} events to one webhook in {elapsed:.2f} s = "
              f"{n_events / elapsed:,.0f} deliveries/s (one worker, {concurrency} jobs at once; "
              f"worker CPU {cpu / n_events * 1000:.2f} ms and {statements[0] / n_events:.1f} "
              f"SQL statements per delivery)")
    finally:
        await db.disconnect(rapport.engine)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres-url", default=os.environ.get(
        "RAPPORT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    ports: multiprocessing.Queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_receive, args=(ports,), daemon=True)
    receiver.start()
    receiver_url = f"http://127.0.0.1:{ports.get(timeout=10)}/hooks"
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
                await measure(f"sqlite:///{path}", args.events, args.concurrency, receiver_url)
            else:
                import asyncpg

                name = f"rapport_bench_{uuid.uuid4().hex[:8]}"
                admin = await asyncpg.connect(args.postgres_url)
                await admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
                    await measure(url, args.events, args.concurrency, receiver_url)
                finally:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await admin.close()
    finally:
        receiver.terminate()


if __name__ == "__main__":
    asyncio.run(main())
