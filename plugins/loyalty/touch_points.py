"""Points for what is not a purchase: a review or survey answered (a touch point recorded
in core's timeline, matched by its purpose) and birthdays (a daily job). Each is keyed, so
an event redelivered or a job rerun gives nothing twice."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from plugins.loyalty import ledger, rules
from plugins.loyalty.tables import Member, Rule


async def on_interaction(rapport: Any, event: Any) -> None:
    payload = event.payload or {}
    customer_id, interaction_id = payload.get("customer_id"), payload.get("id")
    if not customer_id or not interaction_id:
        return
    from core.interactions.tables import Interaction

    row = await Interaction.select(Interaction.purpose, Interaction.subject).where(
        Interaction.id == interaction_id).first().run()
    if row is None or not row["purpose"]:
        return
    purpose = row["purpose"].strip().lower()
    today = datetime.now(UTC).date()
    members = await Member.select().where((Member.customer == customer_id)
                                          & (Member.status == "active")).run()
    for member in members:
        for rule in await Rule.select().where(
                (Rule.program == member["program"]) & (Rule.kind == "touch_point")
                & (Rule.touch_kind == purpose)).run():
            if not rules.in_force(rule, today):
                continue
            points = rules.floor(Decimal(rule["points"]))
            await ledger.earn(member["pool"] or member["id"], points,
                              explanation=f"{points:,} points: {rule['name']} "
                              f"({row['subject'] or purpose})", source="touch_point",
                              source_ref=f"interaction:{interaction_id}",
                              key=f"p{member['program']}:touch:{interaction_id}:{rule['id']}",
                              earned_by=member["id"])


async def birthdays(rapport: Any, today: date | None = None) -> int:
    """Birthday points for members whose birthday is today (29 February: on 28 February in
    other years)."""
    today = today or datetime.now(UTC).date()
    given = 0
    birthday_rules = await Rule.select().where((Rule.kind == "birthday")
                                               & (Rule.active == True)).run()  # noqa: E712
    for rule in birthday_rules:
        if not rules.in_force(rule, today):
            continue
        after = 0
        while True:
            batch = await Member.select(Member.id, Member.pool, Member.program,
                                        Member.customer.birthday.as_alias("birthday")).where(
                (Member.program == rule["program"]) & (Member.status == "active")
                & (Member.id > after) & Member.customer.birthday.is_not_null()
            ).order_by(Member.id).limit(1000).run()
            if not batch:
                break
            after = batch[-1]["id"]
            for member in batch:
                if not _is_birthday(member["birthday"], today):
                    continue
                points = rules.floor(Decimal(rule["points"]))
                posted = await ledger.earn(
                    member["pool"] or member["id"], points,
                    explanation=f"{points:,} points: {rule['name']}, happy birthday",
                    source="birthday", source_ref=f"birthday:{today.year}",
                    key=f"p{rule['program']}:birthday:{member['id']}:{today.year}",
                    earned_by=member["id"])
                given += 0 if posted.replayed else 1
    return given


def _is_birthday(birthday: date, today: date) -> bool:
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    leap_day = birthday.month == 2 and birthday.day == 29
    try:
        date(today.year, 2, 29)
        return False
    except ValueError:
        return leap_day and (today.month, today.day) == (2, 28)

