"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and app builders.

Every test gets its own database. Migrating is done once per plugin set and test run into a
template (a SQLite file, or a PostgreSQL template database) shared by the xdist workers, and
copied per test, so tests stay fast.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from core import db
from core.app import Rapport
from core.settings import Settings

POSTGRES_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI") == "true"


def _cheap_password_hashing() -> None:
    """Argon2id at the strength Rapport uses (RFC 9106: 64 MiB, 3 passes) costs ~80 ms per
    hash, and most tests hash and verify a password or two; in tests they use argon2-cffi's
    cheapest profile instead (still Argon2id). The real parameters are checked by
    tests/core/identity/test_passwords.py against ``PRODUCTION_HASHER``."""
    from argon2 import PasswordHasher, profiles

    from core.identity import passwords

    global PRODUCTION_HASHER
    PRODUCTION_HASHER = passwords._hasher
    passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)


PRODUCTION_HASHER = None


def _remember_parsed_signatures() -> None:
    """Tests build a new Litestar app for almost every test (one per Rapport instance), and
    Litestar parses each of the ~700 route handlers' signatures again for every app: over
    half of a typical test's CPU time. Parsing depends only on the function and the names
    it is resolved against, so the result is remembered per (function, namespace) for the
    whole test process; what the app does with it is unchanged."""
    from litestar.utils.signature import ParsedSignature

    parse = ParsedSignature.from_fn.__func__
    parsed: dict = {}

    def from_fn(cls, fn, signature_namespace):
        try:
            key = (cls, fn, tuple(sorted((name, id(value))
                                          for name, value in signature_namespace.items())))
            hash(key)
        except TypeError:  # an unhashable callable: parse it as Litestar would
            return parse(cls, fn, signature_namespace)
        if key not in parsed:
            parsed[key] = parse(cls, fn, signature_namespace)
        return parsed[key]

    ParsedSignature.from_fn = classmethod(from_fn)


# A folder for the whole test run (every xdist worker sees it): the migrated templates, their
# locks, and the list of PostgreSQL databases to drop when the run ends.
SHARED_ENV = "RAPPORT_TEST_RUN_DIR"


def pytest_configure(config):
    """Install the example third-party plugin (docs/examples/) before xdist starts workers:
    a process started before a pip install sees the new entry point but cannot import it.
    The run's shared folder is made here too, before the workers start, so they inherit it."""
    _cheap_password_hashing()
    _remember_parsed_signatures()
    if not hasattr(config, "workerinput"):
        if not os.environ.get(SHARED_ENV):
            os.environ[SHARED_ENV] = tempfile.mkdtemp(prefix="rapport-tests-")
            config._rapport_run_dir = Path(os.environ[SHARED_ENV])
        from tests.core.test_example_plugin import ensure_example_plugin_installed

        try:
            ensure_example_plugin_installed()
        except Exception as exc:  # reported by tests/core/test_example_plugin.py itself
            print(f"could not install the example plugin: {exc}")


def pytest_unconfigure(config):
    """After the last worker: drop the run's PostgreSQL databases in a detached process.
    Each DROP DATABASE waits for a checkpoint (seconds each on a busy disk); waiting for
    hundreds of them added minutes to every run, and nothing needs them gone before exit."""
    run_dir = getattr(config, "_rapport_run_dir", None)
    if run_dir is None:
        return
    names: list[str] = []
    for listing in run_dir.glob("drop-*.txt"):
        names += listing.read_text().split()
    shutil.rmtree(run_dir, ignore_errors=True)
    os.environ.pop(SHARED_ENV, None)
    if names and POSTGRES_URL:
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _DROPPER, POSTGRES_URL, *names], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_DROPPER = """
import asyncio, sys
import asyncpg

async def main(url, names):
    gate = asyncio.Semaphore(4)
    async def drop(name):
        async with gate:
            connection = await asyncpg.connect(url)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close()
    # Test databases first: a template cannot go while a copy of it is being made.
    tests = [n for n in names if "_tpl_" not in n]
    await asyncio.gather(*(drop(n) for n in tests), return_exceptions=True)
    await asyncio.gather(*(drop(n) for n in names if n not in tests), return_exceptions=True)

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


def run_dir() -> Path:
    """The test run's shared folder (made by the first process if it was not started by
    pytest_configure, e.g. when a test module is imported on its own)."""
    if not os.environ.get(SHARED_ENV):
        os.environ[SHARED_ENV] = tempfile.mkdtemp(prefix="rapport-tests-")
    path = Path(os.environ[SHARED_ENV])
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def run_lock(name: str):
    """An exclusive lock shared by the run's worker processes (blocking: the worker has
    nothing else to do while another one migrates the template it needs)."""
    with open(run_dir() / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def template_id(key: tuple) -> str:
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]


def _backends() -> list[str]:
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.templates: dict[tuple, Path] = {}

    async def fresh_url(self, key: tuple, migrate) -> str:
        if key not in self.templates:
            template = run_dir() / f"sqlite-{template_id(key)}.sqlite3"
            with run_lock(template.name):
                if not template.exists():  # else another worker migrated it already
                    scratch = self.root / f"migrating-{uuid.uuid4().hex}.sqlite3"
                    await migrate(f"sqlite:///{scratch}")
                    scratch.touch()  # an unmigrated template is an empty database
                    shutil.move(scratch, template)
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
        # Templates are the run's, named alike in every worker: one migration per plugin set.
        self.run = hashlib.sha256(str(run_dir()).encode()).hexdigest()[:8]
        self.templates: dict[tuple, str] = {}
        self.created: list[str] = []

    def _url(self, database: str) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{database}"

    async def _admin(self, *statements: str):
        import asyncpg

        connection = await asyncpg.connect(self.admin_url)
        try:
            result = None
            for sql in statements:
                result = await connection.fetch(sql)
            return result
        finally:
            await connection.close()

    async def _create(self, name: str, template: str | None = None) -> None:
        # Test databases need no durability: a commit need not wait for its WAL flush.
        self.created.append(name)
        await self._admin(
            f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""),
            f'ALTER DATABASE "{name}" SET synchronous_commit = off')

    async def fresh_url(self, key: tuple, migrate) -> str:
        if key not in self.templates:
            name = f"rapport_test_{self.run}_tpl_{template_id(key)}"
            ready = run_dir() / f"{name}.ready"
            with run_lock(name):
                if not ready.exists():  # else another worker migrated it already
                    await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await self._create(name)
                    await migrate(self._url(name))
                    ready.touch()
            self.templates[key] = name
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        await self._create(name, self.templates[key])
        return self._url(name)

    async def drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Leave the databases to be dropped when the whole run ends (pytest_unconfigure)."""
        if self.created:
            (run_dir() / f"drop-{uuid.uuid4().hex}.txt").write_text("\n".join(self.created))
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
    backend.close()


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
    # No job worker inside test apps unless a test asks for one (extra={"worker": "on"}):
    # a worker polling the database in the background makes query counts vary and can hold
    # SQLite's lock. Tests drive jobs with ``await jobs.run_pending(rapport)``.
    extra = {"worker": "off", **(overrides.pop("extra", None) or {})}
    values.update(overrides, extra=extra)
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


@asynccontextmanager
async def app_client(instance: Rapport):
    """An HTTP client running the app in the test's own event loop (Litestar's test client
    runs it in another thread, where a PostgreSQL pool made by the app cannot be shared with
    the test's own queries)."""
    import httpx

    app = instance.asgi
    async with running_lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            c.rapport = instance
            yield c


@asynccontextmanager
async def running_lifespan(app):
    """Run the app's lifespan in a task of its own: pytest-asyncio may finalise a fixture in
    another task, and anyio's cancel scopes must be left by the task that entered them."""
    import asyncio

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


@pytest.fixture
async def client(make_rapport):
    """An HTTP client on a core-only app (lifespan run, database connected)."""
    instance = await make_rapport()
    async with app_client(instance) as c:
        yield c


# --- signed-in clients ---------------------------------------------------------------------

DEMO_PASSWORD = "correct horse battery"


async def make_user(email: str, roles=("administrator",), teams=(), name: str | None = None) -> int:
    """Create a staff user (the app's database must be active, e.g. inside a client)."""
    from core.identity.tables import Team
    from core.identity.users import create_team, create_user

    for team in teams:
        if not await Team.exists().where(Team.name == team).run():
            await create_team(team)
    return await create_user(email, name or email.split("@")[0].title(), DEMO_PASSWORD,
                             roles=list(roles), teams=list(teams))


async def csrf_headers(client) -> dict[str, str]:
    """The CSRF header a form or htmx request must carry (the cookie is set by any GET)."""
    if "csrftoken" not in client.cookies:
        await client.get("/login")
    return {"x-csrftoken": client.cookies["csrftoken"]}


async def sign_in(client, email: str, password: str = DEMO_PASSWORD):
    response = await client.post(
        "/login", data={"email": email, "password": password, "next": "/"},
        headers=await csrf_headers(client), follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response


@pytest.fixture
async def admin_client(client):
    """A client signed in as an administrator (``client.user_id`` is the user's id)."""
    client.user_id = await make_user("admin@example.test")
    await sign_in(client, "admin@example.test")
    return client
