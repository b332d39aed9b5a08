"""`make bench` keeps working: the harness runs end to end at a tiny scale (SQLite only, core
only, one second per scenario) and prints figures for the list query on both SQLite engines.
Plugins' bench modules are exercised by their own tests at small scale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_prints_figures_for_the_list_query_at_tiny_scale(tmp_path):
    env = dict(os.environ)
    env.pop("RAPPORT_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--customers", "300",
         "--interactions", "1500", "--seconds", "1", "--connections", "2",
         "--backends", "sqlite", "--plugins", "none", "--json", str(tmp_path / "results.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "bare JSON (ceiling)" in out
    assert "Rapport's SQLite engine (one kept connection per worker)" in out
    assert "Piccolo's stock SQLiteEngine (a new connection per query)" in out
    assert "SQLite 50-row indexed select:" in out and "req/s with Rapport's engine" in out
    import json

    rows = json.loads((tmp_path / "results.json").read_text())
    measured = [r for r in rows if "rps" in r]
    assert any(r["scenario"] == "50-row indexed select" and r["engine"] == "kept"
               for r in measured)
    assert all(r["errors"] == 0 for r in measured), measured
