"""`rapport jobs`: the health line monitoring reads (exit 1 on trouble), list and cancel."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from core import jobs
from core.jobs_tables import JobRow
from tests.conftest import connected

ROOT = Path(__file__).resolve().parents[3]


def rapport_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from core.cli import main; main()", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


async def test_jobs_health_list_and_cancel_from_the_command_line(make_rapport, tmp_path):
    instance = await make_rapport()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env.update(RAPPORT_DATABASE_URL=instance.settings.database_url,
               RAPPORT_DATA_DIR=str(tmp_path / "data"),
               RAPPORT_PLUGINS_TOML=str(tmp_path / "plugins.toml"))
    healthy = rapport_command(env, "jobs", "health")
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith("OK: ") and "none waiting" in healthy.stdout

    async with connected(instance):
        job_id = await jobs.enqueue(instance, "core.jobs.purge", {})
        await JobRow.update({JobRow.run_at: jobs.utcnow() - timedelta(hours=1)}).where(
            JobRow.id == job_id).run()
    late = rapport_command(env, "jobs", "health", "--max-wait", "600")
    assert late.returncode == 1 and late.stdout.startswith("PROBLEM: ")
    assert "oldest waiting 36" in late.stdout  # about 3,600 seconds

    listed = rapport_command(env, "jobs", "list", "waiting")
    assert "core.jobs.purge" in listed.stdout
    cancelled = rapport_command(env, "jobs", "cancel", str(job_id))
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    again = rapport_command(env, "jobs", "cancel", str(job_id))
    assert again.returncode == 1 and "not waiting or running" in again.stderr
