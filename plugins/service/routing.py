"""Routing: which queue a new case lands in, and which agent gets it.

The first active rule (by ``position``, then id) whose conditions all match decides the
queue; an empty condition matches anything. ``customer_tag`` matches a tag on the customer or
on their account (tiers such as "gold" are tags). A rule may name an agent (overriding the
queue's assignment) and may set the case's priority.

Queues hand cases out in one of four ways: to a named agent, round-robin over available
members (resuming after ``last_assigned``), to the available member with the fewest open
cases, or to nobody (the case waits in the queue). Round-robin and least-loaded first take
the queue row's write lock, so two cases created at the same moment (two workers on
PostgreSQL) never both go to the same "next" agent.
"""

from __future__ import annotations

from typing import Any

from piccolo.query.functions.aggregate import Count

from core.customers.tables import Customer, CustomerTag
from core.identity.tables import User
from plugins.service.tables import (
    PRIORITY_RANK,
    Case,
    Queue,
    QueueMember,
    RoutingRule,
)

MAX_RULES = 500  # rules are few; the bound keeps a runaway configuration from slowing intake


def _value(case: dict[str, Any], *names: str) -> Any:
    for name in names:
        if case.get(name) is not None:
            return case[name]
    return None


async def customer_tags(customer_id: int | None) -> set[str]:
    """Tags on the customer and on their account, lower-cased (two small queries)."""
    if customer_id is None:
        return set()
    row = await Customer.select(Customer.account).where(Customer.id == customer_id).first().run()
    ids = [customer_id] + ([row["account"]] if row and row["account"] else [])
    tags = await CustomerTag.select(CustomerTag.tag).where(CustomerTag.customer.is_in(ids)).run()
    return {t["tag"].strip().lower() for t in tags}


def matches(rule: dict[str, Any], case: dict[str, Any], tags: set[str]) -> bool:
    if rule["case_type"] and rule["case_type"] != case.get("case_type"):
        return False
    if rule["priority"] and rule["priority"] != case.get("priority"):
        return False
    if rule["channel"] and rule["channel"] != case.get("channel"):
        return False
    return not (rule["customer_tag"] and rule["customer_tag"].strip().lower() not in tags)


async def matching_rule(case: dict[str, Any]) -> dict[str, Any] | None:
    rules = await RoutingRule.select().where(RoutingRule.active == True).order_by(  # noqa: E712
        RoutingRule.position).order_by(RoutingRule.id).limit(MAX_RULES).run()
    if not rules:
        return None
    tags = await customer_tags(_value(case, "customer", "customer_id")) if any(
        r["customer_tag"] for r in rules) else set()
    active_queues = {q["id"] for q in await Queue.select(Queue.id).where(
        Queue.id.is_in(sorted({r["queue"] for r in rules})) & (Queue.active == True)  # noqa: E712
    ).run()}
    for rule in rules:
        # A rule pointing at a switched-off queue is skipped, so the next rule still routes.
        if rule["queue"] in active_queues and matches(rule, case, tags):
            return rule
    return None


async def _active(user_id: int | None) -> int | None:
    if user_id is None:
        return None
    found = await User.exists().where((User.id == user_id) & (User.is_active == True)).run()  # noqa: E712
    return user_id if found else None


async def available_members(queue_id: int) -> list[int]:
    """Ids of the queue's members who take new cases (available, active users), by id."""
    rows = await QueueMember.select(QueueMember.user).where(
        (QueueMember.queue == queue_id) & (QueueMember.available == True)  # noqa: E712
        & (QueueMember.user.is_active == True)  # noqa: E712
    ).run()
    return sorted({r["user"] for r in rows})


async def _lock_queue(queue_id: int) -> dict[str, Any] | None:
    """Take the queue row's write lock for the rest of the transaction, then read it.

    A no-op UPDATE locks the row on PostgreSQL (a concurrent case for the same queue waits
    here until this transaction commits, then reads the new ``last_assigned``) and takes
    SQLite's write lock; the same code is right on both.
    """
    await Queue.update({Queue.last_assigned: Queue.last_assigned}).where(
        Queue.id == queue_id).run()
    return await Queue.select().where(Queue.id == queue_id).first().run()


def _after(members: list[int], last: int | None) -> list[int]:
    """Members in turn, starting with the first one after ``last``."""
    later = [m for m in members if last is not None and m > last]
    earlier = [m for m in members if last is None or m <= last]
    return later + earlier


async def open_case_counts(user_ids: list[int]) -> dict[int, int]:
    """Open cases per agent, in one grouped query."""
    if not user_ids:
        return {}
    rows = await Case.select(Case.owner, Count(Case.id, alias="open_cases")).where(
        Case.owner.is_in(user_ids) & (Case.is_open == True)  # noqa: E712
    ).group_by(Case.owner).run()
    return {r["owner"]: r["open_cases"] for r in rows}


async def pick_assignee(queue: dict[str, Any]) -> int | None:
    """The agent a queue gives its next case to, or None (nobody available, or mode none).

    Call inside the transaction that stores the assignment: round-robin and least-loaded
    lock the queue row and record ``last_assigned``.
    """
    mode = queue["assignment"]
    if mode == "named":
        return await _active(queue["named_assignee"])
    if mode not in ("round_robin", "least_loaded"):
        return None
    locked = await _lock_queue(queue["id"])
    if locked is None:
        return None
    members = await available_members(queue["id"])
    if not members:
        return None
    in_turn = _after(members, locked["last_assigned"])
    if mode == "round_robin":
        chosen = in_turn[0]
    else:
        counts = await open_case_counts(members)
        # Fewest open cases; ties go to whoever is next in turn, so equals share the work.
        chosen = min(in_turn, key=lambda m: (counts.get(m, 0), in_turn.index(m)))
    await Queue.update({Queue.last_assigned: chosen}).where(Queue.id == queue["id"]).run()
    return chosen


async def route(rapport, case: dict[str, Any]) -> dict[str, Any]:
    """The changes routing makes to a new case: ``{"queue", "owner", "team", "priority",
    "priority_rank"}``, or ``{}`` when no rule matches. Runs inside ``open_case``'s
    transaction."""
    rule = await matching_rule(case)
    if rule is None:
        return {}
    queue = await Queue.select().where(Queue.id == rule["queue"]).first().run()
    if queue is None:
        return {}
    priority = rule["set_priority"] if rule["set_priority"] in PRIORITY_RANK else (
        case.get("priority") or "normal")
    owner = await _active(rule["assignee"]) if rule["assignee"] else None
    if owner is None:
        owner = await pick_assignee(queue)
    return {"queue": queue["id"], "owner": owner, "team": queue["team"],
            "priority": priority, "priority_rank": PRIORITY_RANK.get(priority, 2)}
