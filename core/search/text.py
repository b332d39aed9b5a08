"""Indexed substring search for plugin tables: the core trigram machinery, reusable.

A plugin that searches its own table by "contains" (``ILIKE '%q%'``) scans the whole table on
every keystroke. Instead it indexes the columns once, in one of its own migrations::

    from core.search.text import trigram_index_statements

    async def forwards():
        ...
        async def search_index():
            for statement in trigram_index_statements(Case, ["subject"]):
                await Case.raw(statement).run()
        manager.add_raw(search_index)

and filters with :func:`contains` (``None`` when the query is too short for trigrams)::

    where = contains(Case, ["subject"], query)
    if where is not None:
        rows = await Case.select(...).where(where)...

SQLite: an external-content FTS5 table ``<table>_fts`` (trigram tokenizer) kept current by
triggers; PostgreSQL: ``pg_trgm`` GIN indexes, which serve ``ILIKE '%q%'`` directly. Both
match case-insensitive substrings of three or more characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

# Matches considered per query (newest first on SQLite): a query that matches half the table
# must not make every keystroke sort it all.
MAX_MATCHES = 5000


def _is_postgres(table: type[Table]) -> bool:
    return table._meta.db.engine_type in ("postgres", "cockroach")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fts_table(table: type[Table]) -> str:
    return f"{table._meta.tablename}_fts"


def trigram_index_statements(table: type[Table], columns: Sequence[str]) -> list[str]:
    """The SQL that indexes ``columns`` of ``table`` for :func:`contains` on the table's
    engine. Idempotent; builds the index from the rows already there."""
    name = table._meta.tablename
    if _is_postgres(table):
        return ["CREATE EXTENSION IF NOT EXISTS pg_trgm"] + [
            f"CREATE INDEX IF NOT EXISTS {name}_{column}_trgm "
            f"ON {_quote(name)} USING gin ({_quote(column)} gin_trgm_ops)"
            for column in columns
        ]
    fts = fts_table(table)
    cols = ", ".join(_quote(c) for c in columns)
    new = ", ".join(f"new.{_quote(c)}" for c in columns)
    old = ", ".join(f"old.{_quote(c)}" for c in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({cols}, content={_quote(name)}, "
        "content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {_quote(name)} BEGIN "
        f"{insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {_quote(name)} BEGIN "
        f"{delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {cols} ON {_quote(name)} "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def contains(table: type[Table], columns: Sequence[str], query: str) -> WhereRaw | None:
    """A where-clause: any of ``columns`` contains ``query`` (case-insensitive), answered
    from the trigram index of :func:`trigram_index_statements`. ``None`` when the query has
    fewer than three characters (no trigram to look up: the caller should not scan)."""
    text = " ".join((query or "").split())[:200]
    if len(text) < 3:
        return None
    name = table._meta.tablename
    if _is_postgres(table):
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clause = " OR ".join(f"{_quote(name)}.{_quote(c)} ILIKE {{}}" for c in columns)
        return WhereRaw(f"({clause})", *([like] * len(columns)))
    fts = fts_table(table)
    match = "{" + " ".join(columns) + "} : " + _phrase(text)
    return WhereRaw(
        f"{_quote(name)}.id IN (SELECT rowid FROM {fts} WHERE {fts} MATCH {{}} "
        f"ORDER BY rowid DESC LIMIT {MAX_MATCHES})", match)
