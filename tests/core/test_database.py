"""The data layer: migrations, refusal to serve an unmigrated database, SQLite tuning."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core import db
from core.app import Rapport
from core.instance import InstanceSetting
from tests.conftest import connected, running_lifespan, settings_for_test


async def test_migrate_is_idempotent(backend, tmp_path):
    async def nothing(url):
        return None

    url = await backend.fresh_url(("unmigrated",), nothing)
    rapport = Rapport(settings_for_test(tmp_path, url), plugins=[])
    first = await rapport.migrate()
    assert ("core", first[0][1]) in first
    assert await rapport.migrate() == []


async def test_server_refuses_an_unmigrated_database(backend, tmp_path):
    async def nothing(url):
        return None

    url = await backend.fresh_url(("unmigrated",), nothing)
    rapport = Rapport(settings_for_test(tmp_path, url), plugins=[])
    with pytest.raises(BaseException) as caught:
        async with running_lifespan(rapport.asgi):
            pass
    errors = caught.value.exceptions if isinstance(caught.value, BaseExceptionGroup) else [caught.value]
    assert any(isinstance(e, db.DatabaseError) and "Run `rapport migrate` first" in str(e)
               for e in errors)


def test_serve_refuses_an_unmigrated_database_with_a_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_DATA_DIR": str(tmp_path / "data"),
           "RAPPORT_PLUGINS_TOML": str(tmp_path / "none.toml")}
    result = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--port", "1"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert "Run `rapport migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


async def test_rows_round_trip(rapport):
    await InstanceSetting.insert(InstanceSetting(key="brand.colour", value='"#1f4e79"')).run()
    rows = await InstanceSetting.select(InstanceSetting.value).where(
        InstanceSetting.key == "brand.colour").run()
    assert rows == [{"value": '"#1f4e79"'}]


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(make_rapport, backend):
    if backend.name != "sqlite":
        pytest.skip("SQLite tuning")
    rapport = await make_rapport()
    async with connected(rapport):
        mode = await rapport.engine._run_in_new_connection("PRAGMA journal_mode")
        fks = await rapport.engine._run_in_new_connection("PRAGMA foreign_keys")
        timeout = await rapport.engine._run_in_new_connection("PRAGMA busy_timeout")
    assert mode == [{"journal_mode": "wal"}]
    assert fks == [{"foreign_keys": 1}]
    assert timeout == [{"timeout": 30000}]


async def test_sqlite_reuses_one_connection_outside_transactions(make_rapport, backend):
    if backend.name != "sqlite":
        pytest.skip("SQLite connection reuse")
    rapport = await make_rapport()
    async with connected(rapport):
        await InstanceSetting.select().run()
        first = rapport.engine._shared
        await InstanceSetting.select().run()
        assert rapport.engine._shared is first is not None


async def test_concurrent_read_then_write_transactions_wait_instead_of_failing(make_rapport):
    """Two requests that each read a row and then write (the shape of most updates) at the
    same moment: both commit, on SQLite too, where deferred transactions would fail with
    "database is locked"."""
    import asyncio

    rapport = await make_rapport()
    async with connected(rapport):
        await InstanceSetting.insert(InstanceSetting(key="counter", value="0")).run()

        async def increment(n: int) -> None:
            async with InstanceSetting._meta.db.transaction():
                row = await InstanceSetting.select(InstanceSetting.value).where(
                    InstanceSetting.key == "counter").first().run()
                await asyncio.sleep(0.01)  # let the other transaction read meanwhile
                await InstanceSetting.update({InstanceSetting.value: str(int(row["value"]) + 1)}
                                             ).where(InstanceSetting.key == "counter").run()
                await InstanceSetting.insert(InstanceSetting(key=f"writer.{n}", value="1")).run()

        await asyncio.gather(*(increment(n) for n in range(5)))
        written = await InstanceSetting.count().where(InstanceSetting.key.like("writer.%")).run()
        assert written == 5
        if rapport.engine.__class__.__name__ == "RapportSQLiteEngine":
            # Immediate transactions serialise: no increment is lost either.
            final = await InstanceSetting.select(InstanceSetting.value).where(
                InstanceSetting.key == "counter").first().run()
            assert final["value"] == "5"
