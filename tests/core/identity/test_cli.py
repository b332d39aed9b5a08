"""``rapport user create`` and ``rapport token create``, run as a self-hoster would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.identity.tables import ApiToken, User
from core.identity.tokens import token_hash
from tests.conftest import connected

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


@pytest.fixture
async def cli(make_rapport, tmp_path):
    """Run ``rapport ...`` in a subprocess against a migrated test database."""
    instance = await make_rapport()
    env = {**os.environ, "RAPPORT_DATA_DIR": str(instance.settings.data_dir),
           "RAPPORT_DATABASE_URL": instance.settings.database_url,
           "RAPPORT_PLUGINS_TOML": str(tmp_path / "plugins.toml")}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core.cli", *args], input=stdin, env=env,
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert run("migrate").returncode == 0
    run.rapport = instance
    return run


async def test_user_create_reads_the_password_from_stdin(cli):
    result = cli("user", "create", "Ada@Example.test", "--role", "manager", "--name", "Ada",
                 stdin="a long password\n")
    assert result.returncode == 0, result.stderr
    assert "Created user" in result.stdout
    async with connected(cli.rapport):
        user = await User.select(User.name, User.password_hash).where(
            User.email == "ada@example.test").first().run()
    assert user["name"] == "Ada" and "a long password" not in user["password_hash"]


async def test_user_create_with_unknown_role_lists_the_roles_and_fails(cli):
    result = cli("user", "create", "ada@example.test", "--role", "wizard", stdin="a long password\n")
    assert result.returncode != 0
    assert "unknown role 'wizard'" in result.stderr and "administrator" in result.stderr


async def test_user_create_refuses_a_short_password(cli):
    result = cli("user", "create", "ada@example.test", "--role", "manager", stdin="short\n")
    assert result.returncode != 0 and "at least 10 characters" in result.stderr


async def test_user_create_refuses_an_unknown_team(cli):
    result = cli("user", "create", "ada@example.test", "--role", "manager", "--team", "Mars",
                 stdin="a long password\n")
    assert result.returncode != 0 and "unknown team 'Mars'" in result.stderr


async def test_token_create_prints_a_working_token_alone_on_the_last_line(cli):
    cli("user", "create", "ada@example.test", "--role", "administrator", stdin="a long password\n")
    result = cli("token", "create", "--user", "ada@example.test", "--name", "backup",
                 "--scope", "*.view", "--expires-days", "30")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("rpt_") and " " not in token
    async with connected(cli.rapport):
        row = await ApiToken.select().where(ApiToken.token_hash == token_hash(token)).first().run()
    assert row["name"] == "backup" and row["expires_at"] is not None
    assert row["scopes"] == '["*.view"]'


async def test_token_create_for_unknown_user_fails_clearly(cli):
    result = cli("token", "create", "--user", "ghost@example.test")
    assert result.returncode != 0 and "no user with email ghost@example.test" in result.stderr
