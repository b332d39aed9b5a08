"""Export, erasure and consent for one customer (usually a contact, a person).

Completeness comes from construction, not from lists kept by hand: the export holds every
column of every table named in ``core.customers.tables.PERSONAL_DATA`` (plus the customer's
tags and consent log), and every core area and plugin adds its own sections through the
``privacy_export`` hook; erasure blanks every ``PERSONAL_DATA`` column, removes the
sub-records and calls ``privacy_erase`` in the same transaction.
"""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from core import audit
from core.customers.tables import (
    CHANNELS,
    PERSONAL_DATA,
    ConsentRecord,
    Customer,
    CustomerTag,
)
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport

EXPORT_FORMAT = "rapport.privacy-export"
EXPORT_VERSION = 1
ERASED_NAME = "Erased customer"

# Related rows that are not personal data themselves but belong in a subject's export.
RELATED: tuple[type[Table], ...] = (CustomerTag, ConsentRecord)


class PrivacyError(ValueError):
    """Bad input for a privacy action; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def jsonable(value: Any) -> Any:
    """Rows as plain JSON values: dates as ISO 8601, decimals as strings (never floats)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def _sub_tables() -> list[type[Table]]:
    """Tables holding a customer's rows through a ``customer`` column, personal ones first."""
    tables = [t for t in PERSONAL_DATA if t is not Customer]
    return tables + [t for t in RELATED if t not in tables]


def _secret_columns(table: type[Table]) -> set[str]:
    return {c._meta.name for c in table._meta.columns if getattr(c._meta, "secret", False)}


def _without_secrets(table: type[Table], row: dict[str, Any]) -> dict[str, Any]:
    secret = _secret_columns(table)
    return {k: v for k, v in row.items() if k not in secret}


async def export_customer(rapport: Rapport, customer_id: int) -> dict[str, Any] | None:
    """Everything Rapport holds about a customer, as JSON-ready data; ``None`` if unknown.

    Sections are named by table (``core_customer_email``) for core's customer tables and by
    whatever name each area or plugin chose for the rest. Callers check permissions first.
    """
    customer = await Customer.select().where(Customer.id == customer_id).first().run()
    if customer is None:
        return None
    sections: dict[str, Any] = {Customer._meta.tablename: _without_secrets(Customer, customer)}
    for table in _sub_tables():
        rows = await table.select().where(table._meta.get_column_by_name("customer")
                                          == customer_id).order_by(table._meta.primary_key).run()
        sections[table._meta.tablename] = [_without_secrets(table, r) for r in rows]
    for plugin_name, result in rapport.call_in_order("privacy_export", rapport=rapport,
                                                     customer_id=customer_id):
        if inspect.isawaitable(result):
            result = await result
        for name, value in (result or {}).items():
            # Two areas choosing the same section name must not overwrite each other.
            key = name if name not in sections else f"{plugin_name}:{name}"
            sections[key] = value
    return jsonable({
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": datetime.now(UTC),
        "instance": rapport.settings.instance_name,
        "customer_id": customer_id,
        "personal_data_fields": {t._meta.tablename: list(f) for t, f in PERSONAL_DATA.items()},
        "sections": sections,
    })


def _blank(table: type[Table], field: str) -> Any:
    """The value an erased personal field gets: NULL where allowed, else empty."""
    column = table._meta.get_column_by_name(field)
    if column._meta.null:
        return None
    if field == "name" and table is Customer:
        return ERASED_NAME
    default = column.default
    return default if isinstance(default, str | int | bool | Decimal) else ""


async def erase_customer(rapport: Rapport, actor: Actor | None, customer_id: int, *,
                         ip: str = "") -> dict[str, int]:
    """Erase a customer's personal data, all or nothing; return rows removed per table.

    Personal fields of the customer row are blanked (the row stays, so amounts, counts and
    dates that refer to it keep adding up), sub-records are removed, ``erased_at`` is set,
    every area's ``privacy_erase`` runs in the same transaction, and the audit log's earlier
    entries about these rows have their values redacted. The erasure itself is audited with
    counts only, never the data it removed.
    """
    removed: dict[str, int] = {}
    async with Customer._meta.db.transaction():
        customer = await Customer.select(Customer.id, Customer.erased_at).where(
            Customer.id == customer_id).first().run()
        if customer is None:
            raise PrivacyError("customer", "does not exist")
        touched: dict[str, list[Any]] = {Customer._meta.tablename: [customer_id]}
        for table in _sub_tables():
            if table is ConsentRecord:
                continue  # the consent log is the evidence for what was allowed, and when
            customer_column = table._meta.get_column_by_name("customer")
            ids = [r["id"] for r in await table.select(table._meta.primary_key).where(
                customer_column == customer_id).run()]
            if ids:
                await table.delete().where(customer_column == customer_id).run()
            removed[table._meta.tablename] = len(ids)
            touched[table._meta.tablename] = ids
        columns = {c._meta.name: c for c in Customer._meta.columns}
        changes = {columns[f]: _blank(Customer, f) for f in PERSONAL_DATA[Customer]}
        now = datetime.now(UTC)
        changes[columns["erased_at"]] = now
        changes[columns["updated_at"]] = now
        # An erased person is never contacted again.
        if "do_not_contact" in columns:
            changes[columns["do_not_contact"]] = True
        if "opted_out_channels" in columns:
            changes[columns["opted_out_channels"]] = ",".join(CHANNELS)
        if "preferred_channel" in columns:
            changes[columns["preferred_channel"]] = ""
        await Customer.update(changes).where(Customer.id == customer_id).run()
        # Core's redaction first: an area's hook may redact by actor, which marks entries
        # as redacted, and each entry is redacted only once.
        for record_type, ids in touched.items():
            await audit.redact(record_type, ids)
        for _, result in rapport.call_in_order("privacy_erase", rapport=rapport,
                                               customer_id=customer_id):
            if inspect.isawaitable(result):
                await result
        await audit.record(
            actor, "privacy_erase", Customer._meta.tablename, customer_id,
            summary="personal data erased; removed "
            + (", ".join(f"{n} {t}" for t, n in sorted(removed.items()) if n) or "no sub-records"),
            ip=ip,
        )
    return removed


async def record_consent(actor: Actor | None, customer_id: int, purpose: str, granted: bool,
                         source: str, channel: str = "", *, rapport: Rapport | None,
                         ip: str = "") -> dict[str, Any]:
    """Append consent given (``granted``) or withdrawn to the customer's consent log.

    The log is never edited: the latest record for a purpose (and channel) is what holds.
    The durable ``core.customer.consent_changed`` is published in the same transaction
    (``rapport`` None, a system write without an instance, announces nothing).
    """
    from core.customers.service import announce_consent_changed

    purpose, source, channel = purpose.strip(), source.strip(), channel.strip()
    if not purpose:
        raise PrivacyError("purpose", "Say what the consent is for.")
    if len(purpose) > 100:
        raise PrivacyError("purpose", "Keep it under 100 characters.")
    if not source:
        raise PrivacyError("source", "Say how the consent was given or withdrawn.")
    if channel and channel not in CHANNELS:
        raise PrivacyError("channel", f"Choose one of: {', '.join(CHANNELS)}.")
    staff_id = actor.id if actor is not None and actor.kind == "staff" else None
    async with ConsentRecord._meta.db.transaction():
        rows = await ConsentRecord.insert(ConsentRecord(
            customer=customer_id, purpose=purpose, channel=channel, granted=granted,
            source=source[:100], recorded_at=datetime.now(UTC), recorded_by=staff_id,
        )).returning(*ConsentRecord._meta.columns).run()
        await audit.record(
            actor, "consent_given" if granted else "consent_withdrawn",
            ConsentRecord._meta.tablename, rows[0]["id"],
            audit.diff(None, {"customer": customer_id, "purpose": purpose, "channel": channel,
                              "granted": granted, "source": source[:100]}),
            ip=ip,
        )
        await announce_consent_changed(rapport, actor, customer_id, ["consent"], consent={
            "id": rows[0]["id"], "purpose": purpose, "channel": channel, "granted": granted,
            "source": source[:100]})
    return rows[0]


async def consent_log(customer_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The customer's consent records, newest first."""
    return await ConsentRecord.select().where(ConsentRecord.customer == customer_id).order_by(
        ConsentRecord.recorded_at, ascending=False).order_by(
        ConsentRecord.id, ascending=False).limit(limit).run()


async def current_consents(customer_id: int) -> dict[tuple[str, str], bool]:
    """What holds now: the latest record per (purpose, channel)."""
    result: dict[tuple[str, str], bool] = {}
    for row in reversed(await consent_log(customer_id, limit=1000)):
        result[(row["purpose"], row["channel"])] = row["granted"]
    return result
