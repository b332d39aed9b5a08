"""The analytics plugin's jobs: the nightly full refresh (the model is refitted, every
customer rescored, segment counts and cohorts rewritten) and the per-customer update on
order events, which reuses the last refresh's model so a new order shows within seconds."""

from __future__ import annotations

from typing import Any

from core import jobs
from core.plugin import JobType

CUSTOMER_EVENTS = ("sales.order.created", "sales.order.cancelled", "sales.order.returned",
                   "sales.order.refunded")


async def refresh(rapport: Any, job: Any) -> None:
    from plugins.analytics import values

    await values.refresh_all(rapport)


async def refresh_one(rapport: Any, job: Any) -> None:
    from plugins.analytics import values

    await values.refresh_customer(rapport, int(job.args["customer_id"]))


async def on_event(rapport: Any, event: Any) -> None:
    payload = event.payload or {}
    if event.name in CUSTOMER_EVENTS and payload.get("customer_id"):
        # Queued rather than done here: several orders of one customer make one update.
        customer_id = int(payload["customer_id"])
        await jobs.enqueue(rapport, "analytics.refresh_customer", {"customer_id": customer_id},
                           unique_key=f"customer:{customer_id}")
    elif event.name == "core.customer.updated" and payload.get("id"):
        # A new owner or team changes who sees the customer's figures.
        from plugins.analytics.tables import CustomerValue

        await CustomerValue.update({CustomerValue.owner: payload.get("owner"),
                                    CustomerValue.team: payload.get("team")}).where(
            CustomerValue.customer == int(payload["id"])).run()
    elif event.name in ("core.customer.merged", "core.customer.deleted"):
        for key in ("id", "merged_id"):
            if payload.get(key):
                await jobs.enqueue(rapport, "analytics.refresh_customer",
                                   {"customer_id": int(payload[key])},
                                   unique_key=f"customer:{int(payload[key])}")


def job_types() -> list[JobType]:
    return [
        JobType("analytics.refresh", refresh, schedule="20 2 * * *", timeout_seconds=4 * 3600,
                max_attempts=2, unique=True,
                description="Recompute customer segments, lifetime value, churn risk and "
                            "cohorts from every order"),
        JobType("analytics.refresh_customer", refresh_one, max_attempts=5,
                description="Update one customer's segment, value and churn risk after an "
                            "order"),
    ]
