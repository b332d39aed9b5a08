"""Atomic rate-limit counters (core.rate_limits). Written by hand like the migrations before
it; column types are spelled as Piccolo spells them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T05:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Rate-limit counters"

STATEMENTS = [
    """CREATE TABLE core_rate_count (
        key VARCHAR(100) PRIMARY KEY,
        hits INTEGER NOT NULL DEFAULT 0,
        expires_at TIMESTAMPTZ NOT NULL
    )""",
    "CREATE INDEX core_rate_count_expires_at ON core_rate_count (expires_at)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def create():
        from core.rate_limits import RateCount

        for statement in STATEMENTS:
            await RateCount.raw(statement).run()

    manager.add_raw(create)
    return manager
