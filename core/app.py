"""The application instance: settings, plugin manager, database engine and the ASGI app.

There is no module-level plugin manager: each :class:`Rapport` owns its own, so tests can
build apps with exactly the plugins they name.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable
from functools import cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any

from core import db
from core.loader import (
    LoadedPlugin,
    load_plugins,
    new_plugin_manager,
    read_plugins_toml,
)
from core.plugin import Event, EventType, Permission
from core.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar
    from piccolo.conf.apps import AppConfig

log = logging.getLogger("rapport")

# Core's own features plug in through the same hooks as plugins do (Datasette's habit):
# each module here holds hook implementations for one area of core.
CORE_MODULES: list[str] = [
    "core.instance",
    "core.identity.plugin",
    "core.identity.housekeeping",
    "core.customers.plugin",
    "core.search.plugin",
    "core.customers.import_plugin",
    "core.interactions.plugin",
    "core.customer360.plugin",
    "core.live",
    "core.notifications.plugin",
    "core.web",
    "core.portal.plugin",
    "core.privacy.plugin",
    "core.audit_web",
    "core.jobs",
    "core.jobs_web",
    "core.webhooks",
    "core.webhooks_web",
    "core.webhooks_api",
    "pwa.plugin",
]
# The benchmark's ceiling (a bare JSON endpoint) exists only in `make bench` runs.
if os.environ.get("RAPPORT_BENCH") == "1":
    CORE_MODULES.append("core.bench")


class Rapport:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        plugins: list[str] | None = None,
        plugin_settings: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Build an instance.

        By default the enabled plugins and their settings come from ``plugins.toml``. Passing
        ``plugins`` (as tests do) enables exactly those plugins and what they require.
        """
        self.settings = settings or Settings.from_env()
        self.pm = new_plugin_manager()
        if plugins is None:
            enabled, raw = read_plugins_toml(self.settings.plugins_toml)
            include_requirements = False
        else:
            enabled, raw = list(plugins), dict(plugin_settings or {})
            include_requirements = True
        self.plugins: list[LoadedPlugin] = load_plugins(
            self.pm, CORE_MODULES, enabled, raw, include_requirements=include_requirements
        )
        self.engine = db.build_engine(self.settings.database_url)
        self._event_types: dict[str, EventType] | None = None

    # --- hooks ---------------------------------------------------------------------------

    @property
    def hook(self):
        return self.pm.hook

    @property
    def load_order(self) -> list[str]:
        """Core modules first, then plugins with requirements before dependents."""
        return list(CORE_MODULES) + [p.meta.id for p in self.plugins]

    def call_in_order(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call each implementation of a hook in load order; return (plugin name, result)."""
        caller = getattr(self.pm.hook, hook_name)
        rank = {name: i for i, name in enumerate(self.load_order)}
        impls = sorted(caller.get_hookimpls(), key=lambda i: rank.get(i.plugin_name, 1 << 30))
        results = []
        for impl in impls:
            argnames = impl.argnames
            result = impl.function(**{k: v for k, v in kwargs.items() if k in argnames})
            results.append((impl.plugin_name, result))
        return results

    def collect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a list-returning hook (synchronous implementations) and merge the lists in
        load order."""
        return _flatten(result for _, result in self.call_in_order(hook_name, **kwargs))

    async def acollect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Like :meth:`collect`, awaiting implementations that are async."""
        results = []
        for _, result in self.call_in_order(hook_name, **kwargs):
            if inspect.isawaitable(result):
                result = await result
            results.append(result)
        return _flatten(results)

    def plugin_settings(self, plugin_id: str) -> Any:
        for plugin in self.plugins:
            if plugin.meta.id == plugin_id:
                return plugin.settings
        raise KeyError(f"plugin {plugin_id!r} is not enabled")

    def is_enabled(self, plugin_id: str) -> bool:
        return any(p.meta.id == plugin_id for p in self.plugins)

    # --- permissions and events ----------------------------------------------------------

    @cached_property
    def permissions(self) -> dict[str, Permission]:
        found: dict[str, Permission] = {}
        for permission in self.collect("register_permissions", rapport=self):
            if permission.name in found:
                raise ValueError(f"permission {permission.name!r} is declared twice")
            found[permission.name] = permission
        return found

    @property
    def event_types(self) -> dict[str, EventType]:
        if self._event_types is None:
            self._event_types = {e.name: e for e in self.collect("register_events", rapport=self)}
        return self._event_types

    async def publish(self, name: str, payload: dict[str, Any] | None = None,
                      actor_id: int | None = None, *, key: str | None = None) -> Event:
        """Announce an event to every plugin's ``on_event`` (and ``push_notifications``).

        A durable event type (docs/events.md) is written to the outbox: call this inside the
        transaction of the change it announces, so the event exists if and only if the change
        commits; the job worker then delivers it to each subscriber at least once, in order
        per ``key`` (an aggregate such as ``"customer:12"``). In-process listeners (live
        updates) hear it after the commit. The returned event carries its outbox ``id``.

        Any other event: call it after the work it announces has committed; subscribers run
        now, and a failing subscriber is logged and does not stop the others.
        """
        if name not in self.event_types:
            raise ValueError(f"event {name!r} is not declared by any plugin (register_events)")
        event = Event(name=name, payload=dict(payload or {}), actor_id=actor_id)
        if self.event_types[name].durable:
            from core import events

            return await events.publish_durable(self, event, key=key)
        from core import events as durable_events

        for plugin_name, result in durable_events.call_subscribers(self, event):
            try:
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("subscriber %s failed on event %s", plugin_name, name)
        for listener in list(self.event_listeners):
            try:
                await listener(event)
            except Exception:
                log.exception("event listener failed on event %s", name)
        return event

    @cached_property
    def event_listeners(self) -> list[Any]:
        """Core services (live updates, push outbox) listen here without being plugins."""
        return []

    # --- database ------------------------------------------------------------------------

    def piccolo_apps(self) -> list[AppConfig]:
        """Every Piccolo app, in migration order: dependencies first, else load order."""
        apps: list[AppConfig] = self.collect("register_piccolo_apps", rapport=self)
        by_module: dict[str, str] = {}
        for app in apps:
            for dep in app.migration_dependencies:
                by_module[dep] = import_module(dep).APP_CONFIG.app_name
        ordered: list[AppConfig] = []
        done: set[str] = set()
        remaining = list(apps)
        while remaining:
            for app in remaining:
                deps = {by_module[d] for d in app.migration_dependencies}
                if deps <= done:
                    ordered.append(app)
                    done.add(app.app_name)
                    remaining.remove(app)
                    break
            else:
                names = ", ".join(a.app_name for a in remaining)
                raise db.DatabaseError(f"migration dependencies cannot be met for: {names}")
        return ordered

    def activate(self) -> None:
        db.activate(self.engine)

    async def migrate(self) -> list[tuple[str, str]]:
        self.activate()
        await db.connect(self.engine, pool_size=2)
        try:
            return await db.migrate(self.piccolo_apps())
        finally:
            await db.disconnect(self.engine)

    # --- web -----------------------------------------------------------------------------

    @cached_property
    def asgi(self) -> Litestar:
        from core.web_app import build_litestar

        return build_litestar(self)


def _flatten(results: Iterable[Any]) -> list[Any]:
    merged: list[Any] = []
    for result in results:
        if result is None:
            continue
        if isinstance(result, list | tuple):
            merged.extend(r for r in result if r is not None)
        else:
            merged.append(result)
    return merged


def create_app(settings: Settings | None = None) -> Litestar:
    """The ASGI app for ``uvicorn --factory core.app:create_app``."""
    return Rapport(settings).asgi
