"""The bench plugin extension point: ``--plugins`` picks bench/plugins modules, enables their
Rapport plugins (with what they require) and runs their scenarios after the core ones."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import plugins as bench_plugins  # noqa: E402
from bench import run  # noqa: E402
from bench.scenarios import Request  # noqa: E402


def fake(plugin: str, scenarios) -> bench_plugins.BenchPlugin:
    return bench_plugins.BenchPlugin(name=plugin, plugin=plugin, seed=None,
                                     scenarios=scenarios, module=types.ModuleType(plugin))


def test_requested_plugins_are_enabled_with_their_requirements(monkeypatch):
    installed = {"a": types.SimpleNamespace(plugin=types.SimpleNamespace(requires=())),
                 "b": types.SimpleNamespace(plugin=types.SimpleNamespace(requires=("a",)))}
    monkeypatch.setattr("core.loader.installed_plugins", lambda: installed)
    monkeypatch.setattr(bench_plugins, "available", lambda: {"b": fake("b", [])})
    chosen, enabled = bench_plugins.select("b")
    assert enabled == ["a", "b"]
    assert [p.plugin for p in chosen] == ["b"]
    # The default: every bench plugin whose Rapport plugin is installed.
    assert bench_plugins.select(None)[1] == ["a", "b"]
    assert bench_plugins.select("none") == ([], [])
    with pytest.raises(SystemExit, match="'c' is not installed"):
        bench_plugins.select("c")


def test_plugin_scenarios_get_their_facts_and_skip_the_stock_engine():
    plugin = fake("sales", [("board", lambda seeded, facts: Request(f"/deals/{facts['deal']}"))])
    facts = {"sales": {"deal": 7}}
    kept = dict(run.scenario_list("kept", [plugin], facts))
    assert kept["sales: board"](None).path == "/deals/7"
    assert "contacts list" in kept
    assert "sales: board" in dict(run.scenario_list("pool", [plugin], facts))
    assert "sales: board" not in dict(run.scenario_list("stock", [plugin], facts))


def test_generated_plugins_toml_enables_the_plugins(tmp_path):
    env = run.base_env(tmp_path, "sqlite:///x", ["sales", "service"])
    assert Path(env["RAPPORT_PLUGINS_TOML"]).read_text() == 'enabled = ["sales", "service"]\n'
