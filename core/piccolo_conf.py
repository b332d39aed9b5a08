"""Piccolo's configuration module (``PICCOLO_CONF=core.piccolo_conf``).

Rapport sets ``DB`` when an app instance activates its engine. The registry lists core and
every installed built-in plugin so that developers can run
``PICCOLO_CONF=core.piccolo_conf piccolo migrations new <app> --auto``.
"""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from core.db import build_engine
from core.settings import Settings

DB = build_engine(Settings.from_env().database_url)


def _app_modules() -> list[str]:
    from importlib.metadata import entry_points
    from importlib.util import find_spec

    modules = ["core.piccolo_app"]
    for entry in entry_points(group="rapport"):
        package = entry.value.rsplit(".", 1)[0].split(":")[0]
        candidate = f"{package}.piccolo_app"
        if find_spec(candidate) is not None:
            modules.append(candidate)
    return modules


APP_REGISTRY = AppRegistry(apps=_app_modules())
