"""The campaigns plugin's own hook: how other plugins add criteria to the segment editor
(bought product X in the last N days, loyalty tier, open cases...) without importing this
plugin.

Core's loader adds this spec when the campaigns plugin loads (``hookspecs`` in ``plugin.py``).
Other plugins implement it with ``@hookimpl(optionalhook=True)``, so they still load when
campaigns is disabled, and return plain dictionaries with the keys of :class:`Criterion`
(they need nothing from this module). The hook is documented in docs/plugins/campaigns.md
under a heading with its exact signature (tests/plugins/campaigns/test_segments.py keeps
them in step). Arguments are only ever added, never removed or renamed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.plugin import hookspec

if TYPE_CHECKING:
    from core.app import Rapport


@dataclass(frozen=True)
class Criterion:
    """One thing a segment rule can test about a customer.

    ``key`` is unique and starts with the plugin id (``sales.bought_product``). ``operators``
    is a list of ``(op, label)`` pairs shown in the editor (``("in_last_days", "in the last
    N days")``); ``value`` says what the value box takes: ``"text"``, ``"number"``,
    ``"choice"`` (one of ``choices``, ``(value, label)`` pairs) or ``"none"`` (no value).

    ``sql(op, value)`` returns ``(condition, params)``: an SQL boolean expression about the
    customer row ``core_customer`` (refer to its id as ``core_customer.id``) with ``{}`` for
    each parameter, in order, e.g. ``("EXISTS (SELECT 1 FROM sales_order o WHERE o.customer =
    core_customer.id AND o.created_at >= {})", [since])``. It must run on SQLite and
    PostgreSQL and use an index (a segment is counted while its rules are edited). It raises
    ``ValueError`` with a sentence for people when the value does not fit; ``value`` arrives
    as the text typed, or the choice picked.
    """

    key: str
    label: str
    operators: list[tuple[str, str]]
    sql: Callable[[str, str], tuple[str, list[Any]]]
    value: str = "text"
    choices: list[tuple[str, str]] = field(default_factory=list)
    group: str = ""  # heading in the editor's criterion list (defaults to the plugin's)


@hookspec
def campaigns_segment_criteria(
    rapport: Rapport,
) -> list[Criterion] | Awaitable[list[Criterion]] | None:
    """Return criteria this plugin adds to the segment editor (may be async), as
    :class:`Criterion` objects or dictionaries with its keys. Lists from every plugin are
    concatenated after the campaigns plugin's own criteria; a key used twice is an error."""
