"""What analytics holds about one customer, for core's privacy and merge hooks: the
customer's figures (segment, value, churn risk with reasons) are a profile, so they are in
the privacy export, gone on erasure, and recomputed for the survivor of a merge."""

from __future__ import annotations

import json
from typing import Any

from plugins.analytics.tables import CustomerValue


async def export(customer_id: int) -> dict[str, Any]:
    row = await CustomerValue.select().where(CustomerValue.customer == customer_id).first().run()
    if row is None:
        return {}
    row.pop("id", None)
    row["reasons"] = json.loads(row.get("reasons") or "[]")
    return {"analytics": json.loads(json.dumps(row, default=str))}


async def erase(customer_id: int) -> None:
    await CustomerValue.delete().where(CustomerValue.customer == customer_id).run()


async def merge(survivor_id: int, merged_id: int) -> None:
    # The survivor is recomputed from the merged orders on the merge event.
    await CustomerValue.delete().where(CustomerValue.customer == merged_id).run()
