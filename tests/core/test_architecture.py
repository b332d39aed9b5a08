"""The layers stay honest: import-linter checks the contracts in pyproject.toml
([tool.importlinter]), so core can never start depending on a plugin."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, config: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(LINT_IMPORTS), "--no-cache", "--no-logo"]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_core_never_imports_a_plugin():
    done = lint_imports(ROOT)
    assert done.returncode == 0, (
        "an import breaks an architecture contract in pyproject.toml [tool.importlinter]:\n"
        + done.stdout + done.stderr
    )
    assert "Core never imports a plugin" in done.stdout and "KEPT" in done.stdout


def test_the_contracts_catch_core_importing_a_plugin_and_plugins_importing_each_other(tmp_path):
    """Planted violations fail the check, so a green run means something."""
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "app.py").write_text("from plugins.sales import plugin\n")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("")
    for name in ("sales", "service"):
        (tmp_path / "plugins" / name).mkdir()
        (tmp_path / "plugins" / name / "__init__.py").write_text("")
    (tmp_path / "plugins" / "sales" / "plugin.py").write_text("import core\n")
    (tmp_path / "plugins" / "service" / "plugin.py").write_text(
        "import core\nfrom plugins.sales import plugin\n")
    (tmp_path / "pwa").mkdir()
    (tmp_path / "pwa" / "__init__.py").write_text("import core\n")
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    config = tmp_path / "importlinter.toml"
    config.write_text(_as_toml(contracts))
    done = lint_imports(tmp_path, config)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "core.app -> plugins.sales" in done.stdout
    assert "plugins.service.plugin -> plugins.sales" in done.stdout


def _as_toml(section: dict) -> str:
    """Write [tool.importlinter] back out (tomllib cannot write, and only strings and lists of
    strings occur in it)."""

    def value(v) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {value(v)}" for k, v in section.items() if k != "contracts"]
    for contract in section.get("contracts", []):
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{k} = {value(v)}" for k, v in contract.items()]
    return "\n".join(lines) + "\n"
