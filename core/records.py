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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piccolo.table import Table

from core import audit
from core.permissions import Actor


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
                 ip: str = "", summary: str = "") -> dict[str, Any]:
    """Insert one row and audit it; return the row as stored."""
    async with table._meta.db.transaction():
        inserted = await table.insert(table(**values)).returning(*table._meta.columns).run()
        row = inserted[0]
        await audit.record(actor, "create", table._meta.tablename, row["id"],
                           audit.diff(None, _public(table, row)), summary=summary, ip=ip)
    return row


async def update(actor: Actor | None, table: type[Table], record_id: Any,
                 changes: dict[str, Any], *, ip: str = "", summary: str = "") -> dict[str, Any]:
    """Change fields of one row and audit what changed; return the row after the change.
    A value may be :class:`Append` (added to the locked row's text)."""
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
    return after


async def delete(actor: Actor | None, table: type[Table], record_id: Any, *,
                 ip: str = "", summary: str = "") -> dict[str, Any]:
    """Delete one row and audit its last values; return them."""
    async with table._meta.db.transaction():
        before = await lock(table, record_id)
        if before is None:
            raise RecordNotFound(f"{table._meta.tablename} {record_id} does not exist")
        await table.delete().where(table._meta.primary_key == record_id).run()
        await audit.record(actor, "delete", table._meta.tablename, record_id,
                           audit.diff(_public(table, before), None), summary=summary, ip=ip)
    return before
