"""Merging two customer records into one.

The survivor keeps its id; the merged record's emails, phones, addresses, tags, consent
records, custom values, an account's contacts, every interaction and every plugin-owned record
move to the survivor, and the merged record is deleted. It all happens in ONE transaction:
plugins re-point their records through the ``merge_customers`` hook, and anything still
pointing at the merged customer afterwards (a table whose owner has no hook implementation)
is re-pointed generically, so nothing is lost to an ``ON DELETE CASCADE``.

    preview = await preview_merge(rapport, actor, survivor_id, merged_id)
    await merge_customers(rapport, actor, survivor_id, merged_id, take_from_merged={"job_title"})
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from core import audit, records
from core.customers import service
from core.customers.service import CustomerNotFound, get_customer
from core.customers.tables import (
    ConsentRecord,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomerTag,
)
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport

# Columns whose value the person merging may take from either record, with their labels.
MERGEABLE_FIELDS: dict[str, str] = {
    "name": "Name",
    "first_name": "First name",
    "last_name": "Last name",
    "job_title": "Job title",
    "account": "Account",
    "owner": "Owner",
    "team": "Team",
    "lifecycle_stage": "Lifecycle stage",
    "source": "Source",
    "primary_email": "Main email",
    "primary_phone": "Main phone",
    "website": "Website",
    "industry": "Industry",
    "birthday": "Birthday",
    "preferred_channel": "Preferred channel",
    "opted_out_channels": "Opted-out channels",
    "do_not_contact": "Do not contact",
    "annual_revenue": "Annual revenue",
    "currency": "Currency",
    "notes": "Notes",
}


class MergeError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class FieldChoice:
    name: str
    label: str
    survivor: Any
    merged: Any

    @property
    def differs(self) -> bool:
        return self.survivor != self.merged


@dataclass
class MergePreview:
    survivor: dict[str, Any]
    merged: dict[str, Any]
    fields: list[FieldChoice]
    moving: dict[str, int] = field(default_factory=dict)  # what moves, e.g. {"emails": 2}


def customer_references(rapport: Rapport) -> list[tuple[type[Table], Any]]:
    """Every (table, column) of this instance's Piccolo apps that points at a customer."""
    found = []
    for app in rapport.piccolo_apps():
        for table in app.table_classes:
            for column in table._meta.foreign_key_columns:
                target = column._foreign_key_meta.resolved_references
                if target._meta.tablename == Customer._meta.tablename:
                    found.append((table, column))
    return found


async def _load_pair(rapport: Rapport, actor: Actor | None, survivor_id: int, merged_id: int
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    if survivor_id == merged_id:
        raise MergeError("merged", "a customer cannot be merged with itself")
    # Both need core.customer.edit within the actor's scope; otherwise "not found".
    survivor = await get_customer(rapport, actor, survivor_id, "core.customer.edit")
    merged = await get_customer(rapport, actor, merged_id, "core.customer.edit")
    if survivor["kind"] != merged["kind"]:
        raise MergeError("merged", f"a {survivor['kind']} can only be merged with another "
                                   f"{survivor['kind']}")
    return survivor, merged


async def preview_merge(rapport: Rapport, actor: Actor | None, survivor_id: int,
                        merged_id: int) -> MergePreview:
    """Both records side by side and what would move; changes nothing."""
    survivor, merged = await _load_pair(rapport, actor, survivor_id, merged_id)
    fields = [FieldChoice(n, label, survivor.get(n), merged.get(n))
              for n, label in MERGEABLE_FIELDS.items()
              if n in survivor and not (survivor["kind"] == "account" and n in (
                  "first_name", "last_name", "account", "birthday"))]
    moving = {}
    for label, table in (("emails", CustomerEmail), ("phones", CustomerPhone),
                         ("addresses", CustomerAddress), ("tags", CustomerTag),
                         ("consent records", ConsentRecord)):
        moving[label] = await table.count().where(table.customer == merged_id).run()
    if merged["kind"] == "account":
        moving["contacts"] = await Customer.count().where(Customer.account == merged_id).run()
    return MergePreview(survivor=survivor, merged=merged, fields=fields, moving=moving)


async def _drop_repeats(table: type[Table], column_name: str, survivor_id: int,
                        merged_id: int) -> None:
    """Delete the merged customer's rows that the survivor already has (same value)."""
    column = getattr(table, column_name)
    have = {r[column_name] for r in await table.select(column).where(
        table.customer == survivor_id).run()}
    if have:
        await table.delete().where((table.customer == merged_id) & column.is_in(sorted(have))
                                   ).run()


async def merge_customers(rapport: Rapport, actor: Actor | None, survivor_id: int,
                          merged_id: int, *, take_from_merged: set[str] | frozenset[str] = frozenset(),
                          ip: str = "") -> dict[str, Any]:
    """Merge ``merged_id`` into ``survivor_id``; return the survivor's row afterwards.

    ``take_from_merged`` names the fields (of :data:`MERGEABLE_FIELDS`) whose value the
    merged record supplies; every other field keeps the survivor's value. Needs
    ``core.customer.edit`` on both records (else :class:`CustomerNotFound`). Audited as
    ``merge`` on the survivor, naming both ids.
    """
    unknown = sorted(set(take_from_merged) - set(MERGEABLE_FIELDS))
    if unknown:
        raise MergeError(unknown[0], "is not a field that can be merged")
    async with Customer._meta.db.transaction():
        survivor, merged = await _load_pair(rapport, actor, survivor_id, merged_id)
        changes = {n: merged[n] for n in take_from_merged if merged.get(n) != survivor.get(n)}
        if changes.get("account") == survivor_id:
            raise MergeError("account", "a customer cannot belong to itself")

        # Sub-records the survivor already has would be repeats: drop those, move the rest.
        await _drop_repeats(CustomerEmail, "email", survivor_id, merged_id)
        await _drop_repeats(CustomerPhone, "phone", survivor_id, merged_id)
        await _drop_repeats(CustomerTag, "tag", survivor_id, merged_id)
        await _merge_custom_values(survivor_id, merged_id, prefer_merged=False)

        # Plugins (and core areas such as interactions) re-point their own records first...
        for _, result in rapport.call_in_order("merge_customers", rapport=rapport,
                                               survivor_id=survivor_id, merged_id=merged_id):
            if inspect.isawaitable(result):
                await result
        # ...then whatever still points at the merged customer follows it.
        for table, column in customer_references(rapport):
            await table.update({column: survivor_id}).where(column == merged_id).run()

        if changes:
            changes["updated_at"] = datetime.now(UTC)
            await records.update(actor, Customer, survivor_id, changes, ip=ip,
                                 summary=f"merge: values taken from customer {merged_id}")
        else:
            await Customer.update({Customer.updated_at: datetime.now(UTC)}).where(
                Customer.id == survivor_id).run()
        await records.delete(actor, Customer, merged_id, ip=ip,
                             summary=f"merged into customer {survivor_id}")
        await audit.record(
            actor, "merge", Customer._meta.tablename, survivor_id,
            {"survivor_id": [survivor_id, survivor_id], "merged_id": [merged_id, None],
             "merged_name": [merged["name"], None],
             "fields_taken": [None, sorted(changes.keys() - {"updated_at"})]},
            summary=f"Merged customer {merged_id} ({merged['name']}) into {survivor_id} "
                    f"({survivor['name']})", ip=ip)
        row = await Customer.select().where(Customer.id == survivor_id).first().run()
        payload = service.event_payload(row, before=survivor)
        payload.update(merged_id=merged_id, merged_owner=merged.get("owner"),
                       merged_team=merged.get("team"))
        # Durable: recorded in the merge's transaction, so it happened iff this commits.
        await service.announce_durable(rapport, actor, service.EVENT_MERGED, payload)
    return row


async def _merge_custom_values(survivor_id: int, merged_id: int, *, prefer_merged: bool) -> None:
    """Custom values: one value per field, the survivor's where both have one."""
    try:
        from core.customers.tables import CustomValue
    except ImportError:  # custom fields not installed in this schema version
        return
    keep, drop = (merged_id, survivor_id) if prefer_merged else (survivor_id, merged_id)
    fields = {r["field"] for r in await CustomValue.select(CustomValue.field).where(
        CustomValue.customer == keep).run()}
    if fields:
        await CustomValue.delete().where(
            (CustomValue.customer == drop) & CustomValue.field.is_in(sorted(fields))).run()


__all__ = ["CustomerNotFound", "MergeError", "MergePreview", "merge_customers", "preview_merge"]
