"""Schemathesis over the whole OpenAPI document (issue 17, item 9): with an administrator's
token and a read-only token, on each database, no generated request (boundary values, wrong
types, NUL bytes, huge numbers, bodies the schemas allow and refuse) gets a server error or
an answer the document does not declare (status code or content type).

A bounded budget keeps it to about half a minute per run: a fixed number of examples per
operation and a time limit, with a fixed seed so a failure can be replayed."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import connected

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ["sales", "service", "loyalty", "configurator"]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _seed(rapport) -> dict[str, str]:
    from core.identity.tokens import create_token
    from core.identity.users import create_user

    async with connected(rapport):
        await rapport.acollect("seed_demo_data", rapport=rapport, customers=5)
        admin = await create_user("fuzz-admin@example.test", "Admin", "correct horse battery",
                                  roles=["administrator"])
        reader = await create_user("fuzz-reader@example.test", "Reader",
                                   "correct horse battery", roles=["read_only"])
        return {"administrator": (await create_token(rapport, admin))[0],
                "read-only": (await create_token(rapport, reader))[0]}


async def _serve(rapport, port: int) -> subprocess.Popen:
    settings = rapport.settings
    toml = settings.data_dir / "fuzz-plugins.toml"
    toml.write_text(f"enabled = {PLUGINS!r}\n".replace("'", '"'))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAPPORT_DATA_DIR": str(settings.data_dir),
           "RAPPORT_DATABASE_URL": settings.database_url, "RAPPORT_PLUGINS_TOML": str(toml),
           "RAPPORT_INSECURE_COOKIES": "1", "RAPPORT_WORKER": "off"}
    env.pop("RAPPORT_REDIS_URL", None)
    log = open(settings.data_dir / "server.log", "wb")  # noqa: SIM115 (closed with the process)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "core.app:create_app", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        await asyncio.sleep(0.25)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                break
    server.kill()
    pytest.fail("the server did not start:\n" + (settings.data_dir / "server.log").read_text())


@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is in the test extras")
async def test_fuzzing_the_whole_api_finds_no_server_error_or_undeclared_answer(
        make_rapport, backend):
    rapport = await make_rapport(PLUGINS)
    tokens = await _seed(rapport)
    port = _free_port()
    server = await _serve(rapport, port)
    failures = []
    try:
        for who, token in tokens.items():
            run = await asyncio.to_thread(subprocess.run, [
                str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/schema/openapi.json",
                "-H", f"Authorization: Bearer {token}", "--checks", CHECKS,
                "--phases", "coverage,fuzzing", "--max-examples", "4", "--max-time", "15",
                "--workers", "1", "--seed", "17", "--no-shrink", "--request-timeout", "20",
                "--max-failures", "20", "--warnings", "off", "--output-truncate", "true",
            ], capture_output=True, text=True, timeout=240, cwd=rapport.settings.data_dir)
            if run.returncode != 0:
                failures.append(f"--- as {who} ---\n{run.stdout[-6000:]}{run.stderr[-2000:]}")
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not failures, "\n".join(failures)
