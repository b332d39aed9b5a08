"""Demo data: two segments, a newsletter already sent (with exclusions, opens and clicks so
the report shows something) and a draft win-back campaign. Nothing is e-mailed: the demo
marks the newsletter's messages as the send job would, after the real contact-policy check."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from core.interactions.policy import check_contact
from core.permissions import Actor
from plugins.campaigns import segments
from plugins.campaigns.campaigns import create_campaign, tracked_links
from plugins.campaigns.tables import Campaign, Message, Segment

SYSTEM = Actor(kind="staff", id=None, name="Demo data", grants={"core.customer.view": "all"})
NEWSLETTER = """<h1>What's new this spring</h1>
<p>Hello {{ first_name }},</p>
<p>Our spring range is here, and as a customer of ours you see it first.</p>
<p><a href="https://example.com/spring">See the spring range</a></p>
<p>{{ owner_name }} is happy to help with anything you need.</p>
<p><small>You receive this e-mail as a customer of ours. <a href="{{ unsubscribe_url }}">Unsubscribe</a>.</small></p>"""
WINBACK = """<p>Hello {{ first_name }},</p>
<p>It has been a while. Can we help with anything?</p>
<p><a href="https://example.com/offer">Your welcome-back offer</a></p>
<p><small><a href="{{ unsubscribe_url }}">Unsubscribe</a></small></p>"""


def _rules(*groups, match="all"):
    return {"match": match, "groups": [
        {"match": g_match, "conditions": [{"criterion": c, "op": o, "value": v}
                                          for c, o, v in conditions]}
        for g_match, conditions in groups]}


async def seed(rapport, customers: int) -> None:
    if await Segment.exists().run():
        return  # seeded already
    rng = random.Random(25)
    quiet = await segments.save_segment(rapport, SYSTEM, None, "Quiet leads",
                                        "Leads nobody has spoken to for three months.",
                                        _rules(("all", [("core.lifecycle_stage", "is", "lead"),
                                                        ("core.touch_point", "none_in_last_days",
                                                         "90")])))
    buyers = await segments.save_segment(
        rapport, SYSTEM, None, "Customers and prospects with e-mail",
        "Everyone we sell to or hope to, who has an e-mail address.",
        _rules(("any", [("core.lifecycle_stage", "is", "customer"),
                        ("core.lifecycle_stage", "is", "prospect")]),
               ("all", [("core.has_email", "yes", "")])))
    await create_campaign(SYSTEM, {"name": "Welcome back", "segment": quiet["id"],
                                   "subject": "{{ first_name }}, we have missed you",
                                   "body_html": WINBACK})
    sent = await create_campaign(SYSTEM, {"name": "Spring newsletter", "segment": buyers["id"],
                                          "subject": "Spring is here, {{ first_name }}",
                                          "body_html": NEWSLETTER})
    compiled = segments.compile_rules(segments.parse_rules(buyers["rules"]),
                                      await segments.criteria(rapport))
    members = await segments.member_ids(rapport, SYSTEM, compiled, limit=300)
    started = datetime.now(UTC) - timedelta(days=12)
    await Campaign.update({Campaign.state: "sent", Campaign.send_started_at: started,
                           Campaign.send_finished_at: started + timedelta(minutes=4),
                           Campaign.links: json.dumps(tracked_links(NEWSLETTER))}).where(
        Campaign.id == sent["id"]).run()
    rows = []
    await Campaign.update({Campaign.holdout_percent: 10}).where(Campaign.id == sent["id"]).run()
    for member in members:
        decision = await check_contact(rapport, member["id"], "email", purpose="marketing",
                                       at=started)
        row = Message(campaign=sent["id"], customer=member["id"], email=member["primary_email"])
        if not decision.allowed:
            row.state, row.reason, row.detail = "suppressed", decision.rule, decision.reason
        elif rng.random() < 0.1:
            row.state, row.reason = "holdout", "control"
        else:
            row.state, row.sent_at = "sent", started + timedelta(seconds=rng.randint(1, 240))
            if rng.random() < 0.42:
                row.opened_at = row.sent_at + timedelta(hours=rng.randint(1, 72))
                if rng.random() < 0.3:
                    row.clicked_at, row.clicks = row.opened_at, rng.randint(1, 3)
            if rng.random() < 0.02:
                row.unsubscribed_at = row.sent_at + timedelta(days=1)
        rows.append(row)
    if rows:
        await Message.insert(*rows).run()
