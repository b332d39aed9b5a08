"""The append-only audit log: who did what, when, from where, to which record.

Write it through :func:`record` (or, for record changes, through :mod:`core.records`, which
calls it inside the same transaction as the change). Nothing updates or deletes audit rows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from piccolo.columns import Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.permissions import Actor

if TYPE_CHECKING:
    from litestar import Request


def client_ip(request: Request) -> str:
    """The address a request came from, as audit entries and rate limits see it (behind a
    reverse proxy, set ``RAPPORT_TRUSTED_PROXIES`` so this is the client's, see
    docs/self-hosting.md)."""
    return request.client.host if request.client else ""


class AuditEntry(Table, tablename="core_audit_entry"):
    occurred_at = Timestamptz(default=TimestamptzNow(), index=True)
    actor_kind = Varchar(length=16)  # staff, portal, system, anonymous
    actor_id = Integer(null=True, default=None, index=True)
    actor_label = Varchar(length=254, default="")
    action = Varchar(length=64, index=True)  # create, update, delete, login, login_failed, ...
    record_type = Varchar(length=100, default="", index=True)  # a table name, e.g. core_customer
    record_id = Varchar(length=64, default="", index=True)
    ip = Varchar(length=64, default="")
    changes = Text(default="{}")  # JSON: {field: [before, after]}
    summary = Text(default="")
    # Set once when a privacy erasure blanks this entry's personal values (who, what, when
    # and which record stay): the database refuses every other UPDATE and every DELETE.
    redacted_at = Timestamptz(null=True, default=None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields that changed (all fields on create/delete)."""
    before, after = before or {}, after or {}
    fields = sorted(set(before) | set(after))
    return {
        f: [_jsonable(before.get(f)), _jsonable(after.get(f))]
        for f in fields
        if before.get(f) != after.get(f)
    }


SYSTEM = Actor(kind="anonymous", name="system")


async def record(
    actor: Actor | None,
    action: str,
    record_type: str = "",
    record_id: Any = "",
    changes: dict[str, list[Any]] | None = None,
    summary: str = "",
    ip: str = "",
) -> None:
    """Append one audit entry. Secret fields must never be passed in ``changes``."""
    actor = actor or SYSTEM
    kind = "system" if actor is SYSTEM else actor.kind
    await AuditEntry.insert(
        AuditEntry(
            occurred_at=datetime.now(UTC),
            actor_kind=kind,
            actor_id=actor.id,
            actor_label=actor.email or actor.name,
            action=action,
            record_type=record_type,
            record_id="" if record_id is None else str(record_id),
            ip=ip[:64],
            changes=json.dumps(changes or {}, default=str),
            summary=summary[:2000],
        )
    ).run()


ERASED = "<erased>"


async def redact(record_type: str, record_ids: list[Any], *, portal_actor_ids: list[int] = ()
                 ) -> int:
    """Blank the personal values of the entries about ``record_ids`` of ``record_type`` (and
    the IP addresses of entries made by the given portal identities), for a privacy erasure.

    Field names, actions, actors, record ids and times stay, so the trail keeps its shape;
    only the before/after values and the summary go. Returns how many entries were redacted.
    """
    now = datetime.now(UTC)
    count = 0
    ids = [str(i) for i in record_ids]
    if ids:
        rows = await AuditEntry.select(AuditEntry.id, AuditEntry.changes).where(
            (AuditEntry.record_type == record_type) & AuditEntry.record_id.is_in(ids)
            & AuditEntry.redacted_at.is_null()
        ).run()
        for row in rows:
            try:
                fields = json.loads(row["changes"] or "{}")
            except ValueError:
                fields = {}
            blanked = {name: [ERASED, ERASED] for name in fields}
            await AuditEntry.update({
                AuditEntry.changes: json.dumps(blanked),
                AuditEntry.summary: ERASED,
                AuditEntry.ip: "",
                AuditEntry.redacted_at: now,
            }).where(AuditEntry.id == row["id"]).run()
            count += 1
    if portal_actor_ids:
        count += len(await AuditEntry.update({
            AuditEntry.ip: "", AuditEntry.redacted_at: now,
        }).where(
            (AuditEntry.actor_kind == "portal") & AuditEntry.actor_id.is_in(list(portal_actor_ids))
            & AuditEntry.redacted_at.is_null()
        ).returning(AuditEntry.id).run())
    return count
