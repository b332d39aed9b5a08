"""Let bulk imports pause the SQLite search triggers.

Keeping the FTS index current row by row costs several index writes per imported customer
(one for the customer, one more per email and phone). A bulk import instead inserts a row into
``core_search_pause`` inside its own (IMMEDIATE, so exclusive) transaction, writes its rows,
rebuilds the documents of the customers it created in one statement, and removes the pause
row before committing: other writers never see the triggers paused. PostgreSQL needs nothing.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T16:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Bulk imports may pause the SQLite search triggers"

PAUSED = "NOT EXISTS (SELECT 1 FROM core_search_pause)"


def _refresh(id_expr: str, condition: str = "") -> str:
    extra = f" AND {condition}" if condition else ""
    return (
        f"DELETE FROM core_search_customer WHERE rowid IN ({id_expr}){extra};\n"
        "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
        f"SELECT id, name, emails, phones, account FROM core_search_customer_doc "
        f"WHERE id IN ({id_expr}){extra};\n"
    )


STATEMENTS = [
    "CREATE TABLE IF NOT EXISTS core_search_pause (reason VARCHAR(100))",
    "DROP TRIGGER IF EXISTS core_search_customer_ai",
    "DROP TRIGGER IF EXISTS core_search_customer_au",
    f"CREATE TRIGGER core_search_customer_ai AFTER INSERT ON core_customer WHEN {PAUSED} "
    "BEGIN\n" + _refresh("NEW.id") + "END",
    "CREATE TRIGGER core_search_customer_au "
    "AFTER UPDATE OF name, primary_email, primary_phone, account ON core_customer "
    f"WHEN {PAUSED} BEGIN\n"
    + _refresh("NEW.id")
    + _refresh("SELECT id FROM core_customer WHERE account = NEW.id", "OLD.name IS NOT NEW.name")
    + "END",
]
for _table in ("core_customer_email", "core_customer_phone"):
    for _suffix, _event, _ids in (("ai", "INSERT", ("NEW.customer",)),
                                  ("au", "UPDATE", ("OLD.customer", "NEW.customer")),
                                  ("ad", "DELETE", ("OLD.customer",))):
        STATEMENTS += [
            f"DROP TRIGGER IF EXISTS {_table}_search_{_suffix}",
            f"CREATE TRIGGER {_table}_search_{_suffix} AFTER {_event} ON {_table} "
            f"WHEN {PAUSED} BEGIN\n" + "".join(_refresh(i) for i in _ids) + "END",
        ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_search", description=DESCRIPTION)

    async def pausable_triggers():
        from core.customers.tables import Customer

        if Customer._meta.db.engine_type != "sqlite":
            return
        for statement in STATEMENTS:
            await Customer.raw(statement).run()

    manager.add_raw(pausable_triggers)
    return manager
