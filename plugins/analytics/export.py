"""The data warehouse feed: customer-level facts as CSV files a BI tool (Metabase, Superset,
DuckDB's ``read_csv``) reads without touching the live database.

``rapport analytics export DIR`` writes one folder per run under ``DIR`` (its number and time,
UTC) with ``customers.csv``, ``customer_value.csv``, ``orders.csv`` (when sales is enabled) and
``interactions.csv``, and records the run in ``DIR/manifest.json``. The next run exports only
what changed since the last one (customers and orders by their update time, customer
figures by their refresh time, interactions by id), unless ``--since`` says otherwise.

Personal data: names, e-mail addresses and phone numbers are exported only without
``--pseudonymise``; with it, they are left out and every customer id is replaced by a
stable pseudonym (an HMAC of the id with the instance's own secret), so files from
successive runs still join. Free text (notes, subjects) is never exported.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.customers.tables import Customer
from core.interactions.tables import Interaction
from plugins.analytics.tables import CustomerValue
from plugins.analytics.values import _sales

if TYPE_CHECKING:
    from core.app import Rapport

BATCH = 2000
MANIFEST = "manifest.json"


class Keys:
    """Customer ids as exported: as they are, or pseudonymised."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret.encode() if secret else None

    def __call__(self, customer_id: Any) -> str:
        if customer_id is None:
            return ""
        if self.secret is None:
            return str(customer_id)
        return hmac.new(self.secret, str(customer_id).encode(), hashlib.sha256).hexdigest()[:20]


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return "" if value is None else value


async def _pages(table: Any, columns: list[Any], where: Any | None) -> Any:
    after = 0
    while True:
        query = table.select(*columns).where(table.id > after)
        if where is not None:
            query = query.where(where)
        rows = await query.order_by(table.id).limit(BATCH).run()
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


async def export(rapport: Rapport, directory: Path, *, since: datetime | None = None,
                 pseudonymise: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Write one run's files; return its manifest entry."""
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"runs": []}
    last = manifest["runs"][-1] if manifest["runs"] else None
    if since is None and last is not None:
        since = datetime.fromisoformat(last["exported_at"])
    after_interaction = last.get("last_interaction_id", 0) if last and since and \
        since == datetime.fromisoformat(last["exported_at"]) else 0
    keys = Keys(rapport.settings.secret("analytics_pseudonyms") if pseudonymise else None)
    folder = directory / f"{len(manifest['runs']) + 1:05d}-{now:%Y%m%dT%H%M%SZ}"
    folder.mkdir()
    counts: dict[str, int] = {}

    def writer(name: str, header: list[str]):
        handle = (folder / name).open("w", newline="", encoding="utf-8")
        out = csv.writer(handle)
        out.writerow(header)
        counts[name] = 0
        return handle, out

    # Customers
    personal = [] if pseudonymise else ["name", "primary_email", "primary_phone"]
    plain = ["kind", "lifecycle_stage", "source", "industry", "owner", "team", "created_at",
             "updated_at"]
    handle, out = writer("customers.csv", ["customer", "account", *plain, *personal])
    columns = [Customer.id, Customer.account] + [getattr(Customer, c) for c in plain + personal]
    where = Customer.erased_at.is_null()
    if since is not None:
        where = where & (Customer.updated_at >= since)
    async for rows in _pages(Customer, columns, where):
        for r in rows:
            out.writerow([keys(r["id"]), keys(r["account"])]
                         + [_text(r[c]) for c in plain + personal])
        counts["customers.csv"] += len(rows)
    handle.close()

    # Customer figures
    value_columns = ["segment", "r_score", "f_score", "m_score", "orders", "revenue",
                     "average_order", "currency", "first_order_at", "last_order_at",
                     "expected_orders", "predicted_value", "p_alive", "churn_risk",
                     "refreshed_at"]
    handle, out = writer("customer_value.csv", ["customer", *value_columns])
    where = None if since is None else CustomerValue.refreshed_at >= since
    async for rows in _pages(CustomerValue, [CustomerValue.id, CustomerValue.customer]
                             + [getattr(CustomerValue, c) for c in value_columns], where):
        for r in rows:
            out.writerow([keys(r["customer"])] + [_text(r[c]) for c in value_columns])
        counts["customer_value.csv"] += len(rows)
    handle.close()

    # Orders, through the sales plugin's read API (newest first, keyset by id)
    sales = _sales(rapport)
    if sales is not None:
        order_columns = ["number", "status", "channel", "currency", "net_amount",
                         "discount_amount", "tax_amount", "total_amount", "ordered_at",
                         "updated_at"]
        handle, out = writer("orders.csv", ["order", "customer", "owner", "team",
                                            *order_columns])
        after = None
        while True:
            page = await sales.orders(after=after, limit=500)
            for r in page:
                if since is None or (r.get("updated_at") or r["ordered_at"]) >= since:
                    out.writerow([r["id"], keys(r["customer"]), _text(r.get("owner")),
                                  _text(r.get("team"))] + [_text(r.get(c)) for c in order_columns])
                    counts["orders.csv"] += 1
            if len(page) < 500:
                break
            after = page[-1]["id"]
        handle.close()

    # Interactions (no subject or notes: free text)
    inter = ["channel", "direction", "purpose", "outcome", "occurred_at", "duration_seconds",
             "user"]
    handle, out = writer("interactions.csv", ["interaction", "customer", *inter])
    last_id = after_interaction
    async for rows in _pages(Interaction, [Interaction.id, Interaction.customer]
                             + [getattr(Interaction, c) for c in inter],
                             Interaction.id > after_interaction):
        for r in rows:
            out.writerow([r["id"], keys(r["customer"])] + [_text(r[c]) for c in inter])
        counts["interactions.csv"] += len(rows)
        last_id = rows[-1]["id"]
    handle.close()

    entry = {"exported_at": now.isoformat(), "since": since.isoformat() if since else None,
             "folder": folder.name, "pseudonymised": pseudonymise, "rows": counts,
             "last_interaction_id": last_id}
    manifest["runs"].append(entry)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return entry
