"""Seed a benchmark database: a staff user with an API token, customers and interactions.

Customers come from the row generator behind ``rapport demo`` (``core.customers.demo``), written
in bulk here (the demo seeder's own path is too slow at a million); interactions likewise, both
straight through the driver: ``executemany`` in large transactions on SQLite,
``copy_records_to_table`` on PostgreSQL. One customer (the "hot" one) gets exactly
``HOT_INTERACTIONS`` interactions, for the 360° view scenario.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
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


# Below this many rows an insert keeps the table's indexes (rebuilding them costs a table scan).
REBUILD_INDEXES_FROM = CHUNK

SECONDARY_INDEXES_SQLITE = ("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                            "AND tbl_name = ? AND sql IS NOT NULL")
# Indexes not backing a constraint (primary key, unique): those can be dropped and re-created.
SECONDARY_INDEXES_POSTGRES = """
    SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename = $1
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                      WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)
"""


def _sqlite_value(value: Any) -> Any:
    """What Piccolo's registered sqlite3 adapter stores for ``value`` (datetimes as text)."""
    from piccolo.engine.sqlite import ADAPTERS

    adapter = ADAPTERS.get(type(value))
    return adapter(value) if adapter is not None else value


def _sqlite_connect(database_url: str) -> sqlite3.Connection:
    """A bare connection with the SQL functions Rapport's triggers call (``core.db``)."""
    from core.search.fold import fold

    connection = sqlite3.connect(unquote(database_url[len("sqlite:///"):]), timeout=30,
                                 isolation_level=None)
    connection.create_function("rapport_fold", 1, fold, deterministic=True)
    return connection


# Interactions' search index (core.search): its triggers are dropped while a bulk insert runs
# and the FTS table rebuilt once afterwards (one pass instead of an index write per row).
SEARCH_TRIGGERS = ("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                   "AND tbl_name = ? AND name LIKE 'core_search_interaction%'")


@contextlib.contextmanager
def _sqlite_search_deferred(connection: sqlite3.Connection, table: str):
    triggers = connection.execute(SEARCH_TRIGGERS, [table]).fetchall()
    for trigger, _ in triggers:
        connection.execute(f'DROP TRIGGER "{trigger}"')
    try:
        yield
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        if triggers:
            log(f"{table}: rebuilding its search index")
            connection.execute("INSERT INTO core_search_interaction(core_search_interaction) "
                               "VALUES ('rebuild')")
        for _, sql in triggers:
            connection.execute(sql)


@contextlib.contextmanager
def _sqlite_indexes_dropped(connection: sqlite3.Connection, tables: list[str]):
    """The secondary indexes of ``tables`` dropped for the duration and re-created verbatim
    from sqlite_master afterwards (one sort each instead of millions of random b-tree
    inserts). ``connection`` is in autocommit mode; an open transaction is rolled back first."""
    indexes = [row for table in tables
               for row in connection.execute(SECONDARY_INDEXES_SQLITE, [table]).fetchall()]
    for index, _ in indexes:
        connection.execute(f'DROP INDEX "{index}"')
    try:
        yield
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        if indexes:
            log(f"{', '.join(tables)}: re-creating {len(indexes)} indexes")
        for _, sql in indexes:
            connection.execute(sql)


@contextlib.asynccontextmanager
async def _postgres_indexes_dropped(connection, tables: list[str]):
    """The same on PostgreSQL (from pg_indexes; constraint indexes stay), with foreign-key
    checks skipped meanwhile (``session_replication_role = replica``) when no table has
    triggers of its own, which that would skip too, and the session may (a superuser)."""
    import asyncpg

    own_triggers = await connection.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY($1::regclass[]) "
        "AND NOT tgisinternal", tables)
    if not own_triggers:
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("SET session_replication_role = replica")
    await connection.execute("SET maintenance_work_mem = '512MB'")
    indexes = [row for table in tables
               for row in await connection.fetch(SECONDARY_INDEXES_POSTGRES, table)]
    for index in indexes:
        await connection.execute(f'DROP INDEX "{index["indexname"]}"')
    try:
        yield
    finally:
        if indexes:
            log(f"{', '.join(tables)}: re-creating {len(indexes)} indexes")
        for index in indexes:
            await connection.execute(index["indexdef"])
        await connection.execute("RESET session_replication_role")


async def bulk_insert(database_url: str, table, values_iter, total: int, *,
                      columns: list[str] | None = None) -> None:
    """Insert ``total`` rows into ``table`` in big chunks, fast, on either backend.

    ``values_iter`` yields dicts of column values (missing columns get the table's defaults),
    or, with ``columns``, tuples of those columns in that order (no dict per row: the fast
    path for millions of rows; the other columns get their defaults). Tuples must carry what
    the driver stores as is: on SQLite, datetimes already as Piccolo's text
    (:func:`_sqlite_value`). For ``REBUILD_INDEXES_FROM`` rows or more, the table's secondary
    indexes are dropped during the insert and re-created verbatim afterwards (one sort each
    instead of millions of random b-tree inserts); on PostgreSQL the session also skips
    foreign-key triggers when it may (the generated rows are consistent by construction).
    """
    defaults = _defaults(table)
    if columns is None:
        columns = list(defaults) + (["id"] if "id" not in defaults else [])
        defaults.setdefault("id", None)
        rest: list[str] = []

        def chunks():
            done = 0
            while done < total:
                chunk = list(islice(values_iter, min(CHUNK, total - done)))
                yield _rows(defaults, columns, chunk)
                done += len(chunk)
    else:
        rest = [c for c in defaults if c not in columns]

        def chunks():
            done = 0
            while done < total:
                chunk = list(islice(values_iter, min(CHUNK, total - done)))
                yield [row + suffix for row in chunk] if suffix else chunk
                done += len(chunk)
    all_columns = columns + rest
    name = table._meta.tablename
    rebuild = total >= REBUILD_INDEXES_FROM
    done = 0
    if database_url.startswith("sqlite"):
        import piccolo.engine.sqlite  # noqa: F401  registers the adapters Piccolo stores with

        suffix = tuple(_sqlite_value(defaults[c]) for c in rest)
        connection = _sqlite_connect(database_url)
        try:
            connection.execute("PRAGMA cache_size = -524288")
            connection.execute("PRAGMA synchronous = OFF")  # a scratch database
            marks = ", ".join("?" for _ in all_columns)
            quoted = ", ".join(f'"{c}"' for c in all_columns)  # "user" is a reserved word
            sql = f"INSERT INTO {name} ({quoted}) VALUES ({marks})"
            with (_sqlite_indexes_dropped(connection, [name]) if rebuild
                  else contextlib.nullcontext()), _sqlite_search_deferred(connection, name):
                for rows in chunks():
                    connection.execute("BEGIN IMMEDIATE")  # one transaction per chunk
                    connection.executemany(sql, rows)
                    connection.execute("COMMIT")
                    done += len(rows)
                    log(f"{name}: {done:,}/{total:,}")
            connection.execute("ANALYZE")
        finally:
            connection.close()
        return
    import asyncpg

    suffix = tuple(defaults[c] for c in rest)
    connection = await asyncpg.connect(database_url)
    try:
        async with (_postgres_indexes_dropped(connection, [name]) if rebuild
                    else contextlib.nullcontext()):
            for rows in chunks():
                await connection.copy_records_to_table(name, records=rows, columns=all_columns)
                done += len(rows)
                log(f"{name}: {done:,}/{total:,}")
        await connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
        await connection.execute(f"ANALYZE {name}")
    finally:
        await connection.close()


PAUSABLE_TRIGGERS = ("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                     "AND sql LIKE '%AFTER INSERT%core_search_pause%'")


def _demo_generator():
    """core.customers.demo's row generator (realistic names, accounts, emails, phones, tags,
    addresses), or None when it is not there."""
    try:
        from core.customers import demo
    except ImportError:
        return None
    if not all(hasattr(demo, name) for name in ("_batch_rows", "_pools", "INSERTS")):
        return None
    return demo


PLAIN_INSERTS = [
    ("core_customer", ["id", "kind", "name", "first_name", "last_name", "job_title", "account",
                       "owner", "team", "lifecycle_stage", "source", "primary_email",
                       "primary_phone", "website", "industry", "notes", "preferred_channel",
                       "opted_out_channels", "do_not_contact", "annual_revenue", "currency",
                       "created_at", "updated_at"]),
    ("core_customer_email", ["customer", "email", "label"]),
    ("core_customer_phone", ["customer", "phone", "label"]),
    ("core_customer_tag", ["customer", "tag"]),
    ("core_customer_address", ["customer", "label", "street", "city", "region", "postcode",
                               "country"]),
]


def _plain_batch(start: int, count: int, first_id: int, now: datetime):
    rnd = random.Random(7 + start)
    stages = ["lead", "prospect", "customer", "churned"]
    customers, emails, phones, tags, addresses = [], [], [], [], []
    for offset in range(count):
        i, cid = start + offset, first_id + offset
        first, last = f"Ada{i % 997}", f"Lovelace{i}"
        customers.append((cid, "contact", f"{first} {last}", first, last, "", None, None, None,
                          rnd.choice(stages), "", f"c{i}@example.test", "", "", "", "", "",
                          "", False, None, "", now, now))
        emails.append((cid, f"c{i}@example.test", "work"))
    return customers, emails, phones, tags, addresses


async def _seed_customers(database_url: str, n: int) -> None:
    """``n`` customers with their emails, phones, tags and addresses, in bulk.

    The rows come from the demo generator (so lists and search look like real data) but are
    written here in 50,000-customer transactions straight through the driver: executemany on
    SQLite with the search-index triggers dropped for the duration (the FTS index is rebuilt
    in one statement at the end, then the triggers are re-created verbatim), COPY on
    PostgreSQL; from ``REBUILD_INDEXES_FROM`` customers on, the tables' secondary indexes are
    dropped meanwhile and re-created afterwards, as in :func:`bulk_insert`. 1,000,000
    customers take a minute or two instead of the demo seeder's hour.
    """
    demo = _demo_generator()
    now = datetime.now(UTC).replace(microsecond=0)
    if demo is not None:
        pools = demo._pools()
        staff = await demo._demo_staff()

        def batch(start: int, count: int, first_id: int):
            return demo._batch_rows(pools, staff, start, count, first_id, now)
    else:
        def batch(start: int, count: int, first_id: int):
            return _plain_batch(start, count, first_id, now)
    # (table, columns) for customers, emails, phones, tags, addresses
    tables = list(demo.INSERTS.values()) if demo is not None else PLAIN_INSERTS
    done = 0
    if database_url.startswith("sqlite"):
        import piccolo.engine.sqlite  # noqa: F401  registers the adapters Piccolo stores with

        connection = _sqlite_connect(database_url)
        try:
            connection.execute("PRAGMA cache_size = -524288")
            connection.execute("PRAGMA synchronous = OFF")  # a scratch database
            first_id = (connection.execute("SELECT max(id) FROM core_customer").fetchone()[0]
                        or 0) + 1
            connection.execute("BEGIN IMMEDIATE")
            triggers = connection.execute(PAUSABLE_TRIGGERS).fetchall()
            for name, _ in triggers:
                connection.execute(f'DROP TRIGGER "{name}"')
            connection.execute("COMMIT")
            try:
                # The search index's document view needs the indexes back before the rebuild.
                with (_sqlite_indexes_dropped(connection, [t for t, _ in tables])
                      if n >= REBUILD_INDEXES_FROM else contextlib.nullcontext()):
                    while done < n:
                        count = min(CHUNK, n - done)
                        rows = batch(done, count, first_id + done)
                        connection.execute("BEGIN IMMEDIATE")
                        for (table, columns), values in zip(tables, rows, strict=True):
                            if values:
                                connection.executemany(
                                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' for _ in columns)})", values)
                        connection.execute("COMMIT")
                        done += count
                        log(f"core_customer: {done:,}/{n:,}")
                log("search index: rebuilding")
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
                    "SELECT id, name, emails, phones, account FROM core_search_customer_doc "
                    "WHERE id >= ?", [first_id])
                connection.execute("COMMIT")
            finally:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                for _, sql in triggers:
                    connection.execute(sql)
            connection.execute("ANALYZE")
        finally:
            connection.close()
        return
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        first_id = (await connection.fetchval("SELECT max(id) FROM core_customer") or 0) + 1
        async with (_postgres_indexes_dropped(connection, [t for t, _ in tables])
                    if n >= REBUILD_INDEXES_FROM else contextlib.nullcontext()):
            while done < n:
                count = min(CHUNK, n - done)
                rows = batch(done, count, first_id + done)
                async with connection.transaction():
                    for (table, columns), values in zip(tables, rows, strict=True):
                        if values:
                            await connection.copy_records_to_table(table, records=values,
                                                                   columns=columns)
                done += count
                log(f"core_customer: {done:,}/{n:,}")
        for table, _ in tables:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))")
            await connection.execute(f"ANALYZE {table}")
    finally:
        await connection.close()


async def _seed_interactions(database_url: str, customer_ids: list[int], hot: int, n: int,
                             user_id: int) -> None:
    """``n`` interactions, the first ``HOT_INTERACTIONS`` on ``hot``, the rest spread at random
    over ``customer_ids`` and three years; rows as tuples (millions of them: no dict per row)."""
    from core.interactions.tables import Interaction

    rnd = random.Random(11)
    channels = ["call", "email", "meeting", "visit", "chat"]
    start = datetime.now(UTC) - timedelta(days=3 * 365)
    minutes = 3 * 365 * 24 * 60
    others = [c for c in customer_ids if c != hot] or [hot]
    stamp = _sqlite_value if database_url.startswith("sqlite") else (lambda at: at)
    columns = ["id", "customer", "channel", "direction", "subject", "notes", "occurred_at",
               "user", "created_at", "updated_at"]

    def interactions():
        choice, randrange = rnd.choice, rnd.randrange
        for i in range(1, n + 1):
            customer = hot if i <= HOT_INTERACTIONS else choice(others)
            at = stamp(start + timedelta(minutes=randrange(minutes)))
            yield (i, customer, choice(channels), "outbound", f"Touch point {i}",
                   "Talked about the next order.", at, user_id, at, at)

    await bulk_insert(database_url, Interaction, interactions(), n, columns=columns)


def write_import_csv(path, rows: int, *, bad_line: int | None = None) -> None:
    """A contacts CSV like a CRM export: names, unique emails and phones, one account per 20
    rows, job titles, stages, tags and a city. ``bad_line`` (a file line number, the header is
    line 1) gets an invalid email, to check all-or-nothing."""
    import csv

    stages = ["lead", "prospect", "customer", "churned"]
    titles = ["Buyer", "Owner", "Office manager", "Head of purchasing", ""]
    tags = ["", "vip", "newsletter;trade fair", "partner"]
    cities = ["Leeds", "Bristol", "York", "Bath", "Hull"]
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["First name", "Last name", "Email", "Phone", "Company", "Job title",
                      "Stage", "Tags", "City", "Country"])
        for i in range(rows):
            email = f"imported{i}@example.test" if bad_line != i + 2 else "not an email"
            out.writerow([f"Person{i % 1009}", f"Imported{i}", email,
                          f"+44 20 7{i // 10000 % 1000:03d} {i % 10000:04d}",
                          f"Import Company {i // 20}", titles[i % 5], stages[i % 4],
                          tags[i % 4], cities[i % 5], "GB"])


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
