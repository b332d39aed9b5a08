"""CSV export of a filtered interaction list: the same filters and order as the list,
streamed a keyset page at a time within the reader's export scope, and audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from core import audit
from core.identity.tables import User
from core.interactions import listing
from core.permissions import Actor
from core.spreadsheet import csv_text

if TYPE_CHECKING:
    from core.app import Rapport

CSV_COLUMNS = ["id", "occurred_at", "channel", "direction", "customer_id", "customer",
               "subject", "purpose", "outcome", "notes", "duration_minutes", "recorded_by",
               "followup_due", "followup_assignee", "followup_done", "followup_note",
               "recorded_by_plugin", "created_at", "updated_at"]


async def csv_export(rapport: Rapport, actor: Actor, filters: listing.Filters, *,
                     described: str = "", ip: str = "") -> AsyncIterator[str]:
    """Yield CSV text for every interaction matching ``filters`` that ``actor`` may export;
    the export is written to the audit log (with ``described``, the filters in words)
    before the first byte leaves."""
    await audit.record(actor, "export", "core_interaction", "",
                       summary=f"CSV export of interactions ({described or 'no filters'})",
                       ip=ip)
    yield csv_text([CSV_COLUMNS])
    names = {u["id"]: u["name"] for u in await User.select(User.id, User.name).run()}
    after = ""
    while True:
        rows, after = await listing.page(rapport, actor, filters, after=after,
                                         limit=listing.MAX_LIMIT,
                                         permission="core.interaction.export")
        yield csv_text([
            r["id"], r["occurred_at"], r["channel"], r["direction"], r["customer"],
            r["customer.name"], r["subject"], r["purpose"], r["outcome"], r["notes"],
            round(r["duration_seconds"] / 60, 1) if r["duration_seconds"] else None,
            r["user.name"], r["followup_due"], names.get(r["followup_assignee"]),
            r["followup_done"] if r["followup_due"] else None, r["followup_note"],
            r["plugin"], r["created_at"], r["updated_at"]] for r in rows)
        if after is None:
            return
