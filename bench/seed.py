"""Seed a benchmark database: a staff user with an API token, customers and interactions.

Customers come from ``core.customers.demo.seed_customers`` (the same generator as
``rapport demo``) when it is there, else from a plain bulk insert. Interactions are written in
bulk straight through the driver: ``executemany`` in large transactions on SQLite,
``copy_records_to_table`` on PostgreSQL. One customer (the "hot" one) gets exactly
``HOT_INTERACTIONS`` interactions, for the 360° view scenario.
"""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

HOT_INTERACTIONS = 1000
CHUNK = 50_000
BENCH_EMAIL = "bench@example.test"
BENCH_PASSWORD = "bench password, loopback only"


@dataclass
class Seeded:
    token: str
    user_id: int
    hot_customer_id: int
    customer_ids: list[int]
    search_term: str
    customers: int
    interactions: int
    seconds: float


def log(message: str) -> None:
    print(f"  {message}", flush=True)


def _defaults(table) -> dict[str, Any]:
    """Every column's default, so new columns added by later issues need no change here."""
    return {c._meta.db_column_name: c.get_default_value() for c in table._meta.columns
            if not c._meta.primary_key}


def _rows(defaults: dict[str, Any], columns: list[str], values: list[dict[str, Any]]):
    return [tuple(v.get(c, defaults[c]) for c in columns) for v in values]


async def bulk_insert(database_url: str, table, values_iter, total: int) -> None:
    """Insert dicts of column values into ``table`` in big chunks, fast, on either backend."""
    defaults = _defaults(table)
    columns = list(defaults) + (["id"] if "id" not in defaults else [])
    defaults.setdefault("id", None)
    name = table._meta.tablename
    done = 0
    if database_url.startswith("sqlite"):
        import piccolo.engine.sqlite  # noqa: F401  registers the adapters Piccolo stores with

        connection = sqlite3.connect(unquote(database_url[len("sqlite:///"):]), timeout=30)
        try:
            marks = ", ".join("?" for _ in columns)
            quoted = ", ".join(f'"{c}"' for c in columns)  # "user" is a reserved word
            sql = f"INSERT INTO {name} ({quoted}) VALUES ({marks})"
            while done < total:
                chunk = [next(values_iter) for _ in range(min(CHUNK, total - done))]
                with connection:  # one transaction per chunk
                    connection.executemany(sql, _rows(defaults, columns, chunk))
                done += len(chunk)
                log(f"{name}: {done:,}/{total:,}")
            connection.execute("ANALYZE")
        finally:
            connection.close()
        return
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        while done < total:
            chunk = [next(values_iter) for _ in range(min(CHUNK, total - done))]
            await connection.copy_records_to_table(
                name, records=_rows(defaults, columns, chunk), columns=columns)
            done += len(chunk)
            log(f"{name}: {done:,}/{total:,}")
        await connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
        await connection.execute(f"ANALYZE {name}")
    finally:
        await connection.close()


async def _seed_customers(database_url: str, n: int) -> None:
    try:
        from core.customers.demo import seed_customers
    except ImportError:
        seed_customers = None
    if seed_customers is not None:
        await seed_customers(n)
        return
    from core.customers.tables import Customer

    rnd = random.Random(7)
    stages = ["lead", "prospect", "customer", "churned"]
    now = datetime.now(UTC)

    def customers():
        for i in range(1, n + 1):
            first, last = f"Ada{i % 997}", f"Lovelace{i}"
            yield {"id": i, "kind": "contact", "name": f"{first} {last}", "first_name": first,
                   "last_name": last, "primary_email": f"c{i}@example.test",
                   "lifecycle_stage": rnd.choice(stages), "created_at": now, "updated_at": now}

    await bulk_insert(database_url, Customer, customers(), n)


async def _seed_interactions(database_url: str, customer_ids: list[int], hot: int, n: int,
                             user_id: int) -> None:
    from core.interactions.tables import Interaction

    rnd = random.Random(11)
    channels = ["call", "email", "meeting", "visit", "chat"]
    start = datetime.now(UTC) - timedelta(days=3 * 365)
    others = [c for c in customer_ids if c != hot] or [hot]

    def interactions():
        for i in range(1, n + 1):
            customer = hot if i <= HOT_INTERACTIONS else rnd.choice(others)
            at = start + timedelta(minutes=rnd.randrange(3 * 365 * 24 * 60))
            yield {"id": i, "customer": customer, "channel": rnd.choice(channels),
                   "direction": "outbound", "subject": f"Touch point {i}",
                   "notes": "Talked about the next order.", "occurred_at": at, "user": user_id,
                   "created_at": at, "updated_at": at}

    await bulk_insert(database_url, Interaction, interactions(), n)


async def seed(rapport, customers: int, interactions: int) -> Seeded:
    """Seed the (migrated, empty) database of ``rapport``; it must be connected."""
    from core.customers.tables import Customer
    from core.identity.tokens import create_token
    from core.identity.users import create_user

    began = time.monotonic()
    database_url = rapport.settings.database_url
    user_id = await create_user(BENCH_EMAIL, "Bench Admin", BENCH_PASSWORD,
                                roles=["administrator"])
    token, _ = await create_token(rapport, user_id, name="bench")
    log(f"customers: seeding {customers:,}")
    await _seed_customers(database_url, customers)
    rows = await Customer.select(Customer.id).order_by(Customer.id).limit(
        min(customers, 5000)).run()
    customer_ids = [r["id"] for r in rows]
    hot = customer_ids[0]
    total_customers = await Customer.count().run()
    all_ids = customer_ids if total_customers <= len(customer_ids) else list(
        range(customer_ids[0], customer_ids[0] + total_customers))
    made = 0
    try:
        from core.interactions.tables import Interaction  # noqa: F401
    except ImportError:
        log("interactions: not available yet, skipped")
    else:
        log(f"interactions: seeding {interactions:,} ({HOT_INTERACTIONS:,} on customer {hot})")
        await _seed_interactions(database_url, all_ids, hot, interactions, user_id)
        made = interactions
    sample = await Customer.select(Customer.last_name, Customer.name).where(
        Customer.id == customer_ids[len(customer_ids) // 2]).first().run()
    term = (sample.get("last_name") or sample["name"].split()[-1]) if sample else "Lovelace"
    return Seeded(token=token, user_id=user_id, hot_customer_id=hot, customer_ids=customer_ids,
                  search_term=term, customers=total_customers, interactions=made,
                  seconds=time.monotonic() - began)
