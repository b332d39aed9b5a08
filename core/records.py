"""Audited writes. Core and plugins change records through these helpers so every change is
in the audit log with before and after values, written in the same transaction.

    row = await records.create(actor, Contact, {"name": "Ada"}, ip=request_ip)
    await records.update(actor, Contact, row["id"], {"name": "Ada L."})
    await records.delete(actor, Contact, row["id"])

Concurrent changes of one row never lose each other: ``update`` and ``delete`` read the row
under a lock (:func:`lock`) and apply the change in the same transaction, and a change that
adds to what is there (:class:`Append`) is computed from the locked row, never from a copy
read earlier. Code that decides on a row's current state (a version check, "has it changed
since the device saw it?") takes :func:`lock` in its own transaction first.

Each can also announce the change (docs/events.md): with ``event=records.Emit(rapport,
"visit_notes.note.created", key=...)`` a durable event is written in the same transaction as
the row and its audit entry (an event that is not durable is published once it commits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from core import audit, db
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport


@dataclass(frozen=True)
class Emit:
    """The event a write announces. Its payload is ``{"id": <record id>}``, plus for an
    update ``"changed"`` (the names of the fields that changed; an update that changed
    nothing announces nothing), plus ``payload``. ``key`` (an aggregate such as
    ``"customer:12"``, docs/events.md) may be a function of the row as stored (after the
    write; before it, for a delete)."""

    rapport: Rapport
    name: str
    payload: dict[str, Any] | None = None
    key: str | Callable[[dict[str, Any]], str | None] | None = None


async def _announce(emit: Emit | None, actor: Actor | None, table: type[Table],
                    row: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    if emit is None:
        return
    rapport = emit.rapport
    event_type = rapport.event_types.get(emit.name)
    if event_type is None:
        raise ValueError(f"event {emit.name!r} is not declared by any plugin (register_events)")
    payload = {"id": row[table._meta.primary_key._meta.name], **(extra or {}),
               **(emit.payload or {})}
    key = emit.key(row) if callable(emit.key) else emit.key
    actor_id = actor.id if actor is not None and actor.kind == "staff" else None
    if event_type.durable:  # joins the write's transaction
        await rapport.publish(emit.name, payload, actor_id, key=key)
        return

    async def announce() -> None:
        await rapport.publish(emit.name, payload, actor_id, key=key)

    if not db.after_commit(table._meta.db, announce):
        await announce()


class RecordNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Append:
    """A change adding ``text`` to the end of a text column: ``{"notes": Append("...")}``.
    Worked out on the locked row, so twenty simultaneous appends keep all twenty."""

    text: str


async def lock(table: type[Table], record_id: Any) -> dict[str, Any] | None:
    """Read one row and hold it against other writers until the open transaction ends
    (call it inside one). PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite: Rapport's
    transactions begin IMMEDIATE (core.db), so the whole database is held already."""
    query = table.select().where(table._meta.primary_key == record_id)
    if table._meta.db.engine_type == "postgres":
        query = query.lock_rows()
    return await query.first().run()


def _secret_columns(table: type[Table]) -> set[str]:
    return {c._meta.name for c in table._meta.columns if getattr(c._meta, "secret", False)}


def _public(table: type[Table], row: dict[str, Any]) -> dict[str, Any]:
    secret = _secret_columns(table)
    return {k: ("<secret>" if k in secret else v) for k, v in row.items()}


async def create(actor: Actor | None, table: type[Table], values: dict[str, Any], *,
                 ip: str = "", summary: str = "", event: Emit | None = None) -> dict[str, Any]:
    """Insert one row and audit it (and announce ``event``); return the row as stored."""
    async with table._meta.db.transaction():
        inserted = await table.insert(table(**values)).returning(*table._meta.columns).run()
        row = inserted[0]
        await audit.record(actor, "create", table._meta.tablename, row["id"],
                           audit.diff(None, _public(table, row)), summary=summary, ip=ip)
        await _announce(event, actor, table, row)
    return row


async def update(actor: Actor | None, table: type[Table], record_id: Any,
                 changes: dict[str, Any], *, ip: str = "", summary: str = "",
                 event: Emit | None = None) -> dict[str, Any]:
    """Change fields of one row and audit what changed (and announce ``event`` when
    something did); return the row after the change. A value may be :class:`Append` (added
    to the locked row's text)."""
    async with table._meta.db.transaction():
        before = await lock(table, record_id)
        if before is None:
            raise RecordNotFound(f"{table._meta.tablename} {record_id} does not exist")
        changes = {k: (before[k] or "") + v.text if isinstance(v, Append) else v
                   for k, v in changes.items()}
        columns = {c._meta.name: c for c in table._meta.columns}
        await table.update({columns[k]: v for k, v in changes.items()}).where(
            table._meta.primary_key == record_id).run()
        after = await table.select().where(table._meta.primary_key == record_id).first().run()
        delta = audit.diff(_public(table, before), _public(table, after))
        if delta:
            await audit.record(actor, "update", table._meta.tablename, record_id, delta,
                               summary=summary, ip=ip)
            await _announce(event, actor, table, after, {"changed": sorted(delta)})
    return after


async def delete(actor: Actor | None, table: type[Table], record_id: Any, *,
                 ip: str = "", summary: str = "", event: Emit | None = None) -> dict[str, Any]:
    """Delete one row and audit its last values (and announce ``event``); return them."""
    async with table._meta.db.transaction():
        before = await lock(table, record_id)
        if before is None:
            raise RecordNotFound(f"{table._meta.tablename} {record_id} does not exist")
        await table.delete().where(table._meta.primary_key == record_id).run()
        await audit.record(actor, "delete", table._meta.tablename, record_id,
                           audit.diff(_public(table, before), None), summary=summary, ip=ip)
        await _announce(event, actor, table, before)
    return before
