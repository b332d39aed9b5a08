"""The testing kit for plugin authors: pytest fixtures giving a migrated Rapport with your
plugin enabled, and HTTP clients signed in as staff or as a portal customer.

Enable it in your project's ``tests/conftest.py``::

    pytest_plugins = ["core.testing"]

Your plugin is found through its own ``pyproject.toml`` (the ``[project.entry-points.rapport]``
table of the project pytest runs in), so its tests run without ``pip install -e .`` first. Every
test using the fixtures runs on SQLite, and on PostgreSQL too when
``RAPPORT_TEST_POSTGRES_URL`` is set (a scratch database per test, made from a migrated
template). See docs/plugin-authors.md.

Fixtures: ``rapport_plugins`` (override to choose the plugins), ``rapport_plugin_settings``,
``rapport_backend``, ``make_rapport``, ``rapport_app``, ``client``, ``staff_client``,
``portal_client``. Helpers: :func:`app_client`, :func:`connected`, :func:`make_user`,
:func:`sign_in`, :func:`make_customer`, :func:`make_portal_customer`, :func:`portal_sign_in`,
:func:`csrf_headers`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import tomllib
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from core import db
from core.app import Rapport
from core.settings import Settings

POSTGRES_URL_ENV = "RAPPORT_TEST_POSTGRES_URL"
STAFF_PASSWORD = "correct horse battery"
PORTAL_PASSWORD = "tea at four o'clock"
ENTRY_POINT_GROUP = "rapport"


# --- finding the plugin under test ----------------------------------------------------------


def project_plugins(root: Path) -> list[str]:
    """Register the plugins the project at ``root`` declares (its pyproject.toml's
    ``[project.entry-points.rapport]``) as installed; return their ids."""
    pyproject = root / "pyproject.toml"
    if not pyproject.exists():
        return []
    data = tomllib.loads(pyproject.read_text())
    declared = data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    from core.loader import add_development_plugin

    ids = []
    for value in declared.values():
        module = importlib.import_module(value.split(":")[0])
        add_development_plugin(module)
        ids.append(module.plugin.id)
    return ids


def pytest_configure(config: pytest.Config) -> None:
    config._rapport_project_plugins = project_plugins(Path(config.rootpath))
    _cheap_password_hashing()


def _cheap_password_hashing() -> None:
    """Argon2id at production strength costs ~80 ms a hash; tests use the cheapest profile."""
    from argon2 import PasswordHasher, profiles

    from core.identity import passwords

    passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)


# --- databases ------------------------------------------------------------------------------


class SQLiteBackend:
    """A migrated template file per plugin set, copied for each test."""

    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.templates: dict[tuple, Path] = {}

    async def fresh_url(self, key: tuple, migrate) -> str:
        if key not in self.templates:
            template = self.root / f"template-{uuid.uuid4().hex}.sqlite3"
            await migrate(f"sqlite:///{template}")
            template.touch()
            self.templates[key] = template
        target = self.root / f"db-{uuid.uuid4().hex}.sqlite3"
        shutil.copyfile(self.templates[key], target)
        return f"sqlite:///{target}"

    def close(self) -> None:
        pass


class PostgresBackend:
    """A migrated template database per plugin set; each test gets a copy, all dropped at the
    end of the session."""

    name = "postgres"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"rapport_kit_{uuid.uuid4().hex[:8]}"
        self.templates: dict[tuple, str] = {}
        self.created: list[str] = []

    def _url(self, database: str) -> str:
        return f"{self.admin_url.rsplit('/', 1)[0]}/{database}"

    async def _admin(self, *statements: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.admin_url)
        try:
            for sql in statements:
                await connection.execute(sql)
        finally:
            await connection.close()

    async def fresh_url(self, key: tuple, migrate) -> str:
        if key not in self.templates:
            name = f"{self.prefix}_tpl_{len(self.templates)}"
            self.created.append(name)
            await self._admin(f'CREATE DATABASE "{name}"')
            await migrate(self._url(name))
            self.templates[key] = name
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        self.created.append(name)
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.templates[key]}"')
        return self._url(name)

    def close(self) -> None:
        """Drop the session's databases in a detached process: each DROP DATABASE waits for
        a checkpoint (seconds on a busy disk), and nothing needs them gone before pytest
        exits."""
        if not self.created:
            return
        import subprocess
        import sys

        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _DROPPER, self.admin_url, *self.created],
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.created.clear()


_DROPPER = """
import asyncio, sys
import asyncpg

async def main(url, names):
    connection = await asyncpg.connect(url)
    try:
        # Copies first: a template cannot go while a copy of it is being made.
        for name in sorted(names, key=lambda n: "_tpl_" in n):
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


def _backend_names() -> list[str]:
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_URL_ENV) else ["sqlite"]


@pytest.fixture(scope="session")
def _rapport_backends(tmp_path_factory):
    backends: dict[str, Any] = {"sqlite": SQLiteBackend(tmp_path_factory.mktemp("rapport-db"))}
    if os.environ.get(POSTGRES_URL_ENV):
        backends["postgres"] = PostgresBackend(os.environ[POSTGRES_URL_ENV])
    yield backends
    for backend in backends.values():
        backend.close()


@pytest.fixture(params=_backend_names())
def rapport_backend(request, _rapport_backends):
    """The database a test runs on: every test runs once per configured backend."""
    return _rapport_backends[request.param]


# --- instances ------------------------------------------------------------------------------


@pytest.fixture
def rapport_plugins(pytestconfig) -> list[str]:
    """The plugin ids enabled in ``rapport_app``: by default the ones this project declares.
    Override it in your conftest.py to add plugins yours works with (what they require is
    enabled with them)."""
    return list(getattr(pytestconfig, "_rapport_project_plugins", []))


@pytest.fixture
def rapport_plugin_settings() -> dict[str, dict[str, Any]]:
    """``[plugins.<id>]`` settings for ``rapport_app``, e.g. ``{"my_plugin": {"x": 1}}``."""
    return {}


def settings_for_test(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    extra = {"worker": "off", **(overrides.pop("extra", None) or {})}
    values = dict(data_dir=data_dir, database_url=database_url,
                  plugins_toml=tmp_path / "plugins.toml", secure_cookies=False)
    values.update(overrides, extra=extra)
    return Settings(**values)


@pytest.fixture
async def make_rapport(rapport_backend, tmp_path):
    """``await make_rapport(["my_plugin"], {"my_plugin": {...}})``: a migrated instance with
    exactly those plugins (and what they require) on a database of its own."""

    async def factory(plugins=(), plugin_settings=None, **settings_overrides: Any) -> Rapport:
        plugins = list(plugins)

        async def migrate(url: str) -> None:
            await Rapport(settings_for_test(tmp_path, url), plugins=plugins,
                          plugin_settings=plugin_settings).migrate()

        url = await rapport_backend.fresh_url(tuple(sorted(plugins)), migrate)
        return Rapport(settings_for_test(tmp_path, url, **settings_overrides),
                       plugins=plugins, plugin_settings=plugin_settings)

    return factory


@pytest.fixture
async def rapport_app(make_rapport, rapport_plugins, rapport_plugin_settings) -> Rapport:
    """A migrated instance with ``rapport_plugins`` enabled (not yet running)."""
    return await make_rapport(rapport_plugins, rapport_plugin_settings)


@asynccontextmanager
async def connected(rapport: Rapport):
    """Use an instance's database outside a request (seeding, assertions)."""
    rapport.activate()
    await db.connect(rapport.engine, pool_size=2)
    try:
        yield rapport
    finally:
        await db.disconnect(rapport.engine)


@asynccontextmanager
async def _running_lifespan(app):
    """Run the app's lifespan in a task of its own (pytest-asyncio may finalise a fixture in
    another task, and anyio's cancel scopes must be left by the task that entered them)."""
    started, stop, failure = asyncio.Event(), asyncio.Event(), []

    async def run() -> None:
        try:
            async with app.lifespan():
                started.set()
                await stop.wait()
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            started.set()

    task = asyncio.create_task(run())
    await started.wait()
    if failure:
        await task
        raise failure[0]
    try:
        yield app
    finally:
        stop.set()
        await task
        if failure:
            raise failure[0]


@asynccontextmanager
async def app_client(instance: Rapport):
    """An httpx client on the running app, in the test's own event loop; ``client.rapport``
    is the instance. Its database is connected for the test's own queries too."""
    import httpx

    app = instance.asgi
    async with _running_lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://testserver.local") as client:
            client.rapport = instance
            yield client


@pytest.fixture
async def client(rapport_app):
    """An anonymous client on ``rapport_app``."""
    async with app_client(rapport_app) as c:
        yield c


# --- people ---------------------------------------------------------------------------------


async def csrf_headers(client) -> dict[str, str]:
    """The header a form post or htmx request must carry."""
    if "csrftoken" not in client.cookies:
        await client.get("/login")
    return {"x-csrftoken": client.cookies["csrftoken"]}


async def make_user(email: str, roles=("administrator",), teams=(), name: str | None = None) -> int:
    """Create a staff user with these roles (inside a running client); return the id."""
    from core.identity.tables import Team
    from core.identity.users import create_team, create_user

    for team in teams:
        if not await Team.exists().where(Team.name == team).run():
            await create_team(team)
    return await create_user(email, name or email.split("@")[0].title(), STAFF_PASSWORD,
                             roles=list(roles), teams=list(teams))


async def sign_in(client, email: str, password: str = STAFF_PASSWORD) -> None:
    response = await client.post(
        "/login", data={"email": email, "password": password, "next": "/"},
        headers=await csrf_headers(client), follow_redirects=False)
    assert response.status_code == 303, f"staff sign-in failed: {response.text[:500]}"


async def make_customer(name: str, owner: int | None = None, email: str = "") -> int:
    """Create a contact (audited, as the app would); return its id."""
    from core import records
    from core.customers.tables import Customer
    from core.permissions import Actor

    row = await records.create(Actor(kind="staff", id=None, name="test setup"), Customer, {
        "kind": "contact", "name": name, "owner": owner, "primary_email": email})
    return row["id"]


async def make_portal_customer(rapport: Rapport, name: str, email: str) -> int:
    """Create a contact with portal access (invited, invitation accepted); return its id."""
    from core import records
    from core.customers.tables import CustomerEmail
    from core.permissions import Actor
    from core.portal.identities import accept_invitation, invite

    customer_id = await make_customer(name, email=email)
    staff = Actor(kind="staff", id=None, name="test setup")
    await records.create(staff, CustomerEmail, {"customer": customer_id, "email": email})
    _, token = await invite(rapport, staff, customer_id, email)
    await accept_invitation(token, PORTAL_PASSWORD, PORTAL_PASSWORD)
    return customer_id


async def portal_sign_in(client, email: str, password: str = PORTAL_PASSWORD) -> None:
    response = await client.post("/portal/login", data={"email": email, "password": password},
                                 headers=await csrf_headers(client), follow_redirects=False)
    assert response.status_code == 303, f"portal sign-in failed: {response.text[:500]}"


@pytest.fixture
async def staff_client(rapport_app):
    """A client signed in as an administrator (``staff_client.user_id``). Sign in someone
    else with ``await make_user(...)`` and ``await sign_in(...)`` on ``client``."""
    async with app_client(rapport_app) as c:
        c.user_id = await make_user("admin@example.test")
        await sign_in(c, "admin@example.test")
        yield c


@pytest.fixture
async def portal_client(rapport_app):
    """A client signed in to the customer portal as Ada Lovelace (``portal_client.customer_id``)."""
    async with app_client(rapport_app) as c:
        c.customer_id = await make_portal_customer(rapport_app, "Ada Lovelace",
                                                   "ada@example.test")
        await portal_sign_in(c, "ada@example.test")
        yield c
