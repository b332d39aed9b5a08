"""Set-up helpers for the routing and SLA tests: queues, members, rules, calendars, policies,
and cases inserted directly (as the case service would, routed and given deadlines)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from tests.conftest import make_user

_numbers = itertools.count(1)


async def agent(email: str, teams=()) -> int:
    return await make_user(email, roles=["administrator"], teams=teams)


async def queue(name: str, assignment: str = "round_robin", members=(), **values) -> int:
    from plugins.service.tables import Queue, QueueMember

    row = await Queue.insert(Queue(name=name, assignment=assignment, **values)).returning(
        Queue.id).run()
    queue_id = row[0]["id"]
    for member in members:
        user, available = member if isinstance(member, tuple) else (member, True)
        await QueueMember.insert(QueueMember(queue=queue_id, user=user,
                                             available=available)).run()
    return queue_id


async def rule(queue_id: int, position: int = 100, **values) -> int:
    from plugins.service.tables import RoutingRule

    row = await RoutingRule.insert(RoutingRule(queue=queue_id, position=position,
                                               **values)).returning(RoutingRule.id).run()
    return row[0]["id"]


async def calendar(name: str = "Office", holidays=(), **values) -> int:
    from plugins.service.tables import BusinessCalendar, Holiday

    row = await BusinessCalendar.insert(BusinessCalendar(name=name, **values)).returning(
        BusinessCalendar.id).run()
    for day in holidays:
        await Holiday.insert(Holiday(calendar=row[0]["id"], day=day)).run()
    return row[0]["id"]


async def policy(priority: str, first_response: int, resolution: int, warn: int = 60,
                 calendar_id: int | None = None) -> int:
    from plugins.service.tables import SlaPolicy

    row = await SlaPolicy.insert(SlaPolicy(
        name=f"{priority} SLA", priority=priority, first_response_minutes=first_response,
        resolution_minutes=resolution, warn_before_minutes=warn, calendar=calendar_id,
    )).returning(SlaPolicy.id).run()
    return row[0]["id"]


async def tag(customer_id: int, name: str) -> None:
    from core.customers.tables import CustomerTag

    await CustomerTag.insert(CustomerTag(customer=customer_id, tag=name)).run()


async def insert_case(rapport, customer_id: int, now: datetime | None = None,
                      **values: Any) -> dict[str, Any]:
    """A case stored the way ``cases.open_case`` stores it: routed, with SLA targets, in
    one transaction."""
    from plugins.service import routing, sla
    from plugins.service.tables import PRIORITY_RANK, Case

    now = now or datetime.now(UTC)
    case: dict[str, Any] = {"subject": "Printer on fire", "case_type": "service_request",
                            "priority": "normal", "channel": "phone", "customer": customer_id,
                            "status": "new", **values}
    async with Case._meta.db.transaction():
        case.update(await routing.route(rapport, case))
        case["priority_rank"] = PRIORITY_RANK[case["priority"]]
        case.update(await sla.targets(rapport, case, now))
        case["number"] = f"T-{next(_numbers):06d}-{id(case) % 100000}"
        case["created_at"] = now
        row = await Case.insert(Case(**case)).returning(*Case._meta.columns).run()
    return row[0]


async def get_case(case_id: int) -> dict[str, Any]:
    from plugins.service.tables import Case

    return await Case.select().where(Case.id == case_id).first().run()
