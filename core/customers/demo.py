"""Demo customers, from a handful to a million: realistic, reproducible, idempotent.

``seed_customers(n)`` makes sure ``n`` demo customers exist (running it twice creates
nothing the second time; asking for more adds only the difference). Rows are generated from
a seeded Faker and written with multi-row batched inserts, one transaction per batch, straight
through the database driver: a million customers take minutes, not hours. The benchmark
scenarios call it too.
"""

from __future__ import annotations

import functools
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

from core.customers.tables import LIFECYCLE_STAGES, Customer
from core.identity.tables import Team, TeamMember, User

SEED = 20261123
BATCH = 2000
MARKER = "core.customers.demo_count"  # core_instance_setting key: how many exist
ACCOUNT_SHARE = 5  # one customer in five is an account
SOURCES = ["website", "referral", "trade show", "cold call", "partner", "newsletter", "import"]
TAGS = ["vip", "newsletter", "partner", "enterprise", "smb", "trade-show", "referral",
        "key-account", "at-risk", "upsell"]
INDUSTRIES = ["Retail", "Manufacturing", "Software", "Healthcare", "Logistics", "Finance",
              "Hospitality", "Construction", "Education", "Energy"]
STAGE_WEIGHTS = [30, 25, 35, 10]  # lead, prospect, customer, churned
CUSTOMER_COLUMNS = [
    "id", "kind", "name", "first_name", "last_name", "job_title", "account", "owner", "team",
    "lifecycle_stage", "source", "primary_email", "primary_phone", "website", "industry",
    "notes", "preferred_channel", "opted_out_channels", "do_not_contact", "annual_revenue",
    "currency", "created_at", "updated_at",
]


@functools.cache
def _pools() -> _Pools:
    return _Pools()


class _Pools:
    """Names drawn once from a seeded Faker, then combined by a seeded random generator:
    Faker per row would dominate the time at a million rows."""

    def __init__(self) -> None:
        fake = Faker(["en_GB", "en_US", "fr_FR", "de_DE"])
        fake.seed_instance(SEED)
        self.first = [fake.first_name() for _ in range(1500)]
        self.last = [fake.last_name() for _ in range(1500)]
        self.companies = [fake.company() for _ in range(1500)]
        self.jobs = [fake.job()[:150] for _ in range(300)]
        self.streets = [fake.street_address()[:300] for _ in range(500)]
        self.cities = [fake.city()[:150] for _ in range(300)]


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum()) or "x"


async def _demo_staff() -> list[tuple[int, int | None]]:
    """(owner id, team id) pairs from the demo users (identity seeds them first)."""
    from core.identity.demo import DEMO_USERS

    emails = [email for email, _, roles, _ in DEMO_USERS
              if set(roles) & {"sales_representative", "field_representative", "manager",
                               "service_agent"}]
    users = await User.select(User.id, User.email).where(User.email.is_in(emails)).run()
    members = await TeamMember.select(TeamMember.user, TeamMember.team).where(
        TeamMember.user.is_in([u["id"] for u in users] or [0])).run()
    team_of = {m["user"]: m["team"] for m in members}
    pairs = [(u["id"], team_of.get(u["id"])) for u in users]
    if not pairs:  # no demo users: fall back to any team so lists still have variety
        teams = await Team.select(Team.id).run()
        pairs = [(None, t["id"]) for t in teams] or [(None, None)]
    return pairs


async def _existing_count() -> int:
    from core.instance import InstanceSetting

    row = await InstanceSetting.select(InstanceSetting.value).where(
        InstanceSetting.key == MARKER).first().run()
    return int(json.loads(row["value"])) if row else 0


async def _save_count(count: int) -> None:
    from core.instance import InstanceSetting

    now = datetime.now(UTC)
    if await InstanceSetting.exists().where(InstanceSetting.key == MARKER).run():
        await InstanceSetting.update({InstanceSetting.value: json.dumps(count),
                                      InstanceSetting.updated_at: now}).where(
            InstanceSetting.key == MARKER).run()
    else:
        await InstanceSetting.insert(InstanceSetting(key=MARKER, value=json.dumps(count),
                                                     updated_at=now)).run()


def _batch_rows(pools: _Pools, staff, start_index: int, count: int, first_id: int,
                now: datetime) -> tuple[list[tuple], list[tuple], list[tuple], list[tuple],
                                        list[tuple]]:
    """Rows for customers number ``start_index`` .. ``start_index + count - 1``."""
    rng = random.Random(SEED + start_index)
    customers, emails, phones, tags, addresses = [], [], [], [], []
    account_ids: list[tuple[int, str, Any, Any]] = []
    for offset in range(count):
        number = start_index + offset
        cid = first_id + offset
        owner, team = rng.choice(staff)
        stage = rng.choices(LIFECYCLE_STAGES, STAGE_WEIGHTS)[0]
        created = now - timedelta(days=rng.randint(0, 1500), seconds=rng.randint(0, 86399))
        updated = min(now, created + timedelta(days=rng.randint(0, 400),
                                               seconds=rng.randint(0, 86399)))
        phone = f"+4420{rng.choice('378')}{rng.randint(0, 9999999):07d}"  # London numbers
        source = rng.choice(SOURCES)
        if number % ACCOUNT_SHARE == 0 or not account_ids:
            company = rng.choice(pools.companies)
            name = f"{company} {rng.choice(pools.cities)}" if rng.random() < 0.7 else company
            domain = f"{_slug(company)[:30]}{number}.example"
            email = f"info@{domain}"
            customers.append((
                cid, "account", name[:300], "", "", "", None, owner, team, stage, source,
                email, phone, f"https://www.{domain}", rng.choice(INDUSTRIES), "", "", "",
                False, Decimal(rng.randint(50, 50000) * 1000), "GBP", created, updated))
            account_ids.append((cid, domain, owner, team))
        else:
            first, last = rng.choice(pools.first), rng.choice(pools.last)
            account, domain, owner, team = rng.choice(account_ids) if rng.random() < 0.8 \
                else (None, "mail.example", owner, team)
            email = f"{_slug(first)}.{_slug(last)}.{number}@{domain}"
            opted = ",".join(rng.sample(["sms", "call", "email"], rng.randint(0, 1)))
            customers.append((
                cid, "contact", f"{first} {last}"[:300], first[:150], last[:150],
                rng.choice(pools.jobs), account, owner, team, stage, source, email, phone,
                "", "", "", rng.choice(["", "email", "call", "sms"]), opted,
                rng.random() < 0.02, None, "", created, updated))
        emails.append((cid, email, "work"))
        phones.append((cid, phone, "work"))
        for tag in rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2])):
            tags.append((cid, tag))
        if rng.random() < 0.5:
            addresses.append((cid, "main", rng.choice(pools.streets), rng.choice(pools.cities),
                              "", f"{rng.choice('ABEGKLMNS')}{rng.randint(1, 20)} "
                                  f"{rng.randint(1, 9)}{rng.choice('ABDHJLNPQRSTUWXYZ')}"
                                  f"{rng.choice('ABDHJLNPQRSTUWXYZ')}", "GB"))
    return customers, emails, phones, tags, addresses


INSERTS = {
    "customers": ("core_customer", CUSTOMER_COLUMNS),
    "emails": ("core_customer_email", ["customer", "email", "label"]),
    "phones": ("core_customer_phone", ["customer", "phone", "label"]),
    "tags": ("core_customer_tag", ["customer", "tag"]),
    "addresses": ("core_customer_address",
                  ["customer", "label", "street", "city", "region", "postcode", "country"]),
}


def _statement(table: str, columns: list[str], postgres: bool) -> str:
    marks = ", ".join(f"${i + 1}" if postgres else "?" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


async def seed_customers(n: int, *, progress: bool = False) -> int:
    """Make sure ``n`` demo customers exist; return how many were created now."""
    from piccolo.engine.postgres import PostgresEngine

    engine = Customer._meta.db
    postgres = isinstance(engine, PostgresEngine)
    existing = await _existing_count()
    wanted = max(0, n - existing)
    if wanted == 0:
        return 0
    pools = _pools()
    staff = await _demo_staff()
    now = datetime.now(UTC).replace(microsecond=0)
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress()
        bar.start()
        task = bar.add_task("Demo customers", total=wanted)
    created = 0
    try:
        while created < wanted:
            count = min(BATCH, wanted - created)
            async with engine.transaction() as transaction:
                top = await Customer.raw("SELECT max(id) AS top FROM core_customer").run()
                first_id = (top[0]["top"] or 0) + 1
                batches = _batch_rows(pools, staff, existing + created, count, first_id, now)
                connection = transaction.connection
                for (table, columns), rows in zip(INSERTS.values(), batches, strict=True):
                    if rows:
                        await connection.executemany(_statement(table, columns, postgres), rows)
                if postgres:
                    await connection.execute(
                        "SELECT setval(pg_get_serial_sequence('core_customer', 'id'), "
                        "(SELECT max(id) FROM core_customer))")
                created += count
                await _save_count(existing + created)
            if bar is not None:
                bar.update(task, advance=count)
    finally:
        if bar is not None:
            bar.stop()
    return created
