"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and app builders.

Every test gets its own database. Migrating is done once per plugin set into a template
(a SQLite file, or a PostgreSQL template database) and copied per test, so tests stay fast.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from core import db
from core.app import Rapport
from core.settings import Settings

POSTGRES_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI") == "true"


def _backends() -> list[str]:
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.templates: dict[tuple, Path] = {}

    async def fresh_url(self, key: tuple, migrate) -> str:
        if key not in self.templates:
            template = self.root / f"template-{len(self.templates)}.sqlite3"
            await migrate(f"sqlite:///{template}")
            template.touch()  # an unmigrated template is an empty database
            self.templates[key] = template
        target = self.root / f"db-{uuid.uuid4().hex}.sqlite3"
        shutil.copyfile(self.templates[key], target)
        return f"sqlite:///{target}"

    async def close(self) -> None:
        pass


class PostgresBackend:
    name = "postgres"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"rapport_test_{uuid.uuid4().hex[:8]}"
        self.templates: dict[tuple, str] = {}
        self.created: list[str] = []

    def _url(self, database: str) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{database}"

    async def _admin(self, sql: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def fresh_url(self, key: tuple, migrate) -> str:
        if key not in self.templates:
            name = f"{self.prefix}_tpl{len(self.templates)}"
            await self._admin(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            await migrate(self._url(name))
            self.templates[key] = name
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.templates[key]}"')
        self.created.append(name)
        return self._url(name)

    async def drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def close(self) -> None:
        for name in reversed(self.created):
            await self.drop(name)
        self.created.clear()


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory):
    return SQLiteBackend(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_backend():
    if not POSTGRES_URL:
        yield None
        return
    import asyncio

    backend = PostgresBackend(POSTGRES_URL)
    try:
        asyncio.run(backend._admin("SELECT 1"))
    except OSError as exc:
        message = f"RAPPORT_TEST_POSTGRES_URL={POSTGRES_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield backend
    asyncio.run(backend.close())


@pytest.fixture(params=_backends())
def backend(request, sqlite_backend, postgres_backend):
    """Each test using a database runs once per configured backend."""
    return sqlite_backend if request.param == "sqlite" else postgres_backend


def settings_for_test(tmp_path: Path, database_url: str, **overrides) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    values = dict(
        data_dir=data_dir,
        database_url=database_url,
        plugins_toml=tmp_path / "plugins.toml",
        secure_cookies=False,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def make_rapport(backend, tmp_path):
    """Build a migrated :class:`Rapport` with exactly the plugins named (and what they
    require): ``rapport = await make_rapport(["sales"], {"sales": {...}})``."""

    async def factory(plugins=(), plugin_settings=None, **settings_overrides) -> Rapport:
        plugins = list(plugins)
        key = tuple(sorted(plugins))

        async def migrate(url: str) -> None:
            template = Rapport(settings_for_test(tmp_path, url), plugins=plugins,
                               plugin_settings=plugin_settings)
            await template.migrate()

        url = await backend.fresh_url(key, migrate)
        return Rapport(
            settings_for_test(tmp_path, url, **settings_overrides),
            plugins=plugins,
            plugin_settings=plugin_settings,
        )

    return factory


@asynccontextmanager
async def connected(rapport: Rapport):
    """Use a Rapport's database outside a request (seeding, assertions)."""
    rapport.activate()
    await db.connect(rapport.engine, pool_size=2)
    try:
        yield rapport
    finally:
        await db.disconnect(rapport.engine)


@pytest.fixture
async def rapport(make_rapport):
    """A migrated instance with core only, connected to its database."""
    instance = await make_rapport()
    async with connected(instance):
        yield instance


@pytest.fixture
async def client(make_rapport):
    """An HTTP client on a core-only app (lifespan run, database connected)."""
    from litestar.testing import AsyncTestClient

    instance = await make_rapport()
    async with AsyncTestClient(app=instance.asgi, base_url="http://testserver.local") as c:
        c.rapport = instance
        yield c
