"""The benchmark model (bench/plugins/configurator.py) is the size the issue asks for and a
valid model, so the benchmark measures what it says."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def test_benchmark_model_has_the_issues_size_and_is_accepted():
    from bench.plugins.configurator import SCENARIOS, benchmark_model
    from plugins.configurator import models

    definition = models.check_definition(benchmark_model(), name="Bench", code="BENCH")
    attributes = definition["attributes"]
    assert len(attributes) == 50
    assert sum(len(a.get("options", [])) for a in attributes) == 500
    rules = definition["rules"]
    assert len(rules) == 201  # 200 rules and the table
    assert sum(r["kind"] == "formula" for r in rules) >= 40
    assert len(next(r for r in rules if r["kind"] == "table")["rows"]) == 2000
    assert [name for name, _ in SCENARIOS]
