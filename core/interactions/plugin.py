"""Interactions' hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.interactions.piccolo_app import APP_CONFIG
from core.plugin import hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]
