"""libpq options in RAPPORT_DATABASE_URL (sslmode, sslrootcert, ...) hold the same way for the
data connections (migrate, check, every request) and the live-updates connection, against a
PostgreSQL the test starts that accepts TLS connections only."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core import db
from core.app import Rapport
from tests.conftest import settings_for_test

ROOT = Path(__file__).resolve().parents[2]


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-new", "-x509", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-out", str(crt), "-keyout", str(key)],
                   check=True, capture_output=True)
    return crt, key


@pytest.fixture(scope="module")
def tls_postgres():
    """(admin URL without sslmode, CA certificate, another CA's certificate) of a throwaway
    PostgreSQL cluster whose pg_hba.conf has only ``hostssl`` lines."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl and shutil.which("openssl")):
        pytest.skip("PostgreSQL server binaries or openssl not installed")
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="rapport-tls-"))
    data = base / "data"
    certs = base / "certs"
    certs.mkdir()
    crt, key = _self_signed(certs, "server")
    other_crt, _ = _self_signed(certs, "other")
    if as_root:
        shutil.chown(base, "postgres")
    port = _free_port()
    try:
        subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot create a PostgreSQL cluster here: {exc}")
    for source, target in ((crt, "server.crt"), (key, "server.key")):
        shutil.copy(source, data / target)
        os.chmod(data / target, 0o600)
        if as_root:
            shutil.chown(data / target, "postgres")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                   f"unix_socket_directories = '{base}'\nssl = on\n"
                   "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                   "fsync = off\n")
    (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 trust\n")
    if as_root:
        shutil.chown(data / "pg_hba.conf", "postgres")
    log = base / "server.log"
    started = subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(log), "-w", "start"],
                             capture_output=True, text=True)
    if started.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"TLS PostgreSQL did not start: {started.stderr or started.stdout}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}", certs / "server.crt", other_crt
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database(tls_postgres, tmp_path):
    """A fresh database on the TLS cluster; yields its URL without options."""
    base, _, _ = tls_postgres
    name = f"rapport_tls_{os.urandom(4).hex()}"

    async def admin(sql: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(f"{base}/postgres?sslmode=require")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def rapport_cli(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAPPORT_DATA_DIR": str(tmp_path / "data"), "RAPPORT_DATABASE_URL": url,
           "RAPPORT_PLUGINS_TOML": str(tmp_path / "plugins.toml")}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def test_the_cluster_refuses_connections_without_tls(database, tmp_path):
    result = rapport_cli(tmp_path, f"{database}?sslmode=disable", "migrate")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no encryption" in result.stderr or "pg_hba.conf" in result.stderr


def test_migrate_and_check_connect_with_tls_when_the_url_asks(database, tmp_path):
    url = f"{database}?sslmode=require"
    migrated = rapport_cli(tmp_path, url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    checked = rapport_cli(tmp_path, url, "check")
    # No administrator yet is the only finding; the database part passed over TLS.
    assert "database: ok" in checked.stdout, checked.stdout + checked.stderr


async def test_every_data_connection_and_the_live_connection_use_tls(database, tmp_path):
    from core.live import _backend_factory

    url = f"{database}?sslmode=require"
    rapport = Rapport(settings_for_test(tmp_path, url))
    await rapport.migrate()
    rapport.activate()
    await db.connect(rapport.engine, pool_size=2)
    try:
        from piccolo.table import Table

        class Probe(Table, tablename="core_user"):
            pass

        Probe._meta.db = rapport.engine
        rows = await Probe.raw("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").run()
        assert rows == [{"ssl": True}]
    finally:
        await db.disconnect(rapport.engine)
    backend = _backend_factory(rapport)[0]()  # the link's PostgreSQL connection itself
    received: list[bytes] = []
    await backend.on_startup()
    try:
        await backend.subscribe(["rapport_tls_probe"])
        await backend.publish(b"hello", ["rapport_tls_probe"])

        async def first() -> None:
            async for _, message in backend.stream_events():
                received.append(message)
                return

        await asyncio.wait_for(first(), timeout=10)
        ssl_in_use = await backend._listener_conn.fetchval(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        with contextlib.suppress(Exception):
            await backend.on_shutdown()
    assert received == [b"hello"] and ssl_in_use is True


async def test_sslrootcert_is_honoured(tls_postgres, database, tmp_path):
    _, ca, other_ca = tls_postgres
    trusted = Rapport(settings_for_test(tmp_path, f"{database}?sslmode=verify-ca&sslrootcert={ca}"))
    await db.connect(trusted.engine, pool_size=1)
    await db.disconnect(trusted.engine)
    untrusted = Rapport(settings_for_test(
        tmp_path, f"{database}?sslmode=verify-ca&sslrootcert={other_ca}"))
    with pytest.raises(db.DatabaseError, match="cannot connect to PostgreSQL"):
        await db.connect(untrusted.engine, pool_size=1)
