"""Fixtures for the field app's browser tests: a real server in a subprocess (the service
worker, caches and IndexedDB need a real origin) and Debian's Chromium through Playwright."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from core import db
from core.app import Rapport
from core.settings import Settings

IN_CI = os.environ.get("CI") == "true"
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


class LiveServer:
    """``rapport serve`` on a free port with its own data directory and SQLite database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            RAPPORT_DATA_DIR=str(root / "data"),
            RAPPORT_DATABASE_URL=f"sqlite:///{root / 'rapport.sqlite3'}",
            RAPPORT_PLUGINS_TOML=str(root / "plugins.toml"),
            RAPPORT_INSECURE_COOKIES="1",
            RAPPORT_BASE_URL=f"http://127.0.0.1:{self.port}",
            RAPPORT_PUSH_ALLOW_HTTP="1",  # the test's push service listens on plain http
            RAPPORT_PUSH_POLL_SECONDS="0.5",
        )
        self.env.pop("RAPPORT_DEBUG", None)
        self.process: subprocess.Popen | None = None

    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def start(self) -> None:
        asyncio.run(Rapport(self.settings()).migrate())
        self.log = open(self.root / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "core.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text())
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start:\n" + (self.root / "server.log").read_text())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    @asynccontextmanager
    async def database(self):
        """The server's database, opened from the test (seeding users, checking results),
        with the server's plugins (its plugins.toml), so their tables are reachable too."""
        settings = dataclasses.replace(self.settings(), extra={"push_allow_http": "1"})
        rapport = Rapport(settings)
        rapport.activate()
        await db.connect(rapport.engine, pool_size=1)
        try:
            yield rapport
        finally:
            await db.disconnect(rapport.engine)

    def run(self, coroutine_function, *args):
        async def work():
            async with self.database() as rapport:
                return await coroutine_function(rapport, *args)

        # In a thread of its own: Playwright's sync API keeps an event loop in this one.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, work()).result()


@contextmanager
def serving(root: Path, plugins: list[str] | tuple[str, ...] = (), *, settings: str = "",
            demo_customers: int = 0):
    """A :class:`LiveServer` in ``root`` with ``plugins`` enabled (``settings``: more
    plugins.toml text, e.g. a ``[plugins.<id>]`` table) and, if asked, `rapport demo` data
    for that many customers (demo login admin@example.com); stopped afterwards."""
    toml = f"enabled = {json.dumps(list(plugins))}\n{settings}" if plugins else ""
    if toml:
        (root / "plugins.toml").write_text(toml)
    _copy_prepared(_prepared(toml, demo_customers), root)
    server = LiveServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _prepared(toml: str, demo_customers: int) -> Path:
    """A migrated database (and data folder), with the demo data asked for, made once per
    test run for each configuration and copied for each server: migrating and seeding
    took most of a browser test's time, again for every test file."""
    from tests.conftest import run_dir, run_lock, template_id

    source = run_dir() / f"served-{template_id((toml, demo_customers))}"
    with run_lock(source.name):
        if (source / ".ready").exists():
            return source
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir()
        if toml:
            (source / "plugins.toml").write_text(toml)
        prepared = LiveServer(source)
        asyncio.run(Rapport(prepared.settings()).migrate())
        if demo_customers:
            subprocess.run([str(Path(sys.executable).with_name("rapport")), "demo",
                            "--customers", str(demo_customers)], env=prepared.env, cwd=ROOT,
                           check=True, capture_output=True, timeout=180)
        (source / ".ready").touch()
    return source


def _copy_prepared(source: Path, root: Path) -> None:
    for database in source.glob("rapport.sqlite3*"):
        shutil.copyfile(database, root / database.name)
    if (source / "data").exists():
        shutil.copytree(source / "data", root / "data", dirs_exist_ok=True)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture
def chromium(tmp_path):
    """A persistent Chromium context (an ordinary context counts as incognito, where apps
    are not installable)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True,
            args=CHROMIUM_FLAGS,
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
