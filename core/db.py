"""The data layer: engines, activation and migrations.

SQLite is the embedded default; PostgreSQL is chosen with ``RAPPORT_DATABASE_URL``.

Piccolo's stock SQLite engine opens a new connection for every query made outside a
transaction (about 3 ms each, against 0.25 ms on an open connection), and its PostgreSQL
engine does the same unless a pool is started. Rapport keeps one connection per worker for
SQLite and a pool for PostgreSQL, so list pages pay only for their queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import aiosqlite
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
from piccolo.table import Table


class DatabaseError(Exception):
    """A database state a self-hoster must fix (unmigrated, unreachable); says how."""


log = logging.getLogger("rapport.db")

# --- After commit --------------------------------------------------------------------------
# Work that must only happen once a change is durable (live updates, waking the job worker)
# is registered on the outermost open transaction and run after its COMMIT; a rollback drops
# it. Piccolo treats a nested ``transaction()`` as the outer one, so "the current transaction"
# is always the outermost.


class _AfterCommitMixin:
    def _init_after_commit(self) -> None:
        self.after_commit_callbacks: list[Callable[[], Awaitable[None]]] = []

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        outermost = self._parent is None  # type: ignore[attr-defined]
        result = await super().__aexit__(exception_type, exception, traceback)  # type: ignore[misc]
        if outermost and self._committed and not self._rolled_back:  # type: ignore[attr-defined]
            callbacks, self.after_commit_callbacks = self.after_commit_callbacks, []
            for callback in callbacks:
                try:
                    await callback()
                except Exception:  # the change is committed; a callback cannot undo it
                    log.exception("after-commit callback failed")
        return result


class RapportSQLiteTransaction(_AfterCommitMixin, SQLiteTransaction):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_after_commit()


class RapportPostgresTransaction(_AfterCommitMixin, PostgresTransaction):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_after_commit()


def in_transaction(engine: Engine) -> bool:
    """Whether the calling task has a transaction open on ``engine``."""
    current = getattr(engine, "current_transaction", None)
    return current is not None and current.get() is not None


def after_commit(engine: Engine, callback: Callable[[], Awaitable[None]]) -> bool:
    """Run ``callback`` once the outermost transaction open on ``engine`` commits (never if
    it rolls back). Returns False when no transaction is open: the caller runs it now.

    Piccolo's stock engines (only used by ``make bench`` comparisons) cannot defer: there the
    answer is False too and the work runs at once, as before after-commit existed."""
    current = getattr(engine, "current_transaction", None)
    transaction = current.get() if current is not None else None
    if not isinstance(transaction, _AfterCommitMixin):
        return False
    transaction.after_commit_callbacks.append(callback)
    return True


# How long a SQLite writer waits for another to finish before giving up with "database is
# locked". Writers queue for the lock (transactions BEGIN IMMEDIATE); under a burst of writes
# from several processes (workers, the job worker, the CLI) 5 s was exceeded and a create
# answered 500. A wait this long is only reached when something holds the lock far too long.
BUSY_TIMEOUT_SECONDS = 30.0

_SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}",
)


async def register_sqlite_functions(connection: aiosqlite.Connection) -> None:
    """SQL functions Rapport's SQLite schema calls: ``rapport_fold(text)`` (search's accent
    and case folding, :func:`core.search.fold.fold`), which the search index triggers use:
    a bare ``sqlite3`` shell cannot write names or interaction notes (docs/search.md)."""
    from core.search.fold import fold

    await connection.create_function("rapport_fold", 1, fold, deterministic=True)


class RapportSQLiteEngine(SQLiteEngine):
    """SQLite with one long-lived connection per event loop for queries outside transactions.

    Transactions still get their own connection (SQLite serialises writers anyway, and WAL lets
    readers carry on meanwhile). Every connection gets WAL, foreign keys and a busy timeout.

    Transactions begin IMMEDIATE: a deferred one that reads and then writes while another
    connection writes fails at once with "database is locked" (SQLite cannot wait for a lock
    upgrade from a stale snapshot), whereas an immediate one takes the write lock up front and
    waits its turn under the busy timeout. Writers queue instead of failing.

    Writes outside a transaction go to a second kept connection: one waiting for the write
    lock then holds up only other such writes, never the process's reads (an aiosqlite
    connection runs its statements one at a time).
    """

    def __init__(self, path: str, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", BUSY_TIMEOUT_SECONDS)
        super().__init__(path=path, **kwargs)
        self._shared: aiosqlite.Connection | None = None
        self._writer: aiosqlite.Connection | None = None
        self._shared_loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()

    def transaction(self, transaction_type: TransactionType = TransactionType.immediate,
                    allow_nested: bool = True):
        return RapportSQLiteTransaction(engine=self, transaction_type=transaction_type,
                                        allow_nested=allow_nested)

    def atomic(self, transaction_type: TransactionType = TransactionType.immediate):
        return super().atomic(transaction_type=transaction_type)

    async def get_connection(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(**self.connection_kwargs)
        connection.row_factory = dict_factory  # type: ignore[assignment]
        for pragma in _SQLITE_PRAGMAS:
            await connection.execute(pragma)
        await register_sqlite_functions(connection)
        return connection

    async def _shared_connection(self, role: str = "_shared") -> aiosqlite.Connection:
        """The kept connection for reads (``_shared``) or for writes outside transactions
        (``_writer``) of the running event loop."""
        loop = asyncio.get_running_loop()
        if self._shared_loop is loop and getattr(self, role) is not None:
            return getattr(self, role)
        if self._shared_loop is not loop:
            # A connection belongs to the loop that opened it (tests run one loop per test).
            self._shared, self._writer = None, None
            self._shared_loop, self._opening = loop, asyncio.Lock()
        async with self._opening:
            if getattr(self, role) is None:
                setattr(self, role, await self.get_connection())
        return getattr(self, role)

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table=None
    ):
        reads = query.lstrip()[:6].upper() in ("SELECT", "PRAGMA")
        connection = await self._shared_connection("_shared" if reads else "_writer")
        # One call on the connection's thread: executing and fetching separately would let
        # another task's statement run in between, while this one is still open. An open
        # SELECT pins a read snapshot, so a write from that other task then fails at once
        # with "database is locked" (SQLite cannot upgrade a stale snapshot, and does not
        # wait); an open UPDATE ... RETURNING would hold the write lock across awaits.
        return await connection.execute_fetchall(query, args or [])

    async def _run_in_existing_connection(
        self, connection, query: str, args: list[Any] | None = None,
        query_type: str = "generic", table=None,
    ):
        # Piccolo's own sends "PRAGMA foreign_keys = 1" before every statement of a
        # transaction, then executes and fetches: three trips to the connection's thread.
        # get_connection set the pragma once, and one trip runs and fetches (SQLite 3.35+
        # has RETURNING, which Piccolo's fallback for older versions was for).
        connection.row_factory = dict_factory
        return await connection.execute_fetchall(query, args or [])

    async def close(self) -> None:
        for connection in (self._shared, self._writer):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
        self._shared = self._writer = None
        self._shared_loop = None


class RapportPostgresEngine(PostgresEngine):
    """PostgreSQL whose transactions can run work after they commit (:func:`after_commit`)."""

    def transaction(self, allow_nested: bool = True):
        return RapportPostgresTransaction(engine=self, allow_nested=allow_nested)


def postgres_parameters(database_url: str) -> dict[str, Any]:
    """``asyncpg.connect`` arguments for a ``postgresql://`` URL, read as libpq reads it.

    The whole URL goes to asyncpg as the DSN, so its options (``sslmode``, ``sslrootcert``,
    ``sslcert``, ``sslkey``, ``sslcrl``, ``target_session_attrs``, ``application_name``, a
    ``host`` socket directory, ...) hold for every connection made with these arguments: the
    data connections and the live-updates connection (core.live) alike. Only what the URL leaves
    out entirely gets Rapport's defaults: host 127.0.0.1, user and database ``postgres``.
    """
    url = urlparse(database_url)
    options = parse_qs(url.query)
    parameters: dict[str, Any] = {"dsn": database_url.replace("postgres://", "postgresql://", 1)}
    if not url.hostname and "host" not in options:
        parameters["host"] = "127.0.0.1"
    if not url.username and "user" not in options:
        parameters["user"] = "postgres"
    if not (url.path or "/").lstrip("/") and not {"dbname", "database"} & set(options):
        parameters["database"] = "postgres"
    return parameters


def build_engine(database_url: str) -> Engine:
    """Return the engine for a ``sqlite:///path`` or ``postgresql://...`` URL."""
    url = urlparse(database_url)
    if url.scheme == "sqlite":
        # sqlite:///relative/file or sqlite:////absolute/file, as SQLAlchemy spells them.
        path = unquote(database_url[len("sqlite:///"):])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.environ.get("RAPPORT_SQLITE_STOCK_ENGINE") == "1":
            # Only for `make bench`: Piccolo's engine, a new connection per query, to compare.
            return SQLiteEngine(path=path, timeout=5.0)
        return RapportSQLiteEngine(path=path)
    if url.scheme in {"postgres", "postgresql"}:
        return RapportPostgresEngine(config=postgres_parameters(database_url))
    shown = database_url.replace(f":{url.password}@", ":***@") if url.password else database_url
    raise DatabaseError(
        f"RAPPORT_DATABASE_URL {shown!r}: {url.scheme or 'no'!s} scheme is not supported; use "
        "sqlite:///<path> or postgresql://<user>@<host>:<port>/<database>"
    )


def all_tables() -> list[type[Table]]:
    seen: list[type[Table]] = []
    stack = list(Table.__subclasses__())
    while stack:
        table = stack.pop()
        if table not in seen:
            seen.append(table)
            stack.extend(table.__subclasses__())
    return seen


def activate(engine: Engine) -> None:
    """Point every Piccolo table (and Piccolo's own migration machinery) at ``engine``.

    Piccolo keeps the engine on table classes and finds it for migrations through a
    ``piccolo_conf`` module; Rapport sets both, so one process serves one database at a time.
    """
    os.environ["PICCOLO_CONF"] = "core.piccolo_conf"
    import core.piccolo_conf as conf

    conf.DB = engine
    for table in all_tables():
        table._meta.db = engine


def connection_problem(engine: Engine, exc: BaseException) -> str:
    """One line saying why PostgreSQL refused us, and where we knocked (never the password)."""
    config = getattr(engine, "config", {}) or {}
    url = urlparse(config.get("dsn", ""))
    where = (f"{unquote(url.username or config.get('user', '') or '?')}@"
             f"{url.hostname or config.get('host', '?')}:{url.port or 5432}"
             f"/{unquote((url.path or '/').lstrip('/')) or config.get('database', '?')}")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = {
        "InvalidCatalogNameError": " (create the database, or correct its name in "
                                   "RAPPORT_DATABASE_URL)",
        "InvalidAuthorizationSpecificationError": " (create the role, or correct the user in "
                                                  "RAPPORT_DATABASE_URL)",
        "InvalidPasswordError": " (check the password in RAPPORT_DATABASE_URL)",
    }.get(type(exc).__name__, "")
    return f"cannot connect to PostgreSQL as {where}: {reason}{hint}"


async def connect(engine: Engine, *, pool_size: int = 10) -> None:
    if isinstance(engine, PostgresEngine):
        import asyncpg

        try:
            await engine.start_connection_pool(min_size=1, max_size=pool_size)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseError(connection_problem(engine, exc)) from exc


async def disconnect(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
    elif isinstance(engine, RapportSQLiteEngine):
        await engine.close()


async def applied_migrations() -> set[tuple[str, str]]:
    if not await Migration.table_exists().run():
        return set()
    rows = await Migration.select(Migration.app_name, Migration.name).run()
    return {(row["app_name"], row["name"]) for row in rows}


def _migration_ids(manager: ForwardsMigrationManager, app: AppConfig) -> list[str]:
    return sorted(manager.get_migration_modules(app.resolved_migrations_folder_path))


async def pending_migrations(apps: list[AppConfig]) -> list[tuple[str, str]]:
    done = await applied_migrations()
    pending = []
    for app in apps:
        manager = ForwardsMigrationManager(app_name=app.app_name)
        for migration_id in _migration_ids(manager, app):
            if (app.app_name, migration_id) not in done:
                pending.append((app.app_name, migration_id))
    return pending


async def migrate(apps: list[AppConfig]) -> list[tuple[str, str]]:
    """Apply every pending migration of ``apps`` in the order given; return what ran.

    Idempotent: a second run applies nothing. Each migration runs in its own transaction.
    """
    pending = await pending_migrations(apps)
    manager = ForwardsMigrationManager(app_name="rapport")
    await manager.create_migration_table()
    for app in apps:
        if any(name == app.app_name for name, _ in pending):
            # Piccolo prints its progress; Rapport reports what ran in its own words.
            with contextlib.redirect_stdout(io.StringIO()):
                result = await ForwardsMigrationManager(app_name=app.app_name).run_migrations(app)
            if not result.success:
                raise DatabaseError(f"migrating {app.app_name} failed: {result.message}")
    return pending


async def ensure_migrated(apps: list[AppConfig]) -> None:
    """Refuse to serve an unmigrated database: tables are never created implicitly."""
    try:
        pending = await pending_migrations(apps)
    except (sqlite3.Error, OSError) as exc:
        raise DatabaseError(f"cannot open the database: {exc}") from exc
    if pending:
        names = ", ".join(f"{app}:{mid}" for app, mid in pending[:5])
        more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
        raise DatabaseError(
            f"the database is not migrated ({len(pending)} pending: {names}{more}). "
            "Run `rapport migrate` first."
        )
