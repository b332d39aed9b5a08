"""Every hook Rapport calls, grouped by purpose.

How results combine: unless a hook says otherwise, every enabled plugin's implementation is
called and core merges the results (lists are concatenated and sorted by ``order``, ``None``
is skipped). Implementations may take fewer arguments than the spec (pluggy passes only the
ones they name), which is why hooks only ever gain arguments, never lose them.

Implementations of hooks marked *may be async* can be ``async def``; core awaits them. The
one ``firstresult`` hook (``row_filter``) must be synchronous: an async implementation would
return a coroutine, which is never ``None``, and so would always win.

Each hook is documented in ``docs/hooks.md`` with this exact signature; a test keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.plugin import (
    Action,
    AgendaItem,
    Event,
    EventType,
    JobType,
    NavItem,
    Panel,
    Permission,
    PushMessage,
    SearchProvider,
    Widget,
    hookspec,
)

if TYPE_CHECKING:
    from datetime import date

    import click
    from litestar.types import ControllerRouterHandler
    from piccolo.conf.apps import AppConfig
    from piccolo.table import Table

    from core.app import Rapport
    from core.permissions import Actor


# --- Configuration and data ------------------------------------------------------------------


@hookspec
def register_settings() -> type | None:
    """Return the dataclass describing this plugin's ``[plugins.<id>]`` table in plugins.toml.

    Called once per plugin (core knows which plugin answered). Field names are the allowed
    keys, field types are checked, defaults make keys optional. Read the validated values with
    ``rapport.plugin_settings("<id>")``.
    """


@hookspec
def register_piccolo_apps(rapport: Rapport) -> list[AppConfig] | None:
    """Return the Piccolo ``AppConfig`` objects (tables and migrations folder) this plugin owns.

    ``rapport migrate`` applies every app's migrations, core first, then plugins in load order.
    Table names must start with the plugin id (``sales_quote``) so plugins never collide.
    """


@hookspec
def seed_demo_data(rapport: Rapport, customers: int) -> Awaitable[None] | None:
    """Create this plugin's demo records (may be async). Must be idempotent.

    ``customers`` is the scale asked for with ``rapport demo --customers N``. Core's own demo
    data (users, customers, interactions) exists before any plugin is called.
    """


# --- Web: routes, templates, static files ----------------------------------------------------


@hookspec
def register_routes(rapport: Rapport) -> list[ControllerRouterHandler] | None:
    """Return Litestar route handlers, controllers or routers for staff pages and the API.

    Every handler must declare ``opt={"permission": "<name>"}`` or ``opt={"public": True}``;
    the app refuses to start otherwise (deny by default). Put staff pages under ``/<id>/`` and
    API endpoints under ``/api/v1/<id>/``.
    """


@hookspec
def register_portal_routes(rapport: Rapport) -> list[ControllerRouterHandler] | None:
    """Return route handlers for the customer portal.

    They are mounted under ``/portal/`` behind the portal guard: only a signed-in portal
    customer reaches them, and ``request.user`` is that customer's portal identity.
    """


@hookspec
def register_template_dirs(rapport: Rapport) -> list[Path] | None:
    """Return directories of Jinja2 templates. Keep yours under a sub-folder named after the
    plugin id (``templates/sales/board.html``). The active theme's templates take precedence.
    """


@hookspec
def register_static_dirs(rapport: Rapport) -> dict[str, Path] | None:
    """Return ``{url_prefix: directory}`` of static files, served under ``/static/<prefix>/``.

    Use ``plugins/<id>`` as the prefix. Duplicate prefixes are a start-up error.
    """


# --- Navigation and the pages core draws -----------------------------------------------------


@hookspec
def register_nav_items(rapport: Rapport, user: Actor) -> list[NavItem] | None:
    """Return links for the staff navigation. Items whose ``permission`` the user lacks are
    dropped by core."""


@hookspec
def dashboard_widgets(rapport: Rapport, user: Actor) -> list[Widget] | None:
    """Return tiles for the staff dashboard. Items whose ``permission`` the user lacks are
    dropped by core."""


@hookspec
def customer_panels(
    rapport: Rapport, customer: Mapping[str, Any], user: Actor
) -> list[Panel] | None:
    """Return panels for the 360° view of ``customer`` (a row of ``core_customer``).

    Prefer ``Panel(url=...)`` for anything that queries: it loads lazily, so a slow plugin never
    slows the page. The panel's own route must check permissions like any other route.
    """


@hookspec
def record_actions(
    rapport: Rapport, record_type: str, record: Mapping[str, Any], user: Actor
) -> list[Action] | None:
    """Return buttons to offer on a record. ``record_type`` is e.g. ``"customer"``,
    ``"interaction"`` or a plugin's own ``"sales.opportunity"``. Items whose ``permission`` the
    user lacks are dropped by core."""


@hookspec
def register_portal_nav_items(rapport: Rapport, customer: Mapping[str, Any]) -> list[NavItem] | None:
    """Return links for the customer portal's navigation (portal routes only)."""


@hookspec
def portal_home_cards(
    rapport: Rapport, customer: Mapping[str, Any]
) -> list[Panel] | Awaitable[list[Panel]] | None:
    """Return cards for the portal home page of ``customer`` (may be async), e.g. a loyalty
    balance or open quotes. Card URLs must be portal routes."""


@hookspec
def portal_history_panels(
    rapport: Rapport, customer: Mapping[str, Any]
) -> list[Panel] | Awaitable[list[Panel]] | None:
    """Return panels for the portal history page of ``customer`` (may be async): the records
    this plugin shows customers (purchases, quotes, requests, points). Lists are concatenated
    and sorted by ``order``; lazy ``url`` panels must point at portal routes."""


@hookspec
def agenda_items(
    rapport: Rapport, user: Actor, day: date
) -> list[AgendaItem] | Awaitable[list[AgendaItem]] | None:
    """Return what ``user`` has on ``day`` from this plugin (may be async): visits, assigned
    cases and leads, anything due. Shown in the field app's agenda and kept on the device.

    Results are concatenated with core's visits and follow-ups and sorted by ``starts_at``
    (untimed entries last), then ``order`` and ``title``. Apply the row-level filter for
    ``user`` yourself (through :func:`core.permissions.scoped`): only return what they may see.
    """


# --- Permissions -----------------------------------------------------------------------------


@hookspec
def register_permissions(rapport: Rapport) -> list[Permission] | None:
    """Return the permissions this plugin declares. Names start with the plugin id
    (``sales.opportunity.edit``); core's start with ``core.``."""


@hookspec(firstresult=True)
def row_filter(
    rapport: Rapport, user: Actor, permission: str, table: type[Table], scope: str
) -> Any | None:
    """Return the Piccolo where-clause that limits ``table`` to rows ``user`` may reach with
    ``permission`` granted at ``scope`` (``"own"``, ``"team"`` or ``"customer"`` for a portal
    identity), or ``None`` to let core apply its convention (``owner``/``team`` columns for
    staff, ``customer`` column for the portal).

    ``firstresult``: the first non-``None`` answer wins, so answer only for your own tables.
    Must be synchronous. Scope ``"all"`` never reaches this hook.
    """


# --- Search ----------------------------------------------------------------------------------


@hookspec
def register_search_providers(rapport: Rapport) -> list[SearchProvider] | None:
    """Return providers that global search asks alongside core's customer search."""


# --- Events and notifications ----------------------------------------------------------------


@hookspec
def register_events(rapport: Rapport) -> list[EventType] | None:
    """Declare the events this plugin publishes (``<id>.<noun>.<verb>``). Publishing an
    undeclared event is an error, so subscribers can rely on the list in ``rapport plugins``."""


@hookspec
def on_event(rapport: Rapport, event: Event) -> Awaitable[None] | None:
    """React to an event (may be async). Called after the publishing transaction committed.

    An exception here is logged with the event name and does not undo the publisher's work.
    For a durable event (docs/events.md) each implementation is a subscriber called by the
    job worker, at least once, retried with backoff when it raises; ``event.id`` is stable
    across retries, so handle each id once.
    """


@hookspec
def push_notifications(
    rapport: Rapport, event: Event
) -> list[PushMessage] | Awaitable[list[PushMessage]] | None:
    """Turn an event into Web Push notifications for staff users (may be async).

    Core puts each message in the durable push outbox, honouring each user's notification
    preferences for the message's ``topic``.
    """


# --- Background jobs -------------------------------------------------------------------------


@hookspec
def register_jobs(rapport: Rapport) -> list[JobType] | None:
    """Declare the background job types this plugin runs (``<id>.<job>``), each with its
    handler ``async (rapport, job) -> None``, optional recurring ``schedule`` (cron or
    seconds), attempts, time limit and uniqueness. Queue one with ``core.jobs.enqueue``;
    see docs/jobs.md. Jobs may run more than once: make handlers idempotent."""


# --- Customers: merging and privacy ----------------------------------------------------------


@hookspec
def merge_customers(rapport: Rapport, survivor_id: int, merged_id: int) -> Awaitable[None] | None:
    """Re-point this plugin's records from customer ``merged_id`` to ``survivor_id`` (may be
    async). Runs inside the merge's transaction: raise to abort the whole merge."""


@hookspec
def privacy_export(
    rapport: Rapport, customer_id: int
) -> dict[str, Any] | Awaitable[dict[str, Any]] | None:
    """Return everything this plugin holds about customer ``customer_id`` as JSON-ready data,
    keyed by a section name (may be async). Merged into the privacy export file."""


@hookspec
def privacy_erase(rapport: Rapport, customer_id: int) -> Awaitable[None] | None:
    """Erase or anonymise this plugin's personal data about ``customer_id`` (may be async),
    keeping aggregates (amounts, counts, dates). Runs inside the erasure's transaction."""


# --- Command line ----------------------------------------------------------------------------


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``rapport`` command (``@cli.command()`` on the group given)."""


# --- Lifecycle -------------------------------------------------------------------------------


@hookspec
def startup(rapport: Rapport) -> Awaitable[None] | None:
    """Called when the server starts, after the database is connected (may be async)."""


@hookspec
def shutdown(rapport: Rapport) -> Awaitable[None] | None:
    """Called when the server stops, before the database is closed (may be async)."""
