"""Accent- and case-folded search, and interactions in the search index.

``Muller`` finds *Müller* and ``ZOË`` finds *Zoe*: the customer search documents now hold
folded text (``core.search.fold``), and queries are folded the same way.

SQLite: the document view folds name, emails and account with ``rapport_fold()`` (registered
on every connection by ``core.db``); the FTS5 table is refilled from it. Interactions get an
FTS5 trigram table over their folded subject and notes (external content: the folded view),
kept current by triggers.

PostgreSQL: an immutable ``core_search_fold(text)`` function and trigram GIN indexes over
``core_search_fold(name)`` (customers) and over interactions' folded subject and notes.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.search.fold import postgres_fold_function

ID = "2026-12-07T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Accent-folded customer search; interactions' subject and notes searchable"

PAUSED = "NOT EXISTS (SELECT 1 FROM core_search_pause)"

SQLITE_DOC_VIEW = """
CREATE VIEW core_search_customer_doc AS
SELECT c.id AS id,
       rapport_fold(c.name) AS name,
       rapport_fold(trim(c.primary_email || ' ' || coalesce(
           (SELECT group_concat(e.email, ' ') FROM core_customer_email e WHERE e.customer = c.id),
           ''))) AS emails,
       trim(replace(c.primary_phone, '+', '') || ' ' || coalesce(
           (SELECT group_concat(replace(p.phone, '+', ''), ' ')
              FROM core_customer_phone p WHERE p.customer = c.id),
           '')) AS phones,
       rapport_fold(coalesce((SELECT a.name FROM core_customer a WHERE a.id = c.account), ''))
           AS account
  FROM core_customer c
"""

INTERACTION_DOC = "core_search_interaction_doc"
INTERACTION_FTS = "core_search_interaction"
_FROM_DOC = (f"INSERT INTO {INTERACTION_FTS}(rowid, subject, notes) "
             f"SELECT id, subject, notes FROM {INTERACTION_DOC} WHERE id = NEW.id;")
_DELETE_DOC = (f"INSERT INTO {INTERACTION_FTS}({INTERACTION_FTS}, rowid, subject, notes) "
               f"SELECT 'delete', id, subject, notes FROM {INTERACTION_DOC} WHERE id = OLD.id;")

SQLITE_STATEMENTS = [
    "DROP VIEW IF EXISTS core_search_customer_doc",
    SQLITE_DOC_VIEW,
    "DELETE FROM core_search_customer",
    "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
    "SELECT id, name, emails, phones, account FROM core_search_customer_doc",
    f"CREATE VIEW IF NOT EXISTS {INTERACTION_DOC} AS SELECT id, rapport_fold(subject) AS "
    "subject, rapport_fold(notes) AS notes FROM core_interaction",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {INTERACTION_FTS} USING fts5(subject, notes, "
    f"content='{INTERACTION_DOC}', content_rowid='id', tokenize='trigram')",
    # The 'delete' command needs the values that were indexed: read them before the change.
    f"CREATE TRIGGER IF NOT EXISTS {INTERACTION_FTS}_ai AFTER INSERT ON core_interaction "
    f"BEGIN {_FROM_DOC} END",
    f"CREATE TRIGGER IF NOT EXISTS {INTERACTION_FTS}_bu BEFORE UPDATE OF subject, notes "
    f"ON core_interaction BEGIN {_DELETE_DOC} END",
    f"CREATE TRIGGER IF NOT EXISTS {INTERACTION_FTS}_au AFTER UPDATE OF subject, notes "
    f"ON core_interaction BEGIN {_FROM_DOC} END",
    f"CREATE TRIGGER IF NOT EXISTS {INTERACTION_FTS}_bd BEFORE DELETE ON core_interaction "
    f"BEGIN {_DELETE_DOC} END",
    f"INSERT INTO {INTERACTION_FTS}({INTERACTION_FTS}) VALUES ('rebuild')",
]

POSTGRES_STATEMENTS = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    postgres_fold_function(),
    "CREATE INDEX IF NOT EXISTS core_search_customer_fname_trgm "
    "ON core_customer USING gin (core_search_fold(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS core_search_interaction_subject_trgm "
    "ON core_interaction USING gin (core_search_fold(subject) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS core_search_interaction_notes_trgm "
    "ON core_interaction USING gin (core_search_fold(notes) gin_trgm_ops)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_search", description=DESCRIPTION)

    async def folded_index():
        from core.customers.tables import Customer

        postgres = Customer._meta.db.engine_type in ("postgres", "cockroach")
        for statement in POSTGRES_STATEMENTS if postgres else SQLITE_STATEMENTS:
            await Customer.raw(statement).run()

    manager.add_raw(folded_index)
    return manager
