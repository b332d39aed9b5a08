"""What a self-hoster sees when plugins.toml or a plugin is wrong: a clear message, no traceback."""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import dataclass

import pytest

from core.loader import PluginError, load_plugins, new_plugin_manager, resolve_order
from core.plugin import Plugin, hookimpl


def fake_plugin(pid: str, requires=(), **attrs) -> types.ModuleType:
    module = types.ModuleType(f"fake_{pid}")
    module.plugin = Plugin(id=pid, name=pid.title(), version="1.0", requires=requires)
    for name, value in attrs.items():
        setattr(module, name, value)
    return module


def load(installed, enabled, settings=None, include_requirements=False):
    return load_plugins(new_plugin_manager(), [], enabled, settings or {},
                        include_requirements=include_requirements, installed=installed)


def test_enabled_plugin_not_installed_lists_installed_plugins():
    installed = {"sales": fake_plugin("sales"), "service": fake_plugin("service")}
    with pytest.raises(PluginError, match=r"not installed: loyalty\. Installed plugins: sales, service"):
        load(installed, ["loyalty"])


def test_requirement_must_be_enabled_by_the_self_hoster():
    installed = {"sales": fake_plugin("sales"), "quotes": fake_plugin("quotes", requires=("sales",))}
    with pytest.raises(PluginError, match=r"'quotes' requires 'sales': add 'sales' to `enabled`"):
        load(installed, ["quotes"])


def test_requirement_that_is_not_installed_is_named():
    installed = {"quotes": fake_plugin("quotes", requires=("sales",))}
    with pytest.raises(PluginError, match=r"'quotes' requires 'sales', which is not installed"):
        load(installed, ["quotes"])


def test_cycle_is_reported_with_its_members():
    installed = {"a": fake_plugin("a", requires=("b",)), "b": fake_plugin("b", requires=("a",))}
    with pytest.raises(PluginError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        load(installed, ["a", "b"])


def test_load_order_puts_requirements_first():
    installed = {
        "configurator": fake_plugin("configurator", requires=("sales",)),
        "sales": fake_plugin("sales"),
        "loyalty": fake_plugin("loyalty", requires=("sales", "configurator")),
    }
    order = resolve_order(["loyalty", "configurator", "sales"], installed, include_requirements=False)
    assert order.index("sales") < order.index("configurator") < order.index("loyalty")


def test_tests_may_pull_in_requirements():
    installed = {"sales": fake_plugin("sales"), "quotes": fake_plugin("quotes", requires=("sales",))}
    loaded = load(installed, ["quotes"], include_requirements=True)
    assert [p.meta.id for p in loaded] == ["sales", "quotes"]


@dataclass
class SalesSettings:
    stale_after_days: int = 30
    currency: str = "EUR"
    api_key: str | None = None


def sales_with_settings():
    @hookimpl
    def register_settings():
        return SalesSettings

    return fake_plugin("sales", register_settings=register_settings)


def test_settings_are_validated_and_defaulted():
    loaded = load({"sales": sales_with_settings()}, ["sales"], {"sales": {"stale_after_days": 14}})
    assert loaded[0].settings == SalesSettings(stale_after_days=14)


def test_unknown_setting_is_named_with_the_known_ones():
    with pytest.raises(PluginError, match=r"\[plugins\.sales\]: unknown setting 'stale_days'; "
                                          r"known settings: api_key, currency, stale_after_days"):
        load({"sales": sales_with_settings()}, ["sales"], {"sales": {"stale_days": 3}})


def test_ill_typed_setting_says_what_was_expected():
    with pytest.raises(PluginError, match=r"'stale_after_days' must be an integer, got '14'"):
        load({"sales": sales_with_settings()}, ["sales"], {"sales": {"stale_after_days": "14"}})


def test_secret_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SALES_KEY", "s3cret")
    loaded = load({"sales": sales_with_settings()}, ["sales"], {"sales": {"api_key": "${SALES_KEY}"}})
    assert loaded[0].settings.api_key == "s3cret"
    monkeypatch.delenv("SALES_KEY")
    with pytest.raises(PluginError, match=r"'api_key' reads \$\{SALES_KEY\}, which is not set"):
        load({"sales": sales_with_settings()}, ["sales"], {"sales": {"api_key": "${SALES_KEY}"}})


def test_settings_for_a_plugin_that_is_not_enabled_are_refused():
    with pytest.raises(PluginError, match=r"settings for 'sales', which is not enabled"):
        load({"sales": sales_with_settings()}, [], {"sales": {}})


def test_misspelled_hook_implementation_is_caught():
    @hookimpl
    def register_route():  # should be register_routes
        return []

    with pytest.raises(PluginError, match=r"register_route.*misspelled"):
        load({"sales": fake_plugin("sales", register_route=register_route)}, ["sales"])


def run_cli(tmp_path, *args, toml: str):
    (tmp_path / "plugins.toml").write_text(toml)
    env = {
        "PATH": "/usr/bin:/bin",
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
        "RAPPORT_PLUGINS_TOML": str(tmp_path / "plugins.toml"),
    }
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)


def test_cli_reports_plugin_errors_without_a_traceback(tmp_path):
    result = run_cli(tmp_path, "check", toml='enabled = ["no_such_plugin"]\n')
    assert result.returncode != 0
    assert "not installed: no_such_plugin" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_reports_bad_toml_without_a_traceback(tmp_path):
    result = run_cli(tmp_path, "check", toml="enabled = [\n")
    assert result.returncode != 0
    assert "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
