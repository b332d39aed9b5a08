"""Composite indexes that keep customer lists fast at a million rows.

Each list filters on ``kind`` (and, for row-level security, ``owner`` or ``team``) and pages by
keyset on (sort key, id), so each index ends with the sort key and ``id``. Names sort by
``lower(name)`` on both databases (an expression index), so the order is the same on SQLite
and PostgreSQL. Custom-field filters use (field, typed value, customer).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:47:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "Composite indexes for customer lists and custom-field filters"

INDEXES = [
    "CREATE INDEX IF NOT EXISTS core_customer_kind_updated ON core_customer (kind, updated_at, id)",
    "CREATE INDEX IF NOT EXISTS core_customer_kind_created ON core_customer (kind, created_at, id)",
    "CREATE INDEX IF NOT EXISTS core_customer_kind_lname ON core_customer (kind, lower(name), id)",
    "CREATE INDEX IF NOT EXISTS core_customer_kind_email ON core_customer (kind, primary_email, id)",
    "CREATE INDEX IF NOT EXISTS core_customer_owner_kind_updated "
    "ON core_customer (owner, kind, updated_at, id)",
    "CREATE INDEX IF NOT EXISTS core_customer_owner_kind_lname "
    "ON core_customer (owner, kind, lower(name), id)",
    "CREATE INDEX IF NOT EXISTS core_customer_team_kind_updated "
    "ON core_customer (team, kind, updated_at, id)",
    "CREATE INDEX IF NOT EXISTS core_customer_team_kind_lname "
    "ON core_customer (team, kind, lower(name), id)",
    "CREATE INDEX IF NOT EXISTS core_customer_stage_kind_updated "
    "ON core_customer (lifecycle_stage, kind, updated_at, id)",
    "CREATE INDEX IF NOT EXISTS core_customer_tag_tag_customer ON core_customer_tag (tag, customer)",
    "CREATE INDEX IF NOT EXISTS core_custom_value_text ON core_custom_value (field, value_text, customer)",
    "CREATE INDEX IF NOT EXISTS core_custom_value_number "
    "ON core_custom_value (field, value_number, customer)",
    "CREATE INDEX IF NOT EXISTS core_custom_value_date ON core_custom_value (field, value_date, customer)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_customers", description=DESCRIPTION)

    async def create_indexes():
        from core.customers.tables import Customer

        for statement in INDEXES:
            await Customer.raw(statement).run()

    manager.add_raw(create_indexes)
    return manager
