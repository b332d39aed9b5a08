"""``rapport plugin new NAME``: write a working third-party plugin package from the templates
in ``core/scaffold/plugin/`` (``string.Template`` files ending in ``.tmpl``; ``__package__``
and ``__id__`` in a path become the package name and the plugin id)."""

from __future__ import annotations

import keyword
import re
from datetime import UTC, datetime
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent / "plugin"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = {"core", "api", "admin", "portal", "static", "login", "logout", "account"}


class ScaffoldError(Exception):
    """Why the plugin cannot be made; the message says what to do instead."""


def check_name(name: str, installed: set[str]) -> None:
    if not _ID.match(name) or not name.isidentifier() or keyword.iskeyword(name):
        raise ScaffoldError(
            f"{name!r} is not a valid plugin id: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. visit_log)")
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved by Rapport itself; choose another id")
    if name in installed:
        raise ScaffoldError(
            f"a plugin with the id {name!r} is already installed (see `rapport plugins`); "
            "choose another id")


def names(plugin_id: str) -> dict[str, str]:
    import piccolo

    now = datetime.now(UTC)
    return {
        "id": plugin_id,
        "name": plugin_id.replace("_", " ").capitalize(),
        "package": f"rapport_{plugin_id}",
        "distribution": "rapport-" + plugin_id.replace("_", "-"),
        "url": plugin_id.replace("_", "-"),
        "migration_id": now.strftime("%Y-%m-%dT%H:%M:%S:%f"),
        "migration_file": f"{plugin_id}_{now.strftime('%Y_%m_%dt%H_%M_%S_%f')}",
        "piccolo_version": piccolo.__VERSION__,
    }


def default_folder(plugin_id: str) -> Path:
    return Path.cwd() / names(plugin_id)["distribution"]


def create(plugin_id: str, target: Path, installed: set[str]) -> list[Path]:
    """Write the plugin package into ``target`` (missing or empty); return the files."""
    check_name(plugin_id, installed)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty; choose another "
                            "folder with --dir")
    values = names(plugin_id)
    written = []
    for source in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = str(source.relative_to(TEMPLATES).with_suffix(""))
        relative = relative.replace("__package__", values["package"]).replace(
            "__id__", plugin_id)
        if relative.endswith("piccolo_migrations/migration.py"):
            relative = relative.replace("migration.py", values["migration_file"] + ".py")
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(source.read_text()).substitute(values))
        written.append(path)
    return written
