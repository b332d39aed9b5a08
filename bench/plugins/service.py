"""Customer service at scale: 200,000 open cases spread over four queues (plus 20,000 closed
ones the open-case indexes must skip), and one case with a 400-message conversation.

Scenarios: one queue's view, the "all open" view (urgent first, then oldest) and the page of
the case with the long conversation. Sizes can be lowered for a smoke run with
``RAPPORT_BENCH_SERVICE_OPEN`` and ``RAPPORT_BENCH_SERVICE_MESSAGES``.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

from bench.scenarios import HTML, Request
from bench.seed import bulk_insert, log

PLUGIN = "service"

OPEN = int(os.environ.get("RAPPORT_BENCH_SERVICE_OPEN", 200_000))
CLOSED_SHARE = 10  # one closed case for every ten open ones
LONG_CONVERSATION = int(os.environ.get("RAPPORT_BENCH_SERVICE_MESSAGES", 400))
QUEUES = ("Front line", "Complaints", "Field repairs", "Returns")
PRIORITIES = (("urgent", 0, 0.03), ("high", 1, 0.17), ("normal", 2, 0.6), ("low", 3, 0.2))
TYPES = ("service_request", "complaint", "product_return", "information_request",
         "maintenance")
CHANNELS = ("portal", "email", "phone", "chat", "web")


async def _next_id(table) -> int:
    row = await table.select(table.id).order_by(table.id, ascending=False).first().run()
    return (row["id"] if row else 0) + 1


async def seed(database_url: str, seeded) -> dict:
    from plugins.service.cases import case_number
    from plugins.service.tables import Case, CaseMessage, Queue, QueueMember

    rnd = random.Random(31)
    user = seeded.user_id
    customers = seeded.customer_ids
    now = datetime.now(UTC)
    queue_ids = []
    for name in QUEUES:
        rows = await Queue.insert(Queue(name=f"Bench {name}", assignment="round_robin")
                                  ).returning(Queue.id).run()
        queue_ids.append(rows[0]["id"])
    await QueueMember.insert(*[QueueMember(queue=q, user=user) for q in queue_ids]).run()

    total = OPEN + OPEN // CLOSED_SHARE
    first = await _next_id(Case)
    weights = [w for _, _, w in PRIORITIES]

    def cases():
        for i in range(total):
            cid = first + i
            priority, rank, _ = rnd.choices(PRIORITIES, weights)[0]
            opened = now - timedelta(minutes=rnd.randrange(90 * 24 * 60))
            is_open = i < OPEN
            status = rnd.choice(("new", "open", "open", "waiting")) if is_open else "closed"
            yield {"id": cid, "number": case_number(cid), "subject": f"Bench case {cid}",
                   "description": "The appliance stopped working after the update.",
                   "case_type": rnd.choice(TYPES), "priority": priority,
                   "priority_rank": rank, "status": status, "is_open": is_open,
                   "channel": rnd.choice(CHANNELS), "customer": rnd.choice(customers),
                   "queue": rnd.choice(queue_ids),
                   "owner": user if rnd.random() < 0.5 else None,
                   "first_response_due": opened + timedelta(hours=4),
                   "resolution_due": opened + timedelta(days=3),
                   "closed_at": None if is_open else opened + timedelta(days=2),
                   "created_at": opened, "updated_at": opened}

    log(f"service: {OPEN:,} open and {total - OPEN:,} closed cases")
    await bulk_insert(database_url, Case, cases(), total)

    # The long conversation: the first open case, alternating customer and agent.
    long_case = first
    customer = (await Case.select(Case.customer).where(Case.id == long_case).first().run()
                )["customer"]
    first_message = await _next_id(CaseMessage)
    start = now - timedelta(days=60)

    def messages():
        for i in range(LONG_CONVERSATION):
            from_customer = i % 2 == 0
            yield {"id": first_message + i, "case": long_case,
                   "kind": "inbound" if from_customer else ("note" if i % 10 == 9 else "reply"),
                   "body": ("It still does not work, here is what I see. " if from_customer
                            else "Thank you, please try the following steps. ") * 6,
                   "channel": "email", "author_customer": customer if from_customer else None,
                   "author_user": None if from_customer else user,
                   "created_at": start + timedelta(hours=3 * i)}

    log(f"service: {LONG_CONVERSATION:,} messages on case {long_case}")
    await bulk_insert(database_url, CaseMessage, messages(), LONG_CONVERSATION)
    return {"open": OPEN, "cases": total, "queue": queue_ids[0], "long_case": long_case,
            "messages": LONG_CONVERSATION}


def queue_view(seeded, facts) -> Request:
    """One queue's open cases, urgent first: the first page of about a quarter of them."""
    return Request(f"/service/cases?queue={facts['queue']}", headers=HTML)


def all_open(seeded, facts) -> Request:
    """Every open case, urgent first then oldest: the first page of 200,000."""
    return Request("/service/cases?view=open", headers=HTML)


def long_case(seeded, facts) -> Request:
    """The page of a case with a long conversation."""
    return Request(f"/service/cases/{facts['long_case']}", headers=HTML)


SCENARIOS = [
    ("queue view, 200k open cases", queue_view),
    ("all open cases, sorted", all_open),
    ("case page, long conversation", long_case),
]
