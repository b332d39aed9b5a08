"""Demo interactions and follow-ups, and the bulk generator the benchmarks use.

``seed_interactions(n)`` adds ``n`` realistic interactions spread over the existing customers
with multi-row batched inserts straight through the driver (ten million take minutes, not
hours). ``seed_demo_interactions`` is what ``rapport demo`` runs: idempotent, about five
touch points per demo customer and some open follow-ups for the demo staff.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.customers.tables import Customer
from core.interactions import stored_settings
from core.interactions.tables import CHANNELS, EmailTemplate, Interaction

if TYPE_CHECKING:
    from core.app import Rapport

SEED = 20261124
BATCH = 5000
PER_CUSTOMER = 5
MARKER = "core.interactions.demo_count"
COLUMNS = ["customer", "channel", "direction", "subject", "notes", "purpose", "outcome",
           "occurred_at", "duration_seconds", "user", "visible_in_portal", "followup_due",
           "followup_assignee", "followup_done", "followup_note", "created_at", "updated_at"]
CHANNEL_WEIGHTS = [30, 30, 10, 6, 6, 5, 2, 4, 4, 2, 1]  # call, email, meeting, visit, ...
SUBJECTS = {
    "call": ["Introductory call", "Renewal call", "Follow-up call", "Support call",
             "Pricing question"],
    "email": ["Quote sent", "Welcome email", "Newsletter reply", "Invoice question",
              "Product information"],
    "meeting": ["Quarterly review", "Kick-off meeting", "Demo", "Contract negotiation"],
    "visit": ["Site visit", "Maintenance visit", "Installation", "Account review on site"],
}
PURPOSES = ["sales", "service", "marketing", "account management", "billing"]
OUTCOMES = ["", "interested", "not interested", "call back", "resolved", "quote requested",
            "no answer", "left voicemail"]
FOLLOWUP_NOTES = ["Send the quote", "Call back about pricing", "Check delivery",
                  "Book a demo", "Confirm the visit", "Ask about renewal"]


async def _staff_ids() -> list[int]:
    from core.identity.tables import User

    rows = await User.select(User.id).where(User.is_active == True).limit(50).run()  # noqa: E712
    return [r["id"] for r in rows]


def _rows(rng: random.Random, customers: list[tuple[int, int | None]], staff: list[int],
          count: int, now: datetime, followup_share: float) -> list[tuple]:
    rows = []
    for _ in range(count):
        customer, owner = rng.choice(customers)
        user = owner if owner is not None and rng.random() < 0.8 else (
            rng.choice(staff) if staff else None)
        channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        direction = ("inbound" if channel in ("web", "portal") else
                     rng.choice(["inbound", "outbound", "outbound"]))
        subject = rng.choice(SUBJECTS.get(channel, [f"{channel.title()} contact"]))
        occurred = now - timedelta(days=rng.randint(0, 720), seconds=rng.randint(0, 86399))
        duration = rng.randint(60, 3600) if channel in ("call", "meeting", "visit") else None
        due = assignee = None
        note = ""
        if user is not None and rng.random() < followup_share:
            due = now + timedelta(days=rng.randint(-5, 14), hours=rng.randint(-4, 4))
            assignee, note = user, rng.choice(FOLLOWUP_NOTES)
        rows.append((customer, channel, direction, subject, "", rng.choice(PURPOSES),
                     rng.choice(OUTCOMES), occurred, duration, user, channel == "portal", due,
                     assignee, False, note, occurred, occurred))
    return rows


async def seed_interactions(n: int, *, customer_ids: list[int] | None = None,
                            followup_share: float = 0.02, seed: int = SEED,
                            progress: bool = False) -> int:
    """Insert ``n`` interactions spread over ``customer_ids`` (default: every customer, read
    in id order once); return how many were inserted. Not idempotent: callers count."""
    from piccolo.engine.postgres import PostgresEngine

    if n <= 0:
        return 0
    engine = Interaction._meta.db
    postgres = isinstance(engine, PostgresEngine)
    query = Customer.select(Customer.id, Customer.owner)
    if customer_ids is not None:
        query = query.where(Customer.id.is_in(list(customer_ids) or [0]))
    customers = [(r["id"], r["owner"]) for r in await query.run()]
    if not customers:
        return 0
    staff = await _staff_ids()
    rng = random.Random(seed + n)
    now = datetime.now(UTC).replace(microsecond=0)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    marks = ", ".join(f"${i + 1}" if postgres else "?" for i in range(len(COLUMNS)))
    statement = f"INSERT INTO core_interaction ({columns}) VALUES ({marks})"
    bar = task = None
    if progress:
        from rich.progress import Progress

        bar = Progress()
        bar.start()
        task = bar.add_task("Interactions", total=n)
    done = 0
    try:
        while done < n:
            count = min(BATCH, n - done)
            rows = _rows(rng, customers, staff, count, now, followup_share)
            async with engine.transaction() as transaction:
                await transaction.connection.executemany(statement, rows)
            done += count
            if bar is not None:
                bar.update(task, advance=count)
    finally:
        if bar is not None:
            bar.stop()
    return done


async def _count_marker() -> int:
    value = await stored_settings.read(MARKER)
    return int(json.loads(value)) if value else 0


async def seed_demo_interactions(rapport: Rapport | None, customers: int) -> int:
    """About five interactions per demo customer (idempotent), a tenth with follow-ups;
    and two e-mail templates, once."""
    await seed_email_templates()
    wanted = max(0, customers * PER_CUSTOMER - await _count_marker())
    if wanted == 0:
        return 0
    created = await seed_interactions(wanted, followup_share=0.1)
    await stored_settings.write(MARKER, json.dumps(await _count_marker() + created))
    return created


DEMO_TEMPLATES = [
    ("Thank you for your visit", "Thank you for your visit, {{ first_name }}",
     "Hello {{ first_name }},\n\nthank you for taking the time to meet us. As promised, I am "
     "sending you a short summary of what we discussed.\n\n\n\nKind regards,\n"
     "{{ sender_name }}\n{{ organisation }}\n"),
    ("Renewal reminder", "Your contract renewal",
     "Dear {{ name }},\n\nyour contract with {{ organisation }} is up for renewal soon. "
     "Shall we find a time to go through the options?\n\nBest wishes,\n{{ sender_name }}\n"),
]


async def seed_email_templates() -> None:
    if await EmailTemplate.count().run():
        return
    now = datetime.now(UTC)
    await EmailTemplate.insert(*[
        EmailTemplate(name=name, subject=subject, body=body, created_at=now, updated_at=now)
        for name, subject, body in DEMO_TEMPLATES]).run()
