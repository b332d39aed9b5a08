"""Campaigns at scale: counting a three-rule segment (lifecycle stage, a tag, no touch point
in 90 days) over the seeded customers and interactions, materialising it into message rows,
sending to a local SMTP sink (throughput and peak memory), and the click redirect's p95.

Two ways to run it:

- in the load harness: ``python -m bench.run --plugins campaigns`` seeds tags and consent
  records for the core customers and drives the segment page (its count and preview) as an
  HTTP scenario;
- on its own, in-process, for the figures the issue asks for::

      PYTHONPATH=. python bench/plugins/campaigns.py --customers 20000 --interactions 200000 \
          [--database postgresql://postgres@127.0.0.1:5432/test] [--send 2000]

  It creates a scratch database (a temporary SQLite file, or a ``rapport_bench_<random>``
  database beside the PostgreSQL URL given, dropped afterwards), seeds it with bench/seed.py,
  and prints one line per measurement. The issue's scale is 1,000,000 customers and
  10,000,000 interactions (a three-rule segment counted in under 1 s on PostgreSQL); run
  that on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

if __name__ == "__main__":  # run as a script: the checkout first on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.scenarios import HTML, Request  # noqa: E402
from bench.seed import bulk_insert, log  # noqa: E402

PLUGIN = "campaigns"
TAG_SHARE = 0.2  # a fifth of the customers carry the tag the segment asks for
RULES = {"match": "all", "groups": [{"match": "all", "conditions": [
    {"criterion": "core.lifecycle_stage", "op": "is", "value": "lead"},
    {"criterion": "core.tag", "op": "has", "value": "newsletter"},
    {"criterion": "core.touch_point", "op": "none_in_last_days", "value": "90"},
]}]}


async def seed(database_url: str, seeded) -> dict:
    """Tag a share of the customers and save the three-rule segment."""
    from core.customers.tables import Customer, CustomerTag
    from core.permissions import Actor
    from plugins.campaigns import segments

    rnd = random.Random(25)
    first = await Customer.select(Customer.id).order_by(Customer.id).first().run()
    total = await Customer.count().run()
    start = first["id"] if first else 1
    tagged = [start + i for i in range(total) if rnd.random() < TAG_SHARE]
    last = await CustomerTag.select(CustomerTag.id).order_by(
        CustomerTag.id, ascending=False).first().run()
    next_id = (last["id"] if last else 0) + 1
    await bulk_insert(database_url, CustomerTag,
                      ({"id": next_id + i, "customer": cid, "tag": "newsletter"}
                       for i, cid in enumerate(tagged)), len(tagged))
    log(f"campaigns: {len(tagged):,} customers tagged 'newsletter'")
    system = Actor(kind="staff", id=None, name="bench", grants={"core.customer.view": "all"})

    class _Rapport:  # seed runs without the app object; criteria need only the hook caller
        def call_in_order(self, *args, **kwargs):
            return []

    saved = await segments.save_segment(_Rapport(), system, None, "Bench: quiet newsletter "
                                        "leads", "", RULES)
    return {"segment": saved["id"]}


SCENARIOS = [
    ("segment page (count + preview)",
     lambda seeded, facts: Request(f"/campaigns/segments/{facts['segment']}", headers=HTML)),
]


# --- standalone ------------------------------------------------------------------------------


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(len(ordered) * 0.95) - 1] if ordered else 0.0


async def _scratch_url(database: str | None) -> tuple[str, object]:
    if not database:
        path = Path(tempfile.mkdtemp(prefix="bench-campaigns-")) / "bench.sqlite3"
        return f"sqlite:///{path}", None
    import asyncpg

    name = f"rapport_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, _ = database.rpartition("/")

    async def drop():
        conn = await asyncpg.connect(database)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return f"{base}/{name}", drop


async def standalone(customers: int, interactions: int, database: str | None, send: int,
                     clicks: int) -> None:
    import httpx
    from aiosmtpd.controller import Controller

    from bench.seed import seed as core_seed
    from core import db, jobs
    from core.app import Rapport
    from core.permissions import Actor
    from core.settings import Settings
    from plugins.campaigns import segments, sending, tracking
    from plugins.campaigns.tables import Campaign, Message

    url, drop = await _scratch_url(database)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-campaigns-data-"))
    settings = Settings.from_env({"RAPPORT_DATA_DIR": str(data_dir), "RAPPORT_DATABASE_URL": url,
                                  "RAPPORT_WORKER": "off"})
    rapport = Rapport(settings, plugins=["campaigns"])
    await rapport.migrate()
    rapport.activate()
    await db.connect(rapport.engine, pool_size=4)
    try:
        seeded = await core_seed(rapport, customers, interactions)
        await seed(url, seeded)
        backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        actor = Actor(kind="staff", id=seeded.user_id, name="bench",
                      grants={"core.customer.view": "all"})
        compiled = segments.compile_rules(RULES, await segments.criteria(rapport))
        times = []
        for _ in range(5):
            began = time.perf_counter()
            members = await segments.count(rapport, actor, compiled)
            times.append(time.perf_counter() - began)
        print(f"{backend}: {customers:,} customers, {interactions:,} interactions: three-rule "
              f"segment count {members:,} members, best {min(times) * 1000:.0f} ms, "
              f"median {sorted(times)[2] * 1000:.0f} ms", flush=True)

        # Sending: a segment cut to the first `send` members (id bound) to a local SMTP sink.
        class Sink:
            received = 0

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                Sink.received += 1
                return "250 OK"

        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(Sink(), hostname="127.0.0.1", port=port)
        controller.start()
        os.environ["RAPPORT_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
        everyone = {"match": "all", "groups": [{"match": "all", "conditions": [
            {"criterion": "core.has_email", "op": "yes", "value": ""}]}]}
        saved = await segments.save_segment(rapport, actor, None, "Bench: everyone", "",
                                            everyone)
        campaign = (await Campaign.insert(Campaign(
            name="Bench", segment=saved["id"], subject="Hello {{ first_name }}",
            body_html='<p>Hi {{ first_name }}</p><p><a href="https://example.com/x">x</a></p>'
                      '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
            state="draft")).returning(Campaign.id).run())[0]["id"]
        await sending.start_sending(rapport, actor, campaign)
        began = time.perf_counter()
        queued = await sending.materialise(rapport, campaign)
        print(f"{backend}: materialised {queued:,} recipients in "
              f"{time.perf_counter() - began:.1f} s", flush=True)
        # Only `send` of them are mailed in this run: the rest are set aside.
        keep = await Message.select(Message.id).where(Message.campaign == campaign).order_by(
            Message.id).limit(1).offset(max(send - 1, 0)).first().run()
        if keep:
            await Message.update({Message.state: "failed", Message.detail: "bench"}).where(
                (Message.campaign == campaign) & (Message.id > keep["id"])).run()
        # No fatigue limit: each bench customer already has outbound interactions.
        from core.interactions.policy import set_fatigue_rule

        await set_fatigue_rule(None, 0, 7)
        tracemalloc.start()
        began = time.perf_counter()
        await jobs.run_pending(rapport, rounds=5)
        spent = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        controller.stop()
        print(f"{backend}: sent {Sink.received:,} e-mails to a local SMTP sink in {spent:.1f} s "
              f"({Sink.received / spent:.0f}/s), peak Python memory {peak / 1e6:.1f} MB",
              flush=True)

        sent = await Message.select(Message.id).where(
            (Message.campaign == campaign) & (Message.state == "sent")).limit(clicks).run()
        samples = []
        transport = httpx.ASGITransport(app=rapport.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for row in sent:
                path = f"/campaigns/r/{tracking.token_for(rapport, row['id'])}/0"
                began = time.perf_counter()
                response = await client.get(path)
                samples.append(time.perf_counter() - began)
                assert response.status_code == 302, response.status_code
        print(f"{backend}: click redirect p95 {_p95(samples) * 1000:.1f} ms over "
              f"{len(samples)} clicks (in-process, each one a touch point)", flush=True)
    finally:
        await db.disconnect(rapport.engine)
        if drop is not None:
            await drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=200_000)
    parser.add_argument("--database", default=None,
                        help="a PostgreSQL URL to create the scratch database beside "
                             "(default: SQLite)")
    parser.add_argument("--send", type=int, default=1000, help="e-mails to send")
    parser.add_argument("--clicks", type=int, default=300, help="click redirects to time")
    args = parser.parse_args()
    asyncio.run(standalone(args.customers, args.interactions, args.database, args.send,
                           args.clicks))


if __name__ == "__main__":
    main()
