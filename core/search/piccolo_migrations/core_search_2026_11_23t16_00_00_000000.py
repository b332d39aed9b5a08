"""The customer search index.

SQLite: an FTS5 table with the trigram tokenizer (substring and typo-tolerant matching), one
row per customer (rowid = customer id) holding its name, every email, every phone as digits
and its account's name, kept current by triggers on the customer, email and phone tables.

PostgreSQL: the pg_trgm extension and GIN trigram indexes on the same columns, which serve
ILIKE '%...%', similarity (%) and word similarity (%>) without a separate index table.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Customer search index (SQLite FTS5 trigram, PostgreSQL pg_trgm)"

# What one customer's search document holds; the triggers and the backfill read this view.
SQLITE_DOC_VIEW = """
CREATE VIEW IF NOT EXISTS core_search_customer_doc AS
SELECT c.id AS id,
       c.name AS name,
       trim(c.primary_email || ' ' || coalesce(
           (SELECT group_concat(e.email, ' ') FROM core_customer_email e WHERE e.customer = c.id),
           '')) AS emails,
       trim(replace(c.primary_phone, '+', '') || ' ' || coalesce(
           (SELECT group_concat(replace(p.phone, '+', ''), ' ')
              FROM core_customer_phone p WHERE p.customer = c.id),
           '')) AS phones,
       coalesce((SELECT a.name FROM core_customer a WHERE a.id = c.account), '') AS account
  FROM core_customer c
"""


def _refresh(id_expr: str, condition: str = "") -> str:
    """Statements that rebuild the documents of the customers whose id is ``id_expr``."""
    extra = f" AND {condition}" if condition else ""
    return (
        f"DELETE FROM core_search_customer WHERE rowid IN ({id_expr}){extra};\n"
        "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
        f"SELECT id, name, emails, phones, account FROM core_search_customer_doc "
        f"WHERE id IN ({id_expr}){extra};\n"
    )


SQLITE_STATEMENTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS core_search_customer "
    "USING fts5(name, emails, phones, account, tokenize='trigram')",
    SQLITE_DOC_VIEW,
    "CREATE TRIGGER IF NOT EXISTS core_search_customer_ai AFTER INSERT ON core_customer BEGIN\n"
    + _refresh("NEW.id") + "END",
    "CREATE TRIGGER IF NOT EXISTS core_search_customer_au "
    "AFTER UPDATE OF name, primary_email, primary_phone, account ON core_customer BEGIN\n"
    + _refresh("NEW.id")
    # A renamed account renames the "account" part of its contacts' documents.
    + _refresh("SELECT id FROM core_customer WHERE account = NEW.id", "OLD.name IS NOT NEW.name")
    + "END",
    "CREATE TRIGGER IF NOT EXISTS core_search_customer_ad AFTER DELETE ON core_customer BEGIN\n"
    "DELETE FROM core_search_customer WHERE rowid = OLD.id;\nEND",
]
for _table in ("core_customer_email", "core_customer_phone"):
    SQLITE_STATEMENTS += [
        f"CREATE TRIGGER IF NOT EXISTS {_table}_search_ai AFTER INSERT ON {_table} BEGIN\n"
        + _refresh("NEW.customer") + "END",
        f"CREATE TRIGGER IF NOT EXISTS {_table}_search_au AFTER UPDATE ON {_table} BEGIN\n"
        + _refresh("OLD.customer") + _refresh("NEW.customer") + "END",
        f"CREATE TRIGGER IF NOT EXISTS {_table}_search_ad AFTER DELETE ON {_table} BEGIN\n"
        + _refresh("OLD.customer") + "END",
    ]
SQLITE_STATEMENTS.append(
    "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
    "SELECT id, name, emails, phones, account FROM core_search_customer_doc"
)

POSTGRES_STATEMENTS = [
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS core_search_customer_name_trgm "
    "ON core_customer USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS core_search_customer_email_trgm "
    "ON core_customer USING gin (primary_email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS core_search_customer_phone_trgm "
    "ON core_customer USING gin (primary_phone gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS core_search_email_trgm "
    "ON core_customer_email USING gin (email gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS core_search_phone_trgm "
    "ON core_customer_phone USING gin (phone gin_trgm_ops)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_search", description=DESCRIPTION)

    async def create_index():
        from core.customers.tables import Customer

        engine = Customer._meta.db
        statements = (
            POSTGRES_STATEMENTS if engine.engine_type in ("postgres", "cockroach")
            else SQLITE_STATEMENTS
        )
        for statement in statements:
            await Customer.raw(statement).run()

    manager.add_raw(create_index)
    return manager
