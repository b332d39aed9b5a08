"""Demo data for ``rapport demo``: a help desk that looks lived in.

A business calendar (Mon-Fri 09:00-17:30, Europe/London, with bank holidays), an SLA policy per
priority, three queues (round-robin front line, least-loaded complaints with a manager, field
repairs for the field representative), routing rules, e-mail templates, a knowledge base of
public FAQ and internal articles, a few dozen cases in every status with conversations, notes
and ratings, and two repair visits in field@example.com's agenda.

Rows are written straight to the tables in batches (the case service would route, e-mail and
publish each case one by one). Seeding twice does nothing the second time: the "Front line"
queue marks a seeded instance.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.customers.tables import Customer, CustomerTag
from core.identity.tables import Team, User
from core.interactions.tables import Interaction
from plugins.service import business_hours
from plugins.service.tables import (
    PRIORITY_RANK,
    Article,
    ArticleCategory,
    BusinessCalendar,
    Case,
    CaseEvent,
    CaseMessage,
    EmailTemplate,
    Holiday,
    Queue,
    QueueMember,
    RoutingRule,
    SlaPolicy,
)

log = logging.getLogger("rapport.service.demo")

MARKER_QUEUE = "Front line"
TIMELINE_CHANNEL = {"phone": "call", "email": "email", "portal": "portal", "chat": "chat",
                    "web": "web", "visit": "visit"}

# priority: (first response, resolution) in business minutes, warning before breach
SLA = {"urgent": (30, 240, 30), "high": (60, 480, 60), "normal": (240, 1440, 120),
       "low": (480, 2880, 240)}

# (month, day, name): fixed-date holidays, seeded for this year and the next
HOLIDAYS = [(1, 1, "New Year's Day"), (5, 1, "Labour Day"), (12, 24, "Christmas Eve"),
            (12, 25, "Christmas Day"), (12, 26, "Boxing Day"), (12, 31, "New Year's Eve")]

CATEGORIES = [("Getting started", "getting-started"), ("Heating and boilers", "heating"),
              ("Billing and contracts", "billing"), ("Troubleshooting", "troubleshooting"),
              ("Internal procedures", "internal")]

# (category slug, title, audience, kind, product, keywords, body)
ARTICLES = [
    ("getting-started", "How do I open a support request?", "public", "faq", "",
     "request ticket help contact",
     "Sign in to the customer portal and choose \"New request\". Describe what happened, "
     "when, and which product it concerns; attach photos or documents if they help.\n\n"
     "You can also write to our support address or call us during office hours. Every "
     "request gets a number such as CS-000123: quote it when you write to us again."),
    ("getting-started", "What are your support hours?", "public", "faq", "",
     "hours opening times weekend holiday",
     "Our team answers Monday to Friday, 09:00 to 17:30 (UK time), except on bank "
     "holidays. Requests that arrive outside those hours are answered first thing on the "
     "next working day; urgent breakdowns are handled within four working hours."),
    ("heating", "The boiler shows error E119 (low water pressure)", "public", "howto",
     "Thermo 24 combi boiler", "boiler pressure e119 error refill",
     "E119 means the pressure in the heating circuit is below 0.5 bar.\n\n"
     "1. Switch the boiler off at the front panel.\n2. Open the filling loop under the "
     "boiler slowly until the gauge shows 1.2 to 1.5 bar, then close it.\n3. Switch the "
     "boiler back on.\n\nIf the pressure drops again within a few days there is probably a "
     "leak: open a request and we will send a technician."),
    ("heating", "Bleeding your radiators", "public", "howto", "",
     "radiator cold top bleed air",
     "A radiator that is cold at the top has air in it. With the heating off, hold a cloth "
     "under the valve at the top corner and turn the bleed key a quarter turn until water "
     "appears, then close it. Check the boiler pressure afterwards and top it up if needed."),
    ("heating", "Thermo 24 combi boiler: user manual", "public", "manual",
     "Thermo 24 combi boiler", "manual thermo 24 controls settings",
     "Controls: the left dial sets the heating flow temperature (30-80 °C), the right dial "
     "the hot water temperature (35-60 °C). The display shows the pressure and error codes.\n\n"
     "Yearly service: the warranty requires a service by a qualified engineer every 12 "
     "months. Book it from the portal as a maintenance request."),
    ("heating", "Smart thermostat does not connect to Wi-Fi", "public", "howto",
     "SmartStat thermostat", "thermostat wifi wireless connect app",
     "The thermostat supports 2.4 GHz networks only. Hold the menu button for ten seconds "
     "to restart pairing, then choose your network in the app. If your router combines "
     "2.4 and 5 GHz under one name, give the 2.4 GHz band its own name first."),
    ("billing", "How do I update my payment details?", "public", "faq", "",
     "payment card direct debit bank",
     "In the portal, open \"Profile\" and then \"Payment\". Changes made before the 20th of "
     "the month apply to the next invoice."),
    ("billing", "Can I cancel my maintenance contract?", "public", "faq", "",
     "cancel contract notice refund",
     "Yes. Contracts can be cancelled with 30 days' notice from the portal or by writing to "
     "us. Visits already paid for in the current period remain available until it ends."),
    ("troubleshooting", "No hot water but the heating works", "public", "howto",
     "Thermo 24 combi boiler", "hot water diverter valve tap",
     "Check that the hot water dial is not at its minimum and that no error shows. Run a "
     "hot tap fully for one minute: a low flow does not start the burner. If the radiators "
     "heat up when you run a hot tap, the diverter valve is stuck: request a repair visit."),
    ("internal", "Escalating a complaint", "internal", "howto", "",
     "complaint escalation manager procedure",
     "Complaints go to the Complaints queue and are owned by one person until resolved. "
     "Call the customer back within one working day, log the call, and agree what happens "
     "next. Goodwill credits above 100 GBP need the queue manager's approval (add a note "
     "naming the amount and the reason)."),
    ("internal", "Booking a repair visit", "internal", "howto", "",
     "visit repair engineer schedule field",
     "Open the case, choose \"Schedule a visit\" and pick the field representative. The "
     "visit appears in their field app agenda, also offline. Write what to bring in the "
     "instructions. The visit report (notes, photos, the customer's signature) appears on "
     "the case once the representative's phone has synced."),
    ("internal", "E119 that keeps coming back: diagnosis checklist", "internal", "technical",
     "Thermo 24 combi boiler", "e119 leak expansion vessel prv",
     "1. Check the expansion vessel pre-charge (should be 1.0 bar with the system drained).\n"
     "2. Inspect the pressure relief valve outlet for drips.\n3. Look for weeping joints "
     "under the boiler and on radiator valves.\n4. Replace the filling loop washer if the "
     "pressure rises when the boiler is cold."),
    ("internal", "Refund and returns policy (staff)", "internal", "faq", "",
     "refund return goodwill policy",
     "Products can be returned within 30 days in their original packaging. Create a case of "
     "type \"Product return\" and attach the proof of purchase. Refunds are issued by "
     "finance once the warehouse has confirmed receipt."),
]

# (case type, channel, priority, subject, opening message, product)
CASE_TEMPLATES = [
    ("maintenance", "portal", "normal", "Annual boiler service",
     "Our boiler is due for its yearly service. Mornings suit us best.",
     "Thermo 24 combi boiler"),
    ("maintenance", "phone", "high", "Boiler losing pressure every day",
     "The pressure drops to 0.3 bar every morning and we have no heating.",
     "Thermo 24 combi boiler"),
    ("service_request", "email", "normal", "Thermostat will not pair",
     "I followed the guide but the thermostat does not find my Wi-Fi.",
     "SmartStat thermostat"),
    ("complaint", "email", "high", "Technician did not turn up",
     "We waited in all day on Tuesday and nobody came or called. This is not acceptable.", ""),
    ("complaint", "phone", "normal", "Invoice charged twice",
     "My card was charged twice for the March invoice.", ""),
    ("information_request", "web", "low", "Do you install heat pumps?",
     "We are thinking about replacing our gas boiler with a heat pump.", ""),
    ("product_return", "portal", "normal", "Return an unused thermostat",
     "I ordered two thermostats by mistake and would like to return one.",
     "SmartStat thermostat"),
    ("service_request", "chat", "urgent", "No heating and a baby at home",
     "The boiler shows F28 and we have a newborn, please help quickly.",
     "Thermo 24 combi boiler"),
    ("service_request", "portal", "normal", "No hot water, heating fine",
     "Radiators are warm but the taps only give cold water.", "Thermo 24 combi boiler"),
    ("information_request", "email", "low", "Copy of my contract",
     "Could you send me a copy of my maintenance contract?", ""),
]
REPLIES = [
    "Thank you for getting in touch. Could you send us a photo of the display?",
    "We have booked a technician; you will receive the time by e-mail.",
    "I am sorry for the trouble. I have refunded the duplicate payment today.",
    "Please try the steps in our help article and tell us if it works.",
]
CUSTOMER_REPLIES = ["Here is the photo you asked for.", "That worked, thank you!",
                    "It happened again this morning.", "Thursday morning would be perfect."]
NOTES = ["Called the customer, no answer; left a voicemail.",
         "Probably the expansion vessel; bring a spare.",
         "Goodwill credit of 40 GBP agreed with Max."]
RATING_COMMENTS = ["Quick and friendly, thanks.", "Solved, but it took a while.",
                   "Excellent technician.", ""]
# status mix across the demo cases
STATUS_CYCLE = ["new", "open", "open", "waiting", "open", "resolved", "closed", "resolved",
                "new", "waiting", "closed", "open"]


async def _user_ids(emails: list[str]) -> dict[str, int]:
    rows = await User.select(User.id, User.email).where(User.email.is_in(emails)).run()
    return {r["email"]: r["id"] for r in rows}


async def _one_id(table, **values) -> int:
    rows = await table.insert(table(**values)).returning(table._meta.primary_key).run()
    return rows[0]["id"]


async def seed(rapport, customers: int) -> None:
    if await Queue.exists().where(Queue.name == MARKER_QUEUE).run():
        return  # seeded already
    rng = random.Random(6)
    now = datetime.now(UTC).replace(microsecond=0)
    users = await _user_ids(["admin@example.com", "manager@example.com", "agent@example.com",
                             "field@example.com"])
    if not users:  # no demo users (e.g. a plugin-only demo): any active staff will do
        rows = await User.select(User.id, User.email).where(
            User.is_active == True).limit(4).run()  # noqa: E712
        users = {r["email"]: r["id"] for r in rows}
    agent = users.get("agent@example.com") or next(iter(users.values()), None)
    manager = users.get("manager@example.com") or agent
    admin = users.get("admin@example.com") or agent
    field = users.get("field@example.com")
    team = await Team.select(Team.id).where(Team.name == "Service").first().run()
    team_id = team["id"] if team else None

    # Business calendar and SLAs.
    calendar = await _one_id(BusinessCalendar, name="UK office hours",
                             timezone="Europe/London", work_days="0,1,2,3,4",
                             opens_at="09:00", closes_at="17:30")
    await Holiday.insert(*[
        Holiday(calendar=calendar, day=date(year, month, day), name=name)
        for year in (now.year, now.year + 1) for month, day, name in HOLIDAYS]).run()
    policies: dict[str, int] = {}
    for priority, (first, resolution, warn) in SLA.items():
        if await SlaPolicy.exists().where(SlaPolicy.priority == priority).run():
            row = await SlaPolicy.select(SlaPolicy.id).where(
                SlaPolicy.priority == priority).first().run()
            policies[priority] = row["id"]
            continue
        policies[priority] = await _one_id(
            SlaPolicy, name=f"{priority.capitalize()} priority", priority=priority,
            first_response_minutes=first, resolution_minutes=resolution,
            warn_before_minutes=warn, calendar=calendar)

    # Queues, members and routing.
    front = await _one_id(Queue, name=MARKER_QUEUE, assignment="round_robin", team=team_id,
                          manager=manager, description="Everything that needs a first answer.")
    complaints = await _one_id(Queue, name="Complaints", assignment="least_loaded",
                               team=team_id, manager=manager,
                               description="Unhappy customers: one owner until resolved.")
    repairs = await _one_id(Queue, name="Field repairs",
                            assignment="named" if field else "round_robin",
                            named_assignee=field, manager=manager,
                            description="Maintenance and repairs done at the customer's.")
    await Queue.update({Queue.escalation_queue: complaints}).where(Queue.id == front).run()
    members = [QueueMember(queue=front, user=u) for u in {agent, admin} if u]
    members += [QueueMember(queue=complaints, user=u) for u in {agent, manager} if u]
    members += [QueueMember(queue=repairs, user=u) for u in {field} if u]
    if members:
        await QueueMember.insert(*members).run()
    await RoutingRule.insert(
        RoutingRule(position=10, name="Gold complaints: high priority", case_type="complaint",
                    customer_tag="gold", queue=complaints, set_priority="high"),
        RoutingRule(position=20, name="Complaints", case_type="complaint", queue=complaints),
        RoutingRule(position=30, name="Maintenance and repairs", case_type="maintenance",
                    queue=repairs),
        RoutingRule(position=40, name="Gold customers: high priority", customer_tag="gold",
                    queue=front, set_priority="high"),
        RoutingRule(position=100, name="Everything else", queue=front),
    ).run()

    await _email_templates()
    await _knowledge_base(admin)

    # Cases on demo contacts (and a few gold customers).
    contacts = await Customer.select(Customer.id, Customer.name, Customer.primary_email).where(
        (Customer.kind == "contact") & Customer.erased_at.is_null()).order_by(
        Customer.id).limit(60).run()
    if not contacts:
        return
    # Repairs go to the field representative's own customers where there are some, so the
    # visit's customer card is on their phone too (the field app keeps "my customers").
    field_contacts = await Customer.select(
        Customer.id, Customer.name, Customer.primary_email).where(
        (Customer.owner == field) & Customer.erased_at.is_null()).order_by(
        Customer.id).limit(10).run() if field else []
    gold = [c["id"] for c in contacts[:4]]
    have_gold = {r["customer"] for r in await CustomerTag.select(CustomerTag.customer).where(
        CustomerTag.customer.is_in(gold) & (CustomerTag.tag == "gold")).run()}
    if missing := [c for c in gold if c not in have_gold]:
        await CustomerTag.insert(*[CustomerTag(customer=c, tag="gold") for c in missing]).run()
    count = min(48, max(12, customers // 20))
    schedule = await business_hours.load_schedule(calendar)
    queue_of = {"complaint": complaints, "maintenance": repairs}
    owners = {front: [u for u in (agent, admin) if u], complaints: [u for u in (agent, manager)
                                                                    if u],
              repairs: [field] if field else [agent]}
    plans: list[dict[str, Any]] = []
    for i in range(count):
        kind, channel, priority, subject, opening, product = CASE_TEMPLATES[
            i % len(CASE_TEMPLATES)]
        customer = contacts[i % len(contacts)]
        if kind == "maintenance" and field_contacts:
            customer = field_contacts[i % len(field_contacts)]
        if customer["id"] in gold and priority in ("low", "normal"):
            priority = "high"
        status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
        if kind == "maintenance" and i < len(CASE_TEMPLATES):
            status = "open"  # the first repairs stay open: they get visits below
        opened = now - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 8),
                                 minutes=rng.randint(0, 59))
        if status in ("resolved", "closed"):
            opened -= timedelta(days=5)
        queue = queue_of.get(kind, front)
        owner = None if status == "new" else rng.choice(owners[queue] or [None])
        first, resolution, _ = SLA[priority]
        first_due = business_hours.add_minutes(schedule, opened, first)
        resolution_due = business_hours.add_minutes(schedule, opened, resolution)
        responded = None if status == "new" else min(
            now, opened + timedelta(minutes=rng.randint(10, first * 2)))
        resolved_at = (min(now, opened + timedelta(days=rng.randint(1, 4)))
                       if status in ("resolved", "closed") else None)
        score = rng.choice([5, 5, 4, 4, 3, 2]) if status == "closed" or (
            status == "resolved" and i % 2) else None
        plans.append({
            "number": f"DEMO-{i}-{now.timestamp():.0f}", "subject": subject,
            "description": opening, "case_type": kind, "priority": priority,
            "priority_rank": PRIORITY_RANK[priority], "status": status,
            "is_open": status in ("new", "open", "waiting"), "channel": channel,
            "customer": customer["id"], "product": product, "queue": queue, "owner": owner,
            "team": team_id if queue != repairs else None, "created_by": agent,
            "sla_policy": policies[priority], "first_response_due": first_due,
            "resolution_due": resolution_due, "first_responded_at": responded,
            "first_response_breached": bool(responded and responded > first_due),
            "resolution_breached": bool(resolved_at and resolved_at > resolution_due),
            "resolved_at": resolved_at,
            "closed_at": min(now, resolved_at + timedelta(days=1))
            if status == "closed" and resolved_at else None,
            "waiting_since": now - timedelta(hours=rng.randint(1, 30))
            if status == "waiting" else None,
            "satisfaction": score,
            "satisfaction_comment": rng.choice(RATING_COMMENTS) if score else "",
            "rated_at": (resolved_at + timedelta(hours=3)) if score and resolved_at else None,
            "created_at": opened, "updated_at": resolved_at or opened,
            "_email": customer["primary_email"] or "",
        })
    rows = await Case.insert(*[Case(**{k: v for k, v in p.items() if not k.startswith("_")})
                               for p in plans]).returning(Case.id).run()
    from plugins.service.cases import case_number

    for plan, row in zip(plans, rows, strict=True):
        plan["id"] = row["id"]
        await Case.update({Case.number: case_number(row["id"])}).where(
            Case.id == row["id"]).run()
    await _conversations(rng, plans, agent, now)
    await _timeline(plans)
    if field:
        await _visits(rapport, plans, field, now)
    log.info("service demo: %d cases", len(plans))


async def _email_templates() -> None:
    from plugins.service.email_out import DEFAULTS

    existing = {r["key"] for r in await EmailTemplate.select(EmailTemplate.key).run()}
    rows = [EmailTemplate(key=key, name=default.name, subject=default.subject,
                          body=default.body, updated_at=datetime.now(UTC))
            for key, default in DEFAULTS.items() if key not in existing]
    if rows:
        await EmailTemplate.insert(*rows).run()


async def _knowledge_base(author: int | None) -> None:
    categories: dict[str, int] = {}
    for position, (name, slug) in enumerate(CATEGORIES):
        found = await ArticleCategory.select(ArticleCategory.id).where(
            ArticleCategory.slug == slug).first().run()
        categories[slug] = found["id"] if found else await _one_id(
            ArticleCategory, name=name, slug=slug, position=(position + 1) * 10)
    from plugins.service.kb import slugify

    taken = {r["slug"] for r in await Article.select(Article.slug).run()}
    now = datetime.now(UTC)
    rows = []
    for index, (category, title, audience, kind, product, keywords, body) in enumerate(ARTICLES):
        slug = slugify(title)
        if slug in taken:
            continue
        rows.append(Article(category=categories[category], title=title, slug=slug, body=body,
                            audience=audience, kind=kind, product=product, keywords=keywords,
                            published=True, helpful_yes=(index * 7) % 23,
                            helpful_no=index % 4, author=author, created_at=now,
                            updated_at=now))
    if rows:
        await Article.insert(*rows).run()


async def _conversations(rng: random.Random, plans: list[dict[str, Any]], agent: int | None,
                         now: datetime) -> None:
    messages: list[CaseMessage] = []
    events: list[CaseEvent] = []
    for i, plan in enumerate(plans):
        at = plan["created_at"]
        messages.append(CaseMessage(
            case=plan["id"], kind="inbound", body=plan["description"], channel=plan["channel"],
            author_customer=plan["customer"], author_email=plan["_email"], created_at=at))
        events.append(CaseEvent(case=plan["id"], kind="queued", new_value=str(plan["queue"]),
                                at=at))
        if plan["owner"]:
            events.append(CaseEvent(case=plan["id"], kind="assigned",
                                    new_value=str(plan["owner"]), at=at))
        if plan["status"] == "new":
            continue
        step = at
        for turn in range(1 + i % 3):
            step = min(now, step + timedelta(hours=rng.randint(1, 20)))
            messages.append(CaseMessage(
                case=plan["id"], kind="reply", body=REPLIES[(i + turn) % len(REPLIES)],
                channel="email", author_user=plan["owner"] or agent, delivery="sent",
                created_at=step))
            if turn < i % 3 or plan["status"] in ("resolved", "closed"):
                step = min(now, step + timedelta(hours=rng.randint(1, 20)))
                messages.append(CaseMessage(
                    case=plan["id"], kind="inbound", channel="email",
                    body=CUSTOMER_REPLIES[(i + turn) % len(CUSTOMER_REPLIES)],
                    author_customer=plan["customer"], author_email=plan["_email"],
                    created_at=step))
        if i % 4 == 1:
            messages.append(CaseMessage(case=plan["id"], kind="note",
                                        body=NOTES[i % len(NOTES)],
                                        author_user=plan["owner"] or agent, created_at=step))
        events.append(CaseEvent(case=plan["id"], kind="status", old_value="new",
                                new_value="open", user=plan["owner"], at=at))
        if plan["status"] != "open":
            events.append(CaseEvent(case=plan["id"], kind="status", old_value="open",
                                    new_value=plan["status"], user=plan["owner"],
                                    at=plan["resolved_at"] or step))
        if plan["satisfaction"]:
            events.append(CaseEvent(case=plan["id"], kind="rated",
                                    new_value=str(plan["satisfaction"]),
                                    at=plan["rated_at"] or step))
    await CaseMessage.insert(*messages).run()
    await CaseEvent.insert(*events).run()


async def _timeline(plans: list[dict[str, Any]]) -> None:
    """The opening of each case in the customer's unified timeline, as the case service
    records it."""
    rows = await Interaction.insert(*[Interaction(
        customer=p["customer"], channel=TIMELINE_CHANNEL.get(p["channel"], "web"),
        direction="inbound", subject=f"{case_number(p['id'])}: {p['subject']}",
        notes=p["description"], purpose="service", occurred_at=p["created_at"],
        plugin="service", plugin_record=str(p["id"]), visible_in_portal=True,
        created_at=p["created_at"], updated_at=p["created_at"]) for p in plans]
    ).returning(Interaction.id).run()
    for plan, row in zip(plans, rows, strict=True):
        await Case.update({Case.interaction_id: row["id"]}).where(Case.id == plan["id"]).run()


def case_number(case_id: int) -> str:
    from plugins.service.cases import case_number as number

    return number(case_id)


async def _visits(rapport, plans: list[dict[str, Any]], field: int, now: datetime) -> None:
    """Two repair visits in the field representative's next days."""
    from plugins.service import visits

    repairs = [p for p in plans if p["case_type"] == "maintenance" and p["is_open"]][:2]
    for offset, plan in enumerate(repairs):
        day = (now + timedelta(days=offset)).date()
        starts = datetime.combine(day, time(10 + 3 * offset, 0), tzinfo=UTC)
        try:
            await visits.schedule(rapport, None, plan["id"], assignee=field, starts_at=starts,
                                  ends_at=starts + timedelta(hours=1, minutes=30),
                                  notes="Check the pressure and the expansion vessel; "
                                        "bring a filling loop washer.")
        except visits.VisitError as exc:  # e.g. the field user's role was changed
            log.warning("demo visit not scheduled: %s", exc)
