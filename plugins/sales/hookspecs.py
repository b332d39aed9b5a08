"""The sales plugin's own hooks: what other plugins implement to take part in quoting, and how
they read the catalogue and orders without importing this plugin.

Core's loader adds these specs when the sales plugin loads (``hookspecs`` in ``plugin.py``).
Other plugins implement them with ``@hookimpl(optionalhook=True)``, so they still load when
sales is disabled. Every hook is documented in docs/plugins/sales.md under a heading with its
exact signature (tests/plugins/sales/test_hook_docs.py keeps them in step). As with core's
hooks, arguments are only ever added, never removed or renamed.

The values passed and returned are plain data: a plugin may return dictionaries with the
documented keys instead of these classes, so it needs nothing from this module at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.plugin import hookspec

if TYPE_CHECKING:
    from core.app import Rapport
    from core.permissions import Actor
    from plugins.sales.public import SalesReadApi


@dataclass(frozen=True)
class QuoteContext:
    """Who and what a quote is for, handed to line sources and adjustments.

    ``customer_id`` is None only when the editor lists sources before a customer is chosen;
    ``price_book_id`` None means the default price book; ``quantity`` is the quantity asked for
    on the line being resolved (1 elsewhere); ``user`` is the staff member or the portal
    customer asking; ``quote_id`` is set once the quote exists.
    """

    customer_id: int | None
    currency: str
    price_book_id: int | None = None
    quantity: Decimal = Decimal(1)
    user: Actor | None = None
    quote_id: int | None = None
    customer_name: str = ""


@dataclass(frozen=True)
class OfferedLine:
    """A structured quote line a source returns (a dict with these keys does as well).

    Name the item by ``product`` (a catalogue product id) or ``sku`` (looked up in the
    catalogue; an unknown SKU is kept as text). ``unit_price`` None takes the catalogue price
    in the quote's price book and currency. ``context`` is a JSON-serialisable object (a
    configuration: {"Colour": "blue", "Frame": "54 cm"}) shown under the line and copied onto
    the order line. ``children`` are the parts of a bill of materials, quoted as lines
    beneath this one (their quantities are per one of this line).
    """

    description: str = ""
    product: int | None = None
    sku: str = ""
    quantity: Decimal | str | None = None
    unit_price: Decimal | str | None = None
    tax_percent: Decimal | str | None = None
    discount_percent: Decimal | str | None = None
    source_ref: str = ""
    context: Mapping[str, Any] | None = None
    children: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class LineSource:
    """Where quote lines can come from besides the catalogue (e.g. a configurator).

    ``resolve(rapport, ref, currency, context=QuoteContext)`` may be async; it returns an
    :class:`OfferedLine` (or a dict of its keys; the original ``{"description",
    "unit_price"}`` still works) and raises ``LookupError`` for an unknown ``ref``. A resolver
    written before ``context`` existed (three arguments) is still called without it.
    """

    id: str
    label: str
    resolve: Callable[..., Any]


@dataclass(frozen=True)
class Adjustment:
    """A named, explained reduction of a quote's total (a dict with these keys does as well).

    ``amount`` is what to take off the total with tax, in the quote's currency (positive).
    Sales bounds the sum of a quote's adjustments so its total never goes below zero: an
    adjustment is cut to what is left and the quote says so. ``source`` is the plugin's id;
    ``source_ref`` what it refers to (a voucher number); ``context`` JSON for the plugin.
    """

    source: str
    label: str
    amount: Decimal | str
    explanation: str = ""
    source_ref: str = ""
    context: Mapping[str, Any] | None = None


# --- Hooks -------------------------------------------------------------------------------------


@hookspec
def sales_quote_line_sources(rapport: Rapport, context: QuoteContext | None) -> list[LineSource] | None:
    """Return line sources offering quote lines (configurations, services). Lists from every
    plugin are concatenated; ids must be unique. ``context`` is None when the editor lists
    sources before the quote's customer is known."""


@hookspec
def sales_quote_adjustments(
    rapport: Rapport, quote: Mapping[str, Any], lines: list[Mapping[str, Any]],
    context: QuoteContext
) -> list[Adjustment] | Awaitable[list[Adjustment]] | None:
    """Return adjustments (discount lines such as a loyalty voucher) for a quote being priced
    (may be async). Called when a quote is created or re-priced and for the editor's live
    totals, so it must not change anything. Lists from every plugin are concatenated in
    load order and bounded together so the total never goes below zero."""


@hookspec(firstresult=True)
def sales_read_api(rapport: Rapport) -> SalesReadApi | None:
    """Implemented by the sales plugin only: return the read API other plugins use for the
    catalogue (products, prices per price book and currency) and orders. Call it as
    ``rapport.hook.sales_read_api(rapport=rapport)``; the first (only) result is returned."""
