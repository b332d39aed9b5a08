"""The loyalty plugin's recurring jobs (core.jobs): pending points released, lots expired
(with notice before), tiers re-evaluated and birthday points given. Each is idempotent: a
rerun changes nothing already done (ledger rows are keyed)."""

from __future__ import annotations

from typing import Any

from core.plugin import JobType


async def release_pending(rapport: Any, job: Any) -> None:
    from datetime import UTC, datetime

    from plugins.loyalty import ledger
    from plugins.loyalty.tables import Lot

    now = datetime.now(UTC)
    due = await Lot.select(Lot.member).where(
        (Lot.state == "pending") & Lot.available_at.is_not_null()
        & (Lot.available_at <= now)).distinct().limit(1000).run()
    for row in due:
        await ledger.release(row["member"], due_before=now)


async def expire(rapport: Any, job: Any) -> None:
    from plugins.loyalty import expiry

    await expiry.notify_expiring(rapport)
    await expiry.expire(rapport)


async def tiers(rapport: Any, job: Any) -> None:
    from plugins.loyalty import tiers as tier_rules

    await tier_rules.evaluate_all(rapport)


async def birthdays(rapport: Any, job: Any) -> None:
    from plugins.loyalty import touch_points

    await touch_points.birthdays(rapport)


def job_types() -> list[JobType]:
    return [
        JobType("loyalty.release_pending", release_pending, schedule=15 * 60,
                description="Make pending points usable once their waiting days are over"),
        JobType("loyalty.expire", expire, schedule="15 3 * * *",
                description="Tell members of points about to expire, and expire lots past "
                            "their date"),
        JobType("loyalty.tiers", tiers, schedule="45 3 * * *", timeout_seconds=3600,
                description="Re-evaluate every member's tier over the rolling window"),
        JobType("loyalty.birthdays", birthdays, schedule="5 6 * * *",
                description="Give birthday points"),
    ]
