"""Product configurator: configurable product models with rules, a SAT solver that says what
remains possible after each choice and why the rest is not, prices, bills of materials and
configuration codes, saved configurations per customer, and quoting through the sales
plugin's hooks (never by importing it: without sales it still configures and saves).
"""

from __future__ import annotations

from pathlib import Path

from core.plugin import Plugin, hookimpl

plugin = Plugin(id="configurator", name="Configurator", version="0.1.0",
                description="Configurable products with rules and explanations, prices, bills "
                            "of materials, saved configurations and quotes.")

HERE = Path(__file__).resolve().parent


@hookimpl
def register_piccolo_apps():
    from plugins.configurator.piccolo_app import APP_CONFIG

    return [APP_CONFIG]
