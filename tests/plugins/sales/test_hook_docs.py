"""docs/plugins/sales.md cannot drift from plugins/sales/hookspecs.py: every sales hook has a
section headed with its exact signature, documented the way core's hooks are (the same
heading rule as tests/core/test_docs.py), and every documented sales hook exists."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from core.plugin import PROJECT
from plugins.sales import hookspecs
from tests.core.test_docs import HEADING, heading_for

SALES_MD = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "sales.md"


def sales_hookspecs() -> dict[str, object]:
    marker = f"{PROJECT}_spec"
    return {name: fn for name, fn in vars(hookspecs).items()
            if inspect.isfunction(fn) and hasattr(fn, marker)}


def documented() -> dict[str, str]:
    return {m["name"]: f"{m['name']}({m['rest']}" for m in HEADING.finditer(SALES_MD.read_text())}


def test_the_sales_plugin_declares_its_hooks():
    assert {"sales_quote_line_sources", "sales_quote_adjustments",
            "sales_read_api"} <= set(sales_hookspecs())


@pytest.mark.parametrize("name", sorted(sales_hookspecs()))
def test_every_sales_hook_is_documented_with_its_exact_signature(name):
    fn = sales_hookspecs()[name]
    expected = heading_for(fn)
    assert documented().get(name) == expected, (
        f"docs/plugins/sales.md must have a section headed\n### `{expected}`")
    assert (inspect.getdoc(fn) or "").strip(), f"{name} needs a docstring saying what it returns"


def test_every_documented_sales_hook_exists():
    stale = sorted(set(documented()) - set(sales_hookspecs()))
    assert not stale, f"docs/plugins/sales.md documents hooks that do not exist: {stale}"


async def test_the_loader_adds_the_sales_hookspecs_when_sales_loads(make_rapport):
    rapport = await make_rapport(["sales"])
    for name in sales_hookspecs():
        assert getattr(rapport.hook, name).spec is not None, name
    assert rapport.hook.sales_read_api(rapport=rapport) is not None
