"""`rapport plugin new`: the scaffold writes a plugin package whose own tests pass with the
testing kit (core.testing), run as its author would run them, without installing it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner

from core.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def new_plugin(*args: str):
    return CliRunner().invoke(cli, ["plugin", "new", *args], catch_exceptions=False)


def test_bad_names_and_used_folders_are_refused_with_a_reason(tmp_path):
    for bad in ("Visit-Log", "2notes", "class", "with space"):
        done = new_plugin(bad, "--dir", str(tmp_path / "x"))
        assert done.exit_code != 0 and "is not a valid plugin id" in done.output, bad
    taken = new_plugin("sales", "--dir", str(tmp_path / "x"))  # a built-in plugin's id
    assert taken.exit_code != 0 and "already installed" in taken.output
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    used = new_plugin("visit_log", "--dir", str(tmp_path / "used"))
    assert used.exit_code != 0 and "is not empty" in used.output
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "x").exists()


def test_a_new_plugin_is_a_package_whose_own_tests_pass(tmp_path):
    target = tmp_path / "rapport-visit-log"
    done = new_plugin("visit_log", "--dir", str(target))
    assert done.exit_code == 0, done.output
    assert "Created plugin 'visit_log'" in done.output

    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "rapport-visit-log"
    assert project["project"]["entry-points"]["rapport"] == {
        "visit_log": "rapport_visit_log.plugin"}
    package = target / "rapport_visit_log"
    assert [p.name for p in (package / "piccolo_migrations").glob("visit_log_*.py")]
    template = package / "templates" / "visit_log" / "entries.html"
    assert template.read_text().startswith('{% extends "base.html" %}')
    for module in ("plugin", "tables", "entries", "entries_web", "entries_api"):
        assert (package / f"{module}.py").exists(), module

    # Its tests, as the author runs them: pytest in the project folder, with Rapport importable
    # and the plugin found through its pyproject.toml (no pip install). SQLite for every test;
    # with PostgreSQL configured, one test runs there too (the kit's other backend).
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RAPPORT_DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-k", "sqlite or test_staff_add_an_entry_and_see_it_listed"],
        cwd=target, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
