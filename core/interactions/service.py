"""Recording touch points: the ONE way core and every plugin writes an interaction.

    row, created = await record_interaction(
        rapport, actor, customer_id=42, channel="call", direction="outbound",
        subject="Renewal", followup_due=datetime(2026, 12, 1, 9, tzinfo=UTC),
        plugin="sales", plugin_record=str(opportunity_id))

Writes are validated (every bad field named at once in :class:`InteractionError`), audited
through :mod:`core.records` in the same transaction, idempotent on ``client_id`` (a replayed
upload returns the row already stored, ``created=False``), and announced after commit as the
event ``core.interaction.created`` (live updates and plugins listen to it).

Recording is not contacting: before any *outbound* touch point a plugin asks
:func:`core.interactions.policy.check_contact` first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw

from core import db, records, references
from core.customers.tables import Customer
from core.interactions.tables import CHANNELS, DIRECTIONS, Interaction, InteractionParticipant
from core.permissions import Actor, row_filter, scoped

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.interactions")

EVENT_CREATED = "core.interaction.created"
EVENT_UPDATED = "core.interaction.updated"
EVENT_FOLLOWUP_DONE = "core.followup.completed"
EVENT_FOLLOWUP_CHANGED = "core.followup.changed"  # durable: published inside the transaction

TEXT_LIMITS = {"subject": 300, "purpose": 100, "outcome": 100, "notes": 20000,
               "followup_note": 2000, "plugin": 64, "plugin_record": 64, "client_id": 64}
MAX_DURATION = 7 * 24 * 3600  # a week: longer is a typing mistake, not a meeting
MAX_PARTICIPANTS = 50
# Fields update_interaction accepts (the customer and the recording plugin never change).
EDITABLE = ("channel", "direction", "subject", "notes", "purpose", "outcome", "occurred_at",
            "duration_seconds", "visible_in_portal", "followup_due", "followup_assignee",
            "followup_done", "followup_note")


class InteractionError(ValueError):
    """Bad input for an interaction. ``field``/``message`` name the first problem; ``errors``
    maps every field found wrong to its message (forms show them all)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        self.field, self.message = next(iter(self.errors.items()))
        super().__init__(f"{self.field}: {self.message}")


class InteractionNotFound(LookupError):
    """No such interaction within the actor's scope (answer 404, never 403)."""


# --- cleaning input --------------------------------------------------------------------------


def as_utc(value: Any, field: str, errors: dict[str, str], *, end_of_day: bool = False
           ) -> datetime | None:
    """A timestamp from a datetime, a date or ISO text; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = datetime.fromisoformat(text) if "T" in text or " " in text or ":" in text \
                else date.fromisoformat(text)
        except ValueError:
            errors[field] = "is not a date and time (use YYYY-MM-DD HH:MM)"
            return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(17, 0) if end_of_day else time(9, 0), tzinfo=UTC)
    errors[field] = "is not a date and time"
    return None


def _text(values: dict[str, Any], name: str, raw: Any, errors: dict[str, str]) -> None:
    if isinstance(raw, records.Append):  # added to the stored text under the row's lock
        if len(raw.text) > TEXT_LIMITS[name]:
            errors[name] = f"is too long (at most {TEXT_LIMITS[name]} characters)"
        values[name] = raw
        return
    text = "" if raw is None else str(raw).strip()
    if len(text) > TEXT_LIMITS[name]:
        errors[name] = f"is too long (at most {TEXT_LIMITS[name]} characters)"
    values[name] = text


def _int_or_none(raw: Any, field: str, errors: dict[str, str]) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        errors[field] = "must be a whole number"
        return None


def _clean_channel(channel: Any, errors: dict[str, str]) -> str:
    value = str(channel or "").strip().lower()
    if value not in CHANNELS:
        errors["channel"] = (f"must be one of {', '.join(CHANNELS)}" if value
                             else "is required")
    return value


def _clean_direction(direction: Any, errors: dict[str, str]) -> str:
    value = str(direction or "none").strip().lower()
    if value not in DIRECTIONS:
        errors["direction"] = f"must be one of {', '.join(DIRECTIONS)}"
    return value


def _clean_duration(raw: Any, errors: dict[str, str]) -> int | None:
    seconds = _int_or_none(raw, "duration_seconds", errors)
    if seconds is not None and not 0 <= seconds <= MAX_DURATION:
        errors["duration_seconds"] = "must be between 0 and 604800 seconds (a week)"
    return seconds


async def _check_assignee(rapport: Rapport, actor: Actor | None, user_id: int | None,
                          errors: dict[str, str], permission: str, current: Any = None) -> None:
    """A follow-up goes to someone ``actor`` may give work to (core.references)."""
    try:
        await references.owner(rapport, actor, "followup_assignee", user_id, permission,
                               current=current)
    except references.ReferenceRefused as exc:
        errors["followup_assignee"] = exc.message


def customer_scope(rapport: Rapport, actor: Actor | None) -> Any | None:
    """Where-clause on ``core_customer`` for the customers ``actor`` may record touch points
    with (``None``: any). Plugins and system jobs recording without an actor are trusted."""
    if actor is None or actor.kind == "anonymous":
        return None
    if actor.kind == "portal":
        return Customer.id == actor.customer_id if actor.customer_id else WhereRaw("1 = 0")
    return row_filter(rapport, actor, "core.customer.view", Customer)


async def _visible_customers(rapport: Rapport, actor: Actor | None, ids: Iterable[int]
                             ) -> set[int]:
    ids = sorted(set(ids))
    if not ids:
        return set()
    query = Customer.select(Customer.id).where(Customer.id.is_in(ids))
    where = customer_scope(rapport, actor)
    if where is not None:
        query = query.where(where)
    return {row["id"] for row in await query.run()}


# --- recording -------------------------------------------------------------------------------


def event_payload(row: dict[str, Any], participants: Iterable[int] = ()) -> dict[str, Any]:
    """What events about an interaction carry: ids that let listeners decide who may see it."""
    return {
        "id": row["id"], "customer_id": row["customer"], "channel": row["channel"],
        "direction": row["direction"], "user_id": row["user"],
        "followup_assignee": row["followup_assignee"], "followup_done": row["followup_done"],
        "participants": sorted(set(participants)), "plugin": row["plugin"],
        "plugin_record": row["plugin_record"],
    }


async def find_by_client_id(client_id: str) -> dict[str, Any] | None:
    return await Interaction.select().where(Interaction.client_id == client_id).first().run()


async def record_interaction(
    rapport: Rapport,
    actor: Actor | None,
    *,
    customer_id: int,
    channel: str,
    direction: str = "none",
    subject: str = "",
    notes: str = "",
    purpose: str = "",
    outcome: str = "",
    occurred_at: datetime | date | str | None = None,
    duration_seconds: int | None = None,
    participants: Iterable[int] = (),
    followup_due: datetime | date | str | None = None,
    followup_assignee: int | None = None,
    followup_note: str = "",
    plugin: str | None = None,
    plugin_record: str | int | None = None,
    client_id: str | None = None,
    visible_in_portal: bool | None = None,
    ip: str = "",
) -> tuple[dict[str, Any], bool]:
    """Record one touch point; return ``(row, created)``.

    ``created`` is ``False`` when ``client_id`` was recorded before: the stored row comes back
    unchanged (replays are harmless). The actor must be able to see the customer (and the
    participants); ``None`` means a trusted system or plugin job. A follow-up due date without
    an assignee is assigned to the actor. ``visible_in_portal`` defaults to true only for the
    ``portal`` channel. Raises :class:`InteractionError` naming every bad field.
    """
    client_id = (str(client_id).strip() or None) if client_id is not None else None
    if client_id is not None:
        existing = await find_by_client_id(client_id)
        if existing is not None:
            return existing, False

    errors: dict[str, str] = {}
    values: dict[str, Any] = {"channel": _clean_channel(channel, errors),
                              "direction": _clean_direction(direction, errors)}
    for name, raw in (("subject", subject), ("notes", notes), ("purpose", purpose),
                      ("outcome", outcome), ("followup_note", followup_note)):
        _text(values, name, raw, errors)
    for name, raw in (("plugin", plugin), ("plugin_record", plugin_record),
                      ("client_id", client_id)):
        if raw is None:
            values[name] = None
        else:
            _text(values, name, raw, errors)
            values[name] = values[name] or None
    now = datetime.now(UTC)
    values["occurred_at"] = as_utc(occurred_at, "occurred_at", errors) or now
    values["duration_seconds"] = _clean_duration(duration_seconds, errors)
    values["followup_due"] = as_utc(followup_due, "followup_due", errors)
    assignee = _int_or_none(followup_assignee, "followup_assignee", errors)
    if values["followup_due"] is not None and assignee is None and actor is not None:
        assignee = actor.id if actor.kind == "staff" else None
    if assignee is not None and values["followup_due"] is None:
        errors.setdefault("followup_due", "is required when someone is to follow up")
    await _check_assignee(rapport, actor, assignee, errors, "core.interaction.create")
    values["followup_assignee"] = assignee
    values["followup_done"] = False
    values["visible_in_portal"] = (values["channel"] == "portal" if visible_in_portal is None
                                   else bool(visible_in_portal))

    customer = _int_or_none(customer_id, "customer_id", errors)
    others: list[int] = []
    for raw in participants or ():
        pid = _int_or_none(raw, "participants", errors)
        if pid is not None and pid != customer and pid not in others:
            others.append(pid)
    if len(others) > MAX_PARTICIPANTS:
        errors["participants"] = f"at most {MAX_PARTICIPANTS} other customers"
    if customer is not None or others:
        visible = await _visible_customers(rapport, actor, [c for c in [customer, *others]
                                                            if c is not None])
        if customer is not None and customer not in visible:
            errors["customer_id"] = "no such customer"
        if any(p not in visible for p in others):
            errors.setdefault("participants", "names a customer that does not exist")
    elif "customer_id" not in errors:
        errors["customer_id"] = "is required"
    if errors:
        raise InteractionError(errors)

    values.update(customer=customer, created_at=now, updated_at=now,
                  user=actor.id if actor is not None and actor.kind == "staff" else None)
    try:
        async with Interaction._meta.db.transaction():
            row = await records.create(actor, Interaction, values, ip=ip,
                                       summary=f"{values['channel']} with customer {customer}")
            if others:
                await InteractionParticipant.insert(*[
                    InteractionParticipant(interaction=row["id"], customer=p) for p in others
                ]).run()
            if row["followup_due"] is not None:
                await _follow_up_changed(rapport, row, actor)
    except Exception:
        # Two uploads of the same client_id raced: the loser answers like a replay.
        if client_id is not None and (existing := await find_by_client_id(client_id)):
            return existing, False
        raise
    await _publish(rapport, EVENT_CREATED, event_payload(row, others), actor)
    return row, True


async def _follow_up_changed(rapport: Rapport, row: dict[str, Any], actor: Actor | None
                             ) -> None:
    """Announce ``core.followup.changed`` (durable) in the open transaction of the change:
    the event exists if and only if the change commits, and its subscribers (the field app's
    reminders) get it at least once, in order per interaction."""
    await rapport.publish(EVENT_FOLLOWUP_CHANGED, {"id": row["id"], "customer_id": row["customer"]},
                          actor_id=actor.id if actor else None, key=f"interaction:{row['id']}")


async def _publish(rapport: Rapport, name: str, payload: dict[str, Any],
                   actor: Actor | None) -> None:
    """Announce a change once it is committed: now, or when a caller's open transaction (a
    change made under :func:`core.records.lock`) commits; never if it rolls back."""

    async def announce() -> None:
        try:
            await rapport.publish(name, payload, actor_id=actor.id if actor else None)
        except Exception:  # the interaction is committed; a failing announcement must not undo it
            log.exception("publishing %s failed", name)

    if not db.after_commit(Interaction._meta.db, announce):
        await announce()


# --- reading ---------------------------------------------------------------------------------


async def participants_of(interaction_ids: Iterable[int]) -> dict[int, list[int]]:
    """Other customers involved, per interaction, in one query."""
    ids = sorted(set(interaction_ids))
    found: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        rows = await InteractionParticipant.select(
            InteractionParticipant.interaction, InteractionParticipant.customer
        ).where(InteractionParticipant.interaction.is_in(ids)).run()
        for row in rows:
            found[row["interaction"]].append(row["customer"])
    return found


async def get_interaction(rapport: Rapport, actor: Actor, interaction_id: int,
                          permission: str = "core.interaction.view") -> dict[str, Any]:
    """The row if ``actor`` may reach it with ``permission``; else InteractionNotFound."""
    query = scoped(Interaction.select().where(Interaction.id == interaction_id), rapport, actor,
                   permission, Interaction)
    row = await query.first().run()
    if row is None:
        raise InteractionNotFound(f"interaction {interaction_id} does not exist")
    return row


# --- changing --------------------------------------------------------------------------------


async def update_interaction(rapport: Rapport, actor: Actor, interaction_id: int,
                             changes: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Change the fields given (see ``EDITABLE``); needs ``core.interaction.edit`` on the
    interaction. Returns the row after the change; announces ``core.interaction.updated``."""
    current = await get_interaction(rapport, actor, interaction_id, "core.interaction.edit")
    unknown = sorted(set(changes) - set(EDITABLE))
    errors: dict[str, str] = {name: "cannot be changed" for name in unknown}
    values: dict[str, Any] = {}
    for name, raw in changes.items():
        if name == "channel":
            values[name] = _clean_channel(raw, errors)
        elif name == "direction":
            values[name] = _clean_direction(raw, errors)
        elif name in ("subject", "notes", "purpose", "outcome", "followup_note"):
            _text(values, name, raw, errors)
        elif name == "occurred_at":
            values[name] = as_utc(raw, name, errors)
            if values[name] is None:
                errors.setdefault(name, "is required")
        elif name == "duration_seconds":
            values[name] = _clean_duration(raw, errors)
        elif name == "followup_due":
            values[name] = as_utc(raw, name, errors)
        elif name == "followup_assignee":
            values[name] = _int_or_none(raw, name, errors)
            await _check_assignee(rapport, actor, values[name], errors, "core.interaction.edit",
                                  current["followup_assignee"])
        elif name in ("visible_in_portal", "followup_done"):
            values[name] = _boolean(raw)
    due = values.get("followup_due", current["followup_due"])
    if values.get("followup_assignee", current["followup_assignee"]) is not None and due is None:
        if "followup_due" in values:
            values["followup_assignee"] = None  # clearing the due date clears the follow-up
        else:
            errors.setdefault("followup_due", "is required when someone is to follow up")
    if "followup_due" in values and due is not None and values.get(
            "followup_assignee", current["followup_assignee"]) is None:
        values["followup_assignee"] = actor.id
    if errors:
        raise InteractionError(errors)
    values["updated_at"] = datetime.now(UTC)
    async with Interaction._meta.db.transaction():
        row = await records.update(actor, Interaction, interaction_id, values, ip=ip)
        if any(name.startswith("followup_") for name in values):
            await _follow_up_changed(rapport, row, actor)
    others = (await participants_of([interaction_id]))[interaction_id]
    await _publish(rapport, EVENT_UPDATED, event_payload(row, others), actor)
    if values.get("followup_done") and not current["followup_done"]:
        await _publish(rapport, EVENT_FOLLOWUP_DONE, event_payload(row, others), actor)
    return row


def _boolean(raw: Any) -> bool:
    if isinstance(raw, str):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return bool(raw)


async def complete_followup(rapport: Rapport, actor: Actor, interaction_id: int, *,
                            done: bool = True, note: str | None = None, ip: str = ""
                            ) -> dict[str, Any]:
    """Mark a follow-up done (or not done again). The assignee may always do so; others need
    ``core.interaction.edit`` on the interaction. Announces ``core.followup.completed``."""
    query = Interaction.select().where(Interaction.id == interaction_id)
    mine = await query.where(Interaction.followup_assignee == actor.id).first().run()
    current = mine or await get_interaction(rapport, actor, interaction_id,
                                            "core.interaction.edit")
    if current["followup_due"] is None:
        raise InteractionError({"followup_due": "this interaction has no follow-up"})
    values: dict[str, Any] = {"followup_done": bool(done), "updated_at": datetime.now(UTC)}
    if note is not None:
        _text(values, "followup_note", note, errors := {})
        if errors:
            raise InteractionError(errors)
    async with Interaction._meta.db.transaction():
        row = await records.update(actor, Interaction, interaction_id, values, ip=ip,
                                   summary="follow-up done" if done else "follow-up reopened")
        await _follow_up_changed(rapport, row, actor)
    others = (await participants_of([interaction_id]))[interaction_id]
    payload = event_payload(row, others)
    await _publish(rapport, EVENT_FOLLOWUP_DONE if done else EVENT_UPDATED, payload, actor)
    return row


BULK_ACTIONS = {"complete_followups": "Mark follow-ups done",
                "assign_followups": "Give follow-ups to"}
BULK_MAX = 500  # interactions one bulk action may touch


async def bulk_followups(rapport: Rapport, actor: Actor, action: str, ids: Iterable[int], *,
                         assignee: int | None = None, ip: str = "") -> int:
    """Mark the open follow-ups among ``ids`` done, or give them to ``assignee``, in one
    transaction (audited per interaction), and announce each change after the commit.

    Only interactions ``actor`` may edit are touched (and, for marking done, also the ones
    assigned to ``actor``, as for a single follow-up); others in ``ids`` are left alone.
    Returns how many changed."""
    errors: dict[str, str] = {}
    if action not in BULK_ACTIONS:
        errors["action"] = f"must be one of {', '.join(BULK_ACTIONS)}"
    wanted = sorted({int(i) for i in ids})[:BULK_MAX]
    if not wanted:
        errors["ids"] = "select at least one interaction"
    if action == "assign_followups":
        if assignee is None:
            errors["assignee"] = "choose who is to follow up"
        else:
            found: dict[str, str] = {}
            await _check_assignee(rapport, actor, assignee, found, "core.interaction.edit")
            if found:
                errors["assignee"] = next(iter(found.values()))
    if errors:
        raise InteractionError(errors)
    open_ones = Interaction.select(Interaction.id, Interaction.followup_assignee).where(
        Interaction.id.is_in(wanted) & Interaction.followup_due.is_not_null()
        & (Interaction.followup_done == False))  # noqa: E712
    rows = {r["id"]: r for r in await scoped(open_ones, rapport, actor, "core.interaction.edit",
                                             Interaction).run()}
    if action == "complete_followups":
        mine = Interaction.select(Interaction.id, Interaction.followup_assignee).where(
            Interaction.id.is_in(wanted) & Interaction.followup_due.is_not_null()
            & (Interaction.followup_done == False)  # noqa: E712
            & (Interaction.followup_assignee == actor.id))
        rows.update({r["id"]: r for r in await mine.run()})
        values: dict[str, Any] = {"followup_done": True}
        summary, event = "bulk: follow-up done", EVENT_FOLLOWUP_DONE
    else:
        rows = {i: r for i, r in rows.items() if r["followup_assignee"] != assignee}
        values = {"followup_assignee": assignee}
        summary, event = "bulk: follow-up given to another", EVENT_UPDATED
    changed = []
    async with Interaction._meta.db.transaction():
        for interaction_id in sorted(rows):
            changed.append(await records.update(
                actor, Interaction, interaction_id, {**values, "updated_at": datetime.now(UTC)},
                ip=ip, summary=summary))
            await _follow_up_changed(rapport, changed[-1], actor)
    others = await participants_of(row["id"] for row in changed)
    for row in changed:
        await _publish(rapport, event, event_payload(row, others[row["id"]]), actor)
    return len(changed)


# --- follow-ups ------------------------------------------------------------------------------


def day_bounds(day: date, tz=UTC) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
    return start, start + timedelta(days=1)


async def my_followups(user_id: int, *, today: date | None = None, limit: int = 100
                       ) -> dict[str, list[dict[str, Any]]]:
    """A user's open follow-ups: ``overdue``, ``today`` and ``upcoming`` (next 14 days),
    each bounded by ``limit`` and read through the "my day" index."""
    start, end = day_bounds(today or datetime.now(UTC).date())

    async def open_due(window) -> list[dict[str, Any]]:
        return await Interaction.select(
            Interaction.id, Interaction.customer, Interaction.customer.name,
            Interaction.channel, Interaction.subject, Interaction.followup_due,
            Interaction.followup_note, Interaction.occurred_at,
        ).where(
            (Interaction.followup_assignee == user_id)
            & (Interaction.followup_done == False)  # noqa: E712
            & window
        ).order_by(Interaction.followup_due).order_by(Interaction.id).limit(limit).run()

    overdue = await open_due(Interaction.followup_due < start)
    due_today = await open_due((Interaction.followup_due >= start)
                               & (Interaction.followup_due < end))
    upcoming = await open_due((Interaction.followup_due >= end)
                              & (Interaction.followup_due < end + timedelta(days=14)))
    return {"overdue": overdue, "today": due_today, "upcoming": upcoming}
