"""Run the `rapport` command with tests/core/events/process_plugin.py loaded as core modules
(its subscribers are two classes, so they register as two subscribers):
``python -m tests.core.events.launch serve --port 8123``."""

from __future__ import annotations

import sys


def main() -> None:
    import core.app
    from core import loader

    extra = ["tests.core.events.process_plugin"]
    core.app.CORE_MODULES.extend(extra)
    register = loader.load_plugins

    def load_plugins(pm, core_modules, *args, **kwargs):
        loaded = register(pm, core_modules, *args, **kwargs)
        from tests.core.events import process_plugin

        pm.register(process_plugin.Idempotent(), name="testing_idempotent")
        pm.register(process_plugin.Counting(), name="testing_counting")
        return loaded

    core.app.load_plugins = load_plugins
    from core.cli import main as rapport

    rapport(sys.argv[1:])


if __name__ == "__main__":
    main()
