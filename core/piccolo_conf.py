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
    """Module paths of every Piccolo app core and the installed plugins register."""
    import sys

    from core.app import Rapport
    from core.loader import installed_plugins

    rapport = Rapport(Settings.from_env(), plugins=sorted(installed_plugins()))
    apps = rapport.piccolo_apps()
    return [
        name
        for app in apps
        for name, module in list(sys.modules.items())
        if name.endswith("piccolo_app") and getattr(module, "APP_CONFIG", None) is app
    ]


APP_REGISTRY = AppRegistry(apps=_app_modules())
