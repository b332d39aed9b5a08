"""Benchmark plugins: one module per Rapport plugin, found by ``bench/run.py``.

A module ``bench/plugins/<name>.py`` defines::

    PLUGIN = "sales"                       # the Rapport plugin id it benchmarks

    async def seed(database_url: str, seeded: Seeded) -> dict:
        # bulk-insert this plugin's rows (bench.seed.bulk_insert), return facts for scenarios
        ...

    SCENARIOS = [("pipeline board", lambda seeded, facts: Request("/sales/board"))]
    SEED_AFTER = ("service",)              # optional: seed after these plugins (when they run)

``bench/run.py --plugins sales,service`` (default: every module here whose plugin is
installed) enables those plugins (and what they require) in the server under test, migrates,
calls each ``seed`` after the core seeding, in dependency order, and runs their scenarios after
the core ones. During ``seed`` the Rapport app is active and connected, so Piccolo queries work
as well as raw driver access through ``database_url``.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from graphlib import TopologicalSorter
from typing import Any


@dataclass(frozen=True)
class BenchPlugin:
    name: str  # module name in bench/plugins
    plugin: str  # Rapport plugin id
    seed: Callable[..., Awaitable[dict]] | None
    scenarios: list[tuple[str, Callable[..., Any]]]
    module: types.ModuleType


def available() -> dict[str, BenchPlugin]:
    """Every bench plugin module, by Rapport plugin id."""
    found: dict[str, BenchPlugin] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if not isinstance(plugin, str):
            raise SystemExit(f"bench/plugins/{info.name}.py must define PLUGIN = \"<plugin id>\"")
        found[plugin] = BenchPlugin(
            name=info.name, plugin=plugin, seed=getattr(module, "seed", None),
            scenarios=list(getattr(module, "SCENARIOS", [])), module=module)
    return found


def select(requested: str | None) -> tuple[list[BenchPlugin], list[str]]:
    """(bench plugins to run, Rapport plugin ids to enable) for ``--plugins``.

    ``None`` means every bench plugin whose Rapport plugin is installed; ``""`` or ``none``
    means none. The enabled list adds what each plugin requires, in dependency order.
    """
    from core.loader import installed_plugins

    installed = installed_plugins()
    bench = available()
    if requested is None:
        ids = [pid for pid in bench if pid in installed]
    elif requested.strip().lower() in ("", "none"):
        ids = []
    else:
        ids = [p.strip() for p in requested.split(",") if p.strip()]
        for pid in ids:
            if pid not in installed:
                raise SystemExit(f"--plugins: plugin {pid!r} is not installed "
                                 f"(installed: {', '.join(sorted(installed)) or 'none'})")
    graph: dict[str, tuple[str, ...]] = {}
    todo = list(ids)
    while todo:
        pid = todo.pop()
        if pid in graph:
            continue
        graph[pid] = tuple(installed[pid].plugin.requires)
        todo.extend(graph[pid])
    # A bench module may also name plugins whose seeding must come first when they run too
    # (``SEED_AFTER = ("sales",)``: analytics measures the orders the sales bench seeds).
    order = {pid: graph[pid] + tuple(p for p in getattr(bench[pid].module, "SEED_AFTER", ())
                                     if p in graph)
             if pid in bench else graph[pid] for pid in graph}
    enabled = list(TopologicalSorter(order).static_order())
    chosen = [bench[pid] for pid in enabled if pid in bench and pid in ids]
    return chosen, enabled
