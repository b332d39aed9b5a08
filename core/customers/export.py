"""CSV export of a filtered customer list, streamed in keyset batches and audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from core import audit
from core.customers import custom_fields, listing
from core.permissions import Actor
from core.spreadsheet import csv_text

if TYPE_CHECKING:
    from core.app import Rapport

CSV_COLUMNS = ["id", "kind", "name", "first_name", "last_name", "job_title", "account_id",
               "account", "owner", "team", "lifecycle_stage", "source", "email", "phone",
               "website", "industry", "tags", "created_at", "updated_at"]


def redact(actor: Actor | None, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without the fields ``actor`` may not see (field-level permissions).

    Hidden fields are left out of the row. Uses ``core.permissions.redact`` when identity
    provides it; otherwise the actor's ``hidden_fields`` (``core_customer.<column>``).
    """
    if actor is None:
        return row
    from core import permissions

    redactor = getattr(permissions, "redact", None)
    if callable(redactor):
        return redactor(actor, "core_customer", row)
    hidden = {f.split(".", 1)[1] for f in actor.hidden_fields if f.startswith("core_customer.")}
    return {k: v for k, v in row.items() if k not in hidden}


async def csv_export(rapport: Rapport, actor: Actor | None, filters: listing.CustomerFilters,
                     *, ip: str = "") -> AsyncIterator[str]:
    """Yield CSV text for every customer matching ``filters`` in ``actor``'s export scope.

    The export is written to the audit log (action ``export``) before the first byte leaves.
    """
    defs = await custom_fields.field_definitions(filters.kind)
    described = ", ".join(f"{k}={v}" for k, v in filters.query_items()) or "no filters"
    await audit.record(actor, "export", "core_customer", "",
                       summary=f"CSV export of {filters.kind or 'customer'}s ({described})",
                       ip=ip)
    yield csv_text([CSV_COLUMNS + [d.form_name for d in defs]])
    async for rows in listing.iter_batches(rapport, actor, filters,
                                           permission="core.customer.export"):
        await listing.decorate(rows)
        values = await custom_fields.values_for([r["id"] for r in rows], defs)
        lines = []
        for row in rows:
            custom = values.get(row["id"], {})
            row = redact(actor, row)  # hidden fields are absent: their cells stay empty
            lines.append([row.get(c) for c in (
                "id", "kind", "name", "first_name", "last_name", "job_title", "account",
                "account_name", "owner_name", "team_name", "lifecycle_stage", "source",
                "primary_email", "primary_phone", "website", "industry", "tags", "created_at",
                "updated_at")] + [custom_fields.display(d, custom.get(d.key)) for d in defs])
        yield csv_text(lines)
