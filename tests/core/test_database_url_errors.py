"""A wrong database URL (scheme, database name, role, port) is one clear line from
``rapport migrate``, ``check`` and ``serve``: no traceback, no password, a non-zero exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
POSTGRES_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL")


def rapport(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAPPORT_DATA_DIR": str(tmp_path / "data"),
           "RAPPORT_DATABASE_URL": url, "RAPPORT_PLUGINS_TOML": str(tmp_path / "plugins.toml")}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def assert_one_clear_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for text in expected:
        assert text in lines[0], lines[0]
    assert "s3cret" not in result.stderr + result.stdout


def _pg(user: str | None = None, database: str | None = None, port: int | None = None) -> str:
    url = urlparse(POSTGRES_URL)
    netloc = f"{user or url.username or 'postgres'}:s3cret@{url.hostname}:{port or url.port or 5432}"
    return f"postgresql://{netloc}/{database or url.path.lstrip('/')}"


@pytest.mark.parametrize("command", ["migrate", "check", "serve"])
def test_an_unknown_scheme_is_one_line(tmp_path, command):
    result = rapport(tmp_path, "mysql://app:s3cret@127.0.0.1/crm", command)
    assert_one_clear_line(result, "mysql scheme is not supported", "postgresql://")


needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="RAPPORT_TEST_POSTGRES_URL not set")


@needs_postgres
@pytest.mark.parametrize("command", ["migrate", "check", "serve"])
def test_a_database_that_does_not_exist_is_one_line(tmp_path, command):
    result = rapport(tmp_path, _pg(database="no_such_rapport_db"), command)
    assert_one_clear_line(result, '"no_such_rapport_db" does not exist', "create the database")


@needs_postgres
@pytest.mark.parametrize("command", ["migrate", "check", "serve"])
def test_a_role_that_does_not_exist_is_one_line(tmp_path, command):
    result = rapport(tmp_path, _pg(user="no_such_rapport_role"), command)
    assert_one_clear_line(result, '"no_such_rapport_role" does not exist', "create the role")


@needs_postgres
def test_nothing_listening_is_one_line(tmp_path):
    result = rapport(tmp_path, _pg(port=1), "migrate")
    assert_one_clear_line(result, "cannot connect to PostgreSQL")
