"""docs/hooks.md cannot drift from core/hookspecs.py: every hook has a section headed with its
exact signature, and every documented hook exists."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from core import hookspecs
from core.plugin import PROJECT

DOCS = Path(__file__).resolve().parents[2] / "docs"
HOOKS_MD = DOCS / "hooks.md"
HEADING = re.compile(r"^### `(?P<name>[a-z_][a-z0-9_]*)\((?P<rest>.*)`\s*$", re.MULTILINE)


def hookspec_functions() -> dict[str, object]:
    """Read the specs the way pluggy does, so a hook added later is covered too."""
    marker = f"{PROJECT}_spec"
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, marker)
    }


def heading_for(fn) -> str:
    """``name(arg: Type, ...) -> ReturnType`` with annotations as written (they are strings
    under ``from __future__ import annotations``)."""
    signature = inspect.signature(fn)
    params = ", ".join(
        f"{p.name}: {_annotation(p.annotation)}" for p in signature.parameters.values()
    )
    return f"{fn.__name__}({params}) -> {_annotation(signature.return_annotation)}"


def _annotation(annotation) -> str:
    if annotation is inspect.Signature.empty:
        raise AssertionError("every hookspec argument and return value needs a type hint")
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def documented_headings() -> dict[str, str]:
    text = HOOKS_MD.read_text()
    return {m["name"]: f"{m['name']}({m['rest']}" for m in HEADING.finditer(text)}


def test_there_are_hookspecs_to_document():
    assert len(hookspec_functions()) >= 20


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hook_is_documented_with_its_exact_signature(name):
    expected = heading_for(hookspec_functions()[name])
    documented = documented_headings()
    assert name in documented, (
        f"hook {name!r} is not documented: add a section to docs/hooks.md headed\n"
        f"### `{expected}`"
    )
    assert documented[name] == expected, (
        f"docs/hooks.md documents {name!r} with a different signature; change its heading to\n"
        f"### `{expected}`\n(it is now: ### `{documented[name]}`)"
    )


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hook_has_a_docstring_saying_what_it_returns(name):
    assert (hookspecs_doc := inspect.getdoc(hookspec_functions()[name])), (
        f"hook {name!r} in core/hookspecs.py needs a docstring saying what it returns and how "
        "results combine"
    )
    assert hookspecs_doc.strip()


def test_every_documented_hook_exists():
    specs = hookspec_functions()
    stale = sorted(set(documented_headings()) - set(specs))
    assert not stale, (
        f"docs/hooks.md documents hooks that core/hookspecs.py does not define: {stale}; "
        "remove their sections or add the hooks"
    )


def test_each_hook_is_documented_once():
    names = [m["name"] for m in HEADING.finditer(HOOKS_MD.read_text())]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"docs/hooks.md has more than one section for: {twice}"


# --- Hooks a plugin declares for other plugins (``hookspecs`` in its plugin module) ----------


def plugin_hookspecs() -> dict[tuple[str, str], object]:
    """(plugin id, hook name) -> spec, for every installed plugin that declares hooks."""
    from core.loader import installed_plugins

    marker = f"{PROJECT}_spec"
    found = {}
    for plugin_id, module in installed_plugins().items():
        specs = getattr(module, "hookspecs", None)
        for name, fn in vars(specs).items() if specs is not None else ():
            if inspect.isfunction(fn) and hasattr(fn, marker):
                found[(plugin_id, name)] = fn
    return found


@pytest.mark.parametrize("key", sorted(plugin_hookspecs()), ids="/".join)
def test_every_plugin_hook_is_documented_in_its_plugin_page(key):
    """docs/plugins/<id>.md heads each of the plugin's own hooks with its exact signature."""
    plugin_id, name = key
    fn = plugin_hookspecs()[key]
    page = DOCS / "plugins" / f"{plugin_id}.md"
    expected = heading_for(fn)
    headings = {m["name"]: f"{m['name']}({m['rest']}" for m in HEADING.finditer(page.read_text())}
    assert headings.get(name) == expected, (
        f"{page.relative_to(DOCS.parent)} must document {name!r} under\n### `{expected}`")
    assert (inspect.getdoc(fn) or "").strip(), f"{name} needs a docstring"
