"""The public API for plugin authors: import from here, nothing else in core is a contract.

A plugin is a Python module (found through the ``rapport`` entry-point group) that defines
``plugin = Plugin(...)`` and any number of functions decorated with ``@hookimpl`` whose names
are hooks from :mod:`core.hookspecs`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pluggy

PROJECT = "rapport"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

_PLUGIN_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Plugin:
    """What every plugin declares about itself.

    ``id`` names its ``[plugins.<id>]`` settings table, its permission prefix (``<id>.*``),
    its table-name prefix (``<id>_*``) and its static URL prefix (``/static/plugins/<id>/``).
    """

    id: str
    name: str
    version: str
    requires: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not _PLUGIN_ID.match(self.id):
            raise ValueError(
                f"plugin id {self.id!r} must be lower-case letters, digits and underscores"
            )
        object.__setattr__(self, "requires", tuple(self.requires))


# --- Things plugins contribute -------------------------------------------------------------
# Every contribution carries an ``order`` (lower first) so the UI is stable whatever the load
# order; ties break on the label.


@dataclass(frozen=True)
class NavItem:
    """A link in the staff (or portal) navigation. Hidden from users lacking ``permission``.

    ``group`` is the heading it is listed under in the staff navigation; left empty, it is
    the contributing plugin's name (``/admin/`` pages go under Administration).
    """

    label: str
    href: str
    permission: str | None = None
    order: int = 100
    icon: str | None = None
    group: str = ""


@dataclass(frozen=True)
class Permission:
    """A named action, e.g. ``sales.opportunity.edit``.

    ``scoped`` permissions are granted with a scope (own, team, all) and so filter rows;
    unscoped ones are simply granted or not (e.g. ``core.audit.manage``).
    """

    name: str
    description: str
    scoped: bool = True


@dataclass(frozen=True)
class Panel:
    """A box on the customer 360° view.

    Give either ``html`` (rendered inline, for cheap panels) or ``url`` (loaded lazily with
    htmx after the page shows, so a slow plugin never slows the page).
    """

    id: str
    title: str
    url: str | None = None
    html: str | None = None
    order: int = 100


@dataclass(frozen=True)
class Action:
    """A button offered on a record (customer, interaction, a plugin's own records)."""

    label: str
    href: str
    method: str = "GET"
    permission: str | None = None
    order: int = 100
    confirm: str | None = None


@dataclass(frozen=True)
class Widget:
    """A dashboard tile; like panels, lazy through ``url`` or inline through ``html``."""

    id: str
    title: str
    url: str | None = None
    html: str | None = None
    permission: str | None = None
    order: int = 100
    width: int = 1


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    kind: str
    snippet: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class SearchProvider:
    """Answers global search for one kind of record.

    ``search`` is ``async (rapport, user, query, limit) -> list[SearchResult]`` and must apply
    the row-level filter for ``user`` itself (through :func:`core.permissions.visible`).
    """

    kind: str
    label: str
    search: Callable[..., Awaitable[list[SearchResult]]]
    permission: str | None = None
    order: int = 100


@dataclass(frozen=True)
class EventType:
    """An event a plugin announces, e.g. ``sales.order.created``.

    A ``durable`` event is written to the outbox in the transaction of the change it
    announces and reaches every subscriber at least once, even across a crash (see
    docs/events.md); subscribers use ``Event.id`` to handle it once.
    """

    name: str
    description: str
    durable: bool = False
    # What staff read when choosing their notifications ("A lead is given to me"): set it on
    # the events your push_notifications hook turns into messages, so users can switch them
    # off. Events without one are not offered as notification topics.
    topic_label: str = ""
    # What staff read where events are chosen (webhooks): "Order placed", and the heading it is
    # listed under: "Sales". Without them both are made from the name (``sales.order.created``
    # -> "Order created" under "Sales"); ``description`` is for plugin authors.
    label: str = ""
    area: str = ""

    @property
    def staff_label(self) -> str:
        if self.label:
            return self.label
        words = " ".join(self.name.split(".")[-2:]).replace("_", " ")
        return words[:1].upper() + words[1:]

    @property
    def staff_area(self) -> str:
        if self.area:
            return self.area
        parts = self.name.split(".")
        word = parts[1] if parts[0] == "core" and len(parts) > 2 else parts[0]
        word = word.replace("_", " ")
        return word[:1].upper() + word[1:] + ("s" if parts[0] == "core" else "")


def subscribes_to(*names: str) -> Callable[[Any], Any]:
    """Declare which events an ``on_event`` implementation wants (docs/events.md):

        @hookimpl
        @subscribes_to("sales.order.created", "core.customer.*")
        async def on_event(rapport, event): ...

    Exact names, or a prefix ending in ``.*``. Core then writes durable deliveries for this
    subscriber only for those events and calls it only for those. Without it an ``on_event``
    gets every event, as before."""
    for name in names:
        if not isinstance(name, str) or not name or "*" in name.removesuffix(".*"):
            raise ValueError(f"subscribes_to takes event names or 'prefix.*', got {name!r}")

    def mark(function: Any) -> Any:
        function.rapport_subscribes_to = tuple(names)
        return function

    return mark


def wants_event(function: Any, name: str) -> bool:
    """Whether an ``on_event`` implementation wants event ``name`` (see :func:`subscribes_to`)."""
    wanted = getattr(function, "rapport_subscribes_to", None)
    if wanted is None:
        return True
    return any(name == w or (w.endswith(".*") and name.startswith(w[:-1])) for w in wanted)


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any] = field(default_factory=dict)
    actor_id: int | None = None
    # The outbox id of a durable event: stable across redeliveries, for idempotent handling.
    id: int | None = None


@dataclass(frozen=True)
class JobType:
    """A kind of background job, declared through the ``register_jobs`` hook (docs/jobs.md).

    ``handler`` is ``async (rapport, job: Job) -> None``; raising makes the job retry with
    exponential backoff until ``max_attempts``, then it is marked failed. A job may run more
    than once (a worker killed mid-job has it run again), so make it idempotent.

    ``schedule`` makes the job recurring: a cron expression (``"*/5 * * * *"``, in UTC) or a
    number of seconds between runs. Each occurrence is run once across every worker, and a
    recurring job never overlaps itself. ``unique`` lets at most one job of this type wait in
    the queue (enqueueing another returns the waiting one) and run at a time.
    ``timeout_seconds`` bounds one attempt: beyond it the attempt is cancelled and counts as
    failed.
    """

    name: str
    handler: Callable[..., Awaitable[Any]]
    schedule: str | float | None = None
    max_attempts: int = 5
    timeout_seconds: float = 300.0
    unique: bool = False
    description: str = ""


@dataclass(frozen=True)
class Job:
    """What a job handler receives: the job's id, type name, arguments (JSON) and which
    attempt this is (1 for the first). ``scheduled_for`` is the occurrence a recurring job
    runs for (UTC), else None."""

    id: int
    name: str
    args: dict[str, Any]
    attempt: int = 1
    max_attempts: int = 1
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class PushMessage:
    """A notification for one staff user's devices, produced from an event.

    ``topic`` is what the user can switch on or off in their notification preferences.
    """

    user_id: int
    topic: str
    title: str
    body: str
    url: str
    urgency: str = "normal"
    ttl_seconds: int = 24 * 3600


@dataclass(frozen=True)
class AgendaItem:
    """One entry of a field representative's day (a visit, a follow-up, an assigned case or
    lead), shown in the field app's agenda and kept on the device for offline use.

    ``kind`` is a short word the app shows as a label (``visit``, ``follow_up``, ``case``,
    ``lead``); ``url`` opens the record; ``customer_id`` links the entry to a customer card.
    Entries without ``starts_at`` are "any time today" and listed after timed ones.
    """

    title: str
    url: str
    kind: str = "task"
    starts_at: datetime | None = None
    customer_id: int | None = None
    detail: str = ""
    order: int = 100
