"""Finding, ordering and configuring plugins.

Every way a self-hoster can get this wrong ends in a :class:`PluginError` whose message says
what to do; the CLI prints it and exits non-zero, never with a traceback.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from core import hookspecs
from core.plugin import PROJECT, Plugin

ENTRY_POINT_GROUP = "rapport"
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class PluginError(Exception):
    """A configuration problem a self-hoster must fix; the message says how."""


@dataclass(frozen=True)
class LoadedPlugin:
    meta: Plugin
    module: types.ModuleType
    settings: Any = None


# Plugins under development, added by the testing kit (core.testing) from the project's own
# pyproject.toml so an author's tests run without `pip install -e .` first.
_development_plugins: dict[str, types.ModuleType] = {}


def add_development_plugin(module: types.ModuleType) -> None:
    """Treat ``module`` (defining ``plugin = Plugin(...)``) as installed in this process."""
    meta = getattr(module, "plugin", None)
    if not isinstance(meta, Plugin):
        raise PluginError(f"{module.__name__} does not define `plugin = core.plugin.Plugin(...)`")
    _development_plugins[meta.id] = module


def installed_plugins() -> dict[str, types.ModuleType]:
    """Every plugin module installed in this environment, by plugin id (plus those a test
    run added with :func:`add_development_plugin`)."""
    found: dict[str, types.ModuleType] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = entry.load()
        except Exception as exc:  # a broken third-party package must not hide the others
            raise PluginError(
                f"plugin {entry.name!r} ({entry.value}) failed to import: {exc}"
            ) from exc
        meta = getattr(module, "plugin", None)
        if not isinstance(meta, Plugin):
            raise PluginError(
                f"entry point {entry.name!r} ({entry.value}) does not define "
                "`plugin = core.plugin.Plugin(...)`"
            )
        found[meta.id] = module
    found.update(_development_plugins)
    return found


def read_plugins_toml(path: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Return (enabled ids, settings by plugin id) from plugins.toml. A missing file enables
    nothing."""
    if not path.exists():
        return [], {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PluginError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"enabled", "plugins"}
    if unknown:
        raise PluginError(
            f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            "expected `enabled = [...]` and `[plugins.<id>]` tables"
        )
    enabled = data.get("enabled", [])
    if not isinstance(enabled, list) or not all(isinstance(x, str) for x in enabled):
        raise PluginError(f"{path}: `enabled` must be a list of plugin ids, e.g. [\"sales\"]")
    settings = data.get("plugins", {})
    if not isinstance(settings, dict):
        raise PluginError(f"{path}: `plugins` must be a table of `[plugins.<id>]` tables")
    return enabled, settings


def resolve_order(
    wanted: list[str], installed: dict[str, types.ModuleType], *, include_requirements: bool
) -> list[str]:
    """Return plugin ids in load order (requirements first).

    With ``include_requirements`` (used by tests), requirements of wanted plugins are pulled
    in; otherwise a requirement that is not enabled is an error, as a self-hoster should
    choose it knowingly.
    """
    missing = [pid for pid in wanted if pid not in installed]
    if missing:
        have = ", ".join(sorted(installed)) or "none"
        raise PluginError(
            f"plugin(s) enabled but not installed: {', '.join(missing)}. Installed plugins: {have}"
        )
    graph: dict[str, tuple[str, ...]] = {}
    todo = list(dict.fromkeys(wanted))
    while todo:
        pid = todo.pop()
        if pid in graph:
            continue
        requires = installed[pid].plugin.requires
        graph[pid] = requires
        for req in requires:
            if req not in installed:
                raise PluginError(f"plugin {pid!r} requires {req!r}, which is not installed")
            if req not in wanted and not include_requirements:
                raise PluginError(
                    f"plugin {pid!r} requires {req!r}: add {req!r} to `enabled` in plugins.toml"
                )
            todo.append(req)
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise PluginError(f"plugins require each other in a cycle: {cycle}") from exc


def validate_settings(plugin_id: str, schema: type | None, raw: dict[str, Any]) -> Any:
    """Build the plugin's settings object from its plugins.toml table, naming any bad key."""
    where = f"plugins.toml [plugins.{plugin_id}]"
    if schema is None:
        if raw:
            raise PluginError(f"{where}: plugin {plugin_id!r} takes no settings, got {sorted(raw)}")
        return None
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise PluginError(
            f"{where}: unknown setting {unknown[0]!r}; known settings: {', '.join(sorted(fields))}"
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        value = _from_environment(where, name, value)
        expected = hints[name]
        if not _matches(value, expected):
            raise PluginError(
                f"{where}: setting {name!r} must be {_describe(expected)}, got {value!r}"
            )
        values[name] = value
    try:
        return schema(**values)
    except TypeError as exc:  # a required setting is missing
        raise PluginError(f"{where}: {exc}") from exc
    except ValueError as exc:  # the schema's own __post_init__ checks
        raise PluginError(f"{where}: {exc}") from exc


def _from_environment(where: str, name: str, value: Any) -> Any:
    """`"${NAME}"` takes the value from the environment, so secrets stay out of the file."""
    if isinstance(value, str) and (match := _ENV_REF.match(value)):
        var = match.group(1)
        if var not in os.environ:
            raise PluginError(f"{where}: setting {name!r} reads ${{{var}}}, which is not set")
        return os.environ[var]
    return value


def _matches(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if origin in (list, tuple):
        args = typing.get_args(expected)
        inner = args[0] if args else Any
        return isinstance(value, list) and all(_matches(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _describe(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(expected))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(expected))
    if origin in (list, tuple):
        args = typing.get_args(expected)
        return f"a list of {_describe(args[0])}" if args else "a list"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a table", type(None): "absent"}
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    pm: pluggy.PluginManager,
    core_modules: list[str],
    enabled: list[str],
    raw_settings: dict[str, dict[str, Any]],
    *,
    include_requirements: bool = False,
    installed: dict[str, types.ModuleType] | None = None,
) -> list[LoadedPlugin]:
    """Register core's own modules and the enabled plugins (in dependency order) on ``pm``."""
    for name in core_modules:
        pm.register(importlib.import_module(name), name=name)
    installed = installed_plugins() if installed is None else installed
    stray = sorted(set(raw_settings) - set(enabled))
    order = resolve_order(enabled, installed, include_requirements=include_requirements)
    stray = [pid for pid in stray if pid not in order]
    if stray:
        raise PluginError(
            f"plugins.toml has settings for {stray[0]!r}, which is not enabled; "
            "enable it or remove its [plugins.*] table"
        )
    loaded: list[LoadedPlugin] = []
    for pid in order:
        module = installed[pid]
        # A plugin may declare hooks of its own (``hookspecs = <module or class>``), which
        # other plugins implement with optionalhook=True; added before anyone registers.
        if getattr(module, "hookspecs", None) is not None:
            pm.add_hookspecs(module.hookspecs)
        pm.register(module, name=pid)
        schema = None
        for impl in pm.hook.register_settings.get_hookimpls():
            if impl.plugin_name == pid:
                schema = impl.function()
        settings = validate_settings(pid, schema, raw_settings.get(pid, {}))
        loaded.append(LoadedPlugin(meta=module.plugin, module=module, settings=settings))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"{exc} (is the hook name misspelled? see docs/hooks.md for every hook)"
        ) from exc
    return loaded
