"""Sending a campaign: Send checks and starts it, then a durable job writes the audience
down as message rows and mails them.

- :func:`start_sending` refuses a campaign without a subject, without the unsubscribe link or
  whose segment has no member the sender may see; otherwise it marks the campaign
  ``sending``, freezes the tracked links and queues the job, in one transaction.
- :func:`materialise` (the job's first step) writes one ``queued`` message per segment member
  the sender may see (unique per campaign and customer, so nobody is queued twice), a page
  per transaction, resuming after the last customer written; it draws the control group and
  the A/B halves as it goes.
- :func:`run_send_job` takes queued messages in batches. Each recipient passes the
  contact-policy check (``core.interactions.policy.check_contact``, channel ``email``, purpose
  ``marketing``) at that moment; a refusal marks the message ``suppressed`` with the policy's
  rule word and sentence. A message is claimed (``sending``) before it is handed to the mail
  server and marked ``sent`` or ``failed`` after, so a worker that dies mid-send never mails
  anyone twice: on the next attempt a message still ``sending`` is marked failed ("stopped
  while sending; not sent again") rather than sent again. Each sent e-mail is recorded as an
  outbound touch point, which the fatigue rule counts.
"""

from __future__ import annotations

import json
import logging
import os
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import audit, jobs, mail
from core.customers.tables import Customer
from core.identity.users import load_actor
from core.interactions.policy import check_contact
from core.interactions.service import record_interaction
from core.permissions import Actor
from plugins.campaigns import segments, tracking
from plugins.campaigns.campaigns import (
    UNSUBSCRIBE,
    CampaignError,
    fields_used,
    has_variant_b,
    personal_fields,
    render,
    tracked_links,
)
from plugins.campaigns.tables import Campaign, Message, Segment

if TYPE_CHECKING:
    from core.app import Rapport
    from core.plugin import Job

log = logging.getLogger("rapport.campaigns")
BATCH = 200
REASON_LABELS = {
    "no_email": "No e-mail address",
    "erased": "Personal data erased",
    "unknown_customer": "Customer no longer exists",
    "do_not_contact": "Do not contact",
    "opted_out": "Opted out of e-mail",
    "no_consent": "Withdrew consent to marketing",
    "preferred_channel": "Prefers another channel",
    "fatigue": "Contacted too often recently (fatigue rule)",
    "unknown_channel": "Channel not allowed",
}


async def readiness(rapport: Rapport, actor: Actor, campaign: dict[str, Any]
                    ) -> tuple[int, list[tuple[str, str]]]:
    """How many members the sender may reach, and every reason the campaign cannot be sent
    yet as ``(field, sentence)``."""
    problems: list[tuple[str, str]] = []
    if campaign["state"] != "draft":
        problems.append(("state", "This campaign was already sent."))
    if not (campaign["subject"] or "").strip():
        problems.append(("subject", "The e-mail has no subject."))
    if not (campaign["body_html"] or "").strip():
        problems.append(("body_html", "The e-mail has no content."))
    uses = set()
    for field in ("body_html", "body_text", "body_html_b"):
        try:
            uses |= {(field, name) for name in fields_used(campaign[field] or "", field)}
        except CampaignError as exc:
            problems.append((exc.field, exc.message))
    if (campaign["body_html"] or "").strip() and ("body_html", UNSUBSCRIBE) not in uses:
        problems.append(("body_html", "The e-mail has no unsubscribe link: add a link to "
                         "{{ unsubscribe_url }} so recipients can opt out in one click."))
    if (campaign["body_text"] or "").strip() and ("body_text", UNSUBSCRIBE) not in uses:
        problems.append(("body_text", "The text version has no unsubscribe link: add "
                         "{{ unsubscribe_url }}."))
    if has_variant_b(campaign) and ("body_html_b", UNSUBSCRIBE) not in uses:
        problems.append(("body_html_b", "Variant B has no unsubscribe link: add a link to "
                         "{{ unsubscribe_url }}."))
    members = 0
    if campaign["segment"] is None:
        problems.append(("segment", "Choose the segment to send to."))
    else:
        segment = await Segment.select().where(Segment.id == campaign["segment"]).first().run()
        try:
            compiled = segments.compile_rules(segments.parse_rules(segment["rules"]),
                                              await segments.criteria(rapport))
        except segments.SegmentError as exc:
            problems.append(("segment", f"The segment's rules no longer work: {exc.message}"))
        else:
            members = await segments.count(rapport, actor, compiled)
            if members == 0:
                problems.append(("segment", "The segment has no member you may reach: "
                                 "nothing would be sent."))
    return members, problems


async def start_sending(rapport: Rapport, actor: Actor, campaign_id: int, *, ip: str = "",
                        send_at: datetime | None = None) -> int:
    """Start sending: the campaign becomes *sending* and the job is queued; return how many
    segment members the sender may see now. Raises :class:`CampaignError` naming what is
    missing. The job writes the recipients down (:func:`materialise`), so Send answers at
    once whatever the segment's size."""
    campaign = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    if campaign is None:
        raise CampaignError("campaign", "no such campaign")
    members, problems = await readiness(rapport, actor, campaign)
    if problems:
        raise CampaignError(*problems[0])
    now = datetime.now(UTC)
    later = send_at is not None and send_at > now + timedelta(minutes=1)
    if send_at is not None and send_at < now - timedelta(minutes=1):
        raise CampaignError("send_at", "is in the past")
    if send_at is not None and send_at > now + timedelta(days=366):
        raise CampaignError("send_at", "at most a year ahead")
    async with Campaign._meta.db.transaction():
        # Only one Send wins: the state moves from draft once.
        claimed = await Campaign.update({
            Campaign.state: "scheduled" if later else "sending",
            Campaign.scheduled_for: send_at if later else None,
            Campaign.sent_by: actor.id if actor.kind == "staff" else None,
            Campaign.send_started_at: None if later else now, Campaign.updated_at: now,
            Campaign.links: json.dumps(tracked_links(
                campaign["body_html"] + "\n" + (campaign["body_html_b"] or ""))),
        }).where((Campaign.id == campaign_id) & (Campaign.state == "draft")).returning(
            Campaign.id).run()
        if not claimed:
            raise CampaignError("state", "This campaign was already sent.")
        await audit.record(actor, "update", Campaign._meta.tablename, campaign_id,
                           {"state": ["draft", "scheduled" if later else "sending"],
                            "segment_members": [None, members],
                            **({"scheduled_for": [None, send_at]} if later else {})},
                           summary=f"campaign {campaign['name']} "
                                   f"{'scheduled' if later else 'sent to its segment'} "
                                   f"({members} members now)", ip=ip)
        await jobs.enqueue(rapport, "campaigns.send", {"campaign_id": campaign_id},
                           # A new schedule after a cancelled one is a job of its own.
                           unique_key=f"{campaign_id}:{send_at.isoformat() if later else ''}",
                           run_at=send_at if later else None)
    return members


async def unschedule(actor: Actor, campaign_id: int, *, ip: str = "") -> bool:
    """A scheduled campaign back to draft (its waiting job then does nothing)."""
    done = await Campaign.update({Campaign.state: "draft", Campaign.scheduled_for: None,
                                  Campaign.links: ""}).where(
        (Campaign.id == campaign_id) & (Campaign.state == "scheduled")).returning(
        Campaign.id).run()
    if done:
        await audit.record(actor, "update", Campaign._meta.tablename, campaign_id,
                           {"state": ["scheduled", "draft"]},
                           summary="campaign sending cancelled", ip=ip)
    return bool(done)


async def _sender_actor(rapport: Rapport, campaign: dict[str, Any]) -> Actor:
    if campaign["sent_by"] is None:  # sent by a trusted job or script, not a person
        return Actor(kind="staff", id=None, name="system",
                     grants={segments.VIEW_CUSTOMERS: "all"})
    actor = await load_actor(rapport, campaign["sent_by"])
    if actor is None or not actor.can(segments.VIEW_CUSTOMERS):
        raise RuntimeError(f"campaign {campaign['id']}: its sender (user {campaign['sent_by']}) "
                           "is deactivated or may no longer see customers; nothing was queued")
    return actor


async def materialise(rapport: Rapport, campaign_id: int) -> int:
    """Write one ``queued`` message per segment member the sender may see (unique per
    campaign and customer), drawing the control group and the A/B halves; return how many
    were added. Resumable: it continues after the last customer written, and a page written
    twice adds nothing (ON CONFLICT DO NOTHING), so no one is drawn twice either."""
    campaign = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    if campaign is None or campaign["recipients_ready"]:
        return 0
    actor = await _sender_actor(rapport, campaign)
    segment = await Segment.select().where(Segment.id == campaign["segment"]).first().run()
    compiled = segments.compile_rules(segments.parse_rules(segment["rules"]),
                                      await segments.criteria(rapport))
    share = campaign["holdout_percent"] or 0
    split = has_variant_b(campaign)
    draw = random.SystemRandom()
    last = await Message.select(Message.customer).where(Message.campaign == campaign_id).order_by(
        Message.customer, ascending=False).first().run()
    after = last["customer"] if last else 0
    added = 0
    while True:
        page = await segments.member_ids(rapport, actor, compiled, after=after)
        if not page:
            break
        after = page[-1]["id"]
        async with Message._meta.db.transaction():
            rows = [Message(campaign=campaign_id, customer=row["id"],
                            email=row["primary_email"] or "", state="queued")
                    for row in page]
            inserted = await Message.insert(*rows).on_conflict(action="DO NOTHING").returning(
                Message.id).run()
            added += len(inserted)
            if split:  # A/B test: half of them, drawn at random, get variant B
                variant_b = [row["id"] for row in inserted if draw.random() < 0.5]
                if variant_b:
                    await Message.update({Message.variant: "B"}).where(
                        Message.id.is_in(variant_b)).run()
            if share:  # the control group: drawn at random, never mailed
                held = [row["id"] for row in inserted if draw.random() * 100 < share]
                if held:
                    await Message.update({Message.state: "holdout"}).where(
                        Message.id.is_in(held)).run()
    await Campaign.update({Campaign.recipients_ready: True}).where(
        Campaign.id == campaign_id).run()
    return added


async def _recipients(customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Names for personalisation, in one query per batch."""
    rows = await Customer.select(
        Customer.id, Customer.name, Customer.first_name, Customer.last_name,
        Customer.job_title, Customer.account.name.as_alias("company"),
        Customer.owner.name.as_alias("owner_name"),
    ).where(Customer.id.is_in(customer_ids)).run()
    return {row["id"]: row for row in rows}


def _sender() -> str:
    return os.environ.get("RAPPORT_MAIL_FROM", "rapport@localhost")


async def send_one(rapport: Rapport, campaign: dict[str, Any], message: dict[str, Any],
                   customer: dict[str, Any], deliver: Any = None) -> None:
    """Check the policy, then mail one recipient (or record why not)."""
    now = datetime.now(UTC)
    if not message["email"]:
        await Message.update({Message.state: "suppressed", Message.reason: "no_email",
                              Message.detail: "This customer has no e-mail address."}).where(
            (Message.id == message["id"]) & (Message.state == "queued")).run()
        return
    # One transaction: the check's reads and the claim share a connection (SQLite opens one
    # per statement otherwise), and the claim is committed before the mail server is asked.
    async with Message._meta.db.transaction():
        decision = await check_contact(rapport, message["customer"], "email",
                                       purpose="marketing")
        if not decision.allowed:
            await Message.update({Message.state: "suppressed", Message.reason: decision.rule,
                                  Message.detail: decision.reason}).where(
                (Message.id == message["id"]) & (Message.state == "queued")).run()
            return
        claimed = await Message.update({Message.state: "sending"}).where(
            (Message.id == message["id"]) & (Message.state == "queued")).returning(
            Message.id).run()
    if not claimed:
        return  # another worker has it
    unsubscribe = tracking.unsubscribe_url(rapport, message["id"])
    try:
        subject, body_html, text = render(
            campaign, personal_fields(customer, message["email"], unsubscribe),
            lambda index: tracking.click_url(rapport, message["id"], index),
            message.get("variant", "A"))
        body_html += (f'<img src="{tracking.open_url(rapport, message["id"])}" width="1" '
                      'height="1" alt="">')
        email = mail.build_message(_sender(), message["email"], subject, text, body_html, {
            # RFC 8058: one click unsubscribes, by a POST the mail client sends itself.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Rapport-Campaign": str(campaign["id"]),
        })
        await (deliver(email) if deliver is not None else mail.deliver(rapport, email))
    except Exception as exc:
        log.warning("campaign %s: message %s failed: %s", campaign["id"], message["id"], exc)
        await Message.update({Message.state: "failed",
                              Message.detail: str(exc)[:500] or exc.__class__.__name__}).where(
            Message.id == message["id"]).run()
        return
    await Message.update({Message.state: "sent", Message.sent_at: now}).where(
        Message.id == message["id"]).run()
    try:
        await record_interaction(
            rapport, None, customer_id=message["customer"], channel="email",
            direction="outbound", subject=subject, purpose="marketing", occurred_at=now,
            plugin="campaigns", plugin_record=str(message["id"]),
            client_id=f"campaigns:sent:{message['id']}")
    except Exception:  # the e-mail went: its state must say so even if the timeline fails
        log.exception("recording the touch point of campaign message %s failed", message["id"])


async def _check_control_group(rapport: Rapport, campaign_id: int) -> None:
    """The control group passes the same contact-policy check as those mailed (and is
    suppressed alike), so the two groups compare like with like. Checked once each."""
    after = 0
    while True:
        batch = await Message.select(Message.id, Message.customer, Message.email).where(
            (Message.campaign == campaign_id) & (Message.state == "holdout")
            & (Message.reason == "") & (Message.id > after)).order_by(Message.id).limit(
            BATCH).run()
        if not batch:
            return
        after = batch[-1]["id"]
        for message in batch:
            if not message["email"]:
                changes = {Message.state: "suppressed", Message.reason: "no_email",
                           Message.detail: "This customer has no e-mail address."}
            else:
                decision = await check_contact(rapport, message["customer"], "email",
                                               purpose="marketing")
                changes = ({Message.reason: "control"} if decision.allowed else
                           {Message.state: "suppressed", Message.reason: decision.rule,
                            Message.detail: decision.reason})
            await Message.update(changes).where(Message.id == message["id"]).run()


async def run_send_job(rapport: Rapport, job: Job) -> None:
    campaign_id = int(job.args["campaign_id"])
    campaign = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    if campaign is None or campaign["state"] == "draft":
        return  # unscheduled meanwhile
    if campaign["state"] == "scheduled":
        when = campaign["scheduled_for"]
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when is not None and when > datetime.now(UTC) + timedelta(seconds=30):
            return  # the job of an earlier, cancelled schedule: the new one has its own
        started = await Campaign.update({Campaign.state: "sending",
                                         Campaign.send_started_at: datetime.now(UTC)}).where(
            (Campaign.id == campaign_id) & (Campaign.state == "scheduled")).returning(
            Campaign.id).run()
        if not started:
            return
        campaign = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    await materialise(rapport, campaign_id)
    # A previous attempt died between claiming and recording these: never mail them again.
    await Message.update({Message.state: "failed",
                          Message.detail: "Sending stopped while this e-mail was being handed "
                                          "to the mail server; it is not sent again, so "
                                          "nobody gets it twice."}).where(
        (Message.campaign == campaign_id) & (Message.state == "sending")).run()
    await _check_control_group(rapport, campaign_id)
    after = 0
    while True:
        batch = await Message.select(Message.id, Message.customer, Message.email,
                                     Message.variant).where(
            (Message.campaign == campaign_id) & (Message.state == "queued")
            & (Message.id > after)).order_by(Message.id).limit(BATCH).run()
        if not batch:
            break
        after = batch[-1]["id"]
        people = await _recipients([m["customer"] for m in batch])
        async with mail.session(rapport) as deliver:  # one SMTP connection per batch
            for message in batch:
                await send_one(rapport, campaign, message, people.get(message["customer"], {}),
                               deliver)
    await Campaign.update({Campaign.state: "sent",
                           Campaign.send_finished_at: datetime.now(UTC)}).where(
        (Campaign.id == campaign_id) & (Campaign.state == "sending")).run()


RESPONSE_DAYS = 30


async def _responses(campaign_id: int) -> dict[str, Any]:
    """Who got in touch with us (any inbound touch point but the campaign's own tracking)
    within RESPONSE_DAYS of the send, among those mailed and in the control group."""
    campaign = await Campaign.select(Campaign.send_started_at).where(
        Campaign.id == campaign_id).first().run()
    since = campaign["send_started_at"]
    until = since + timedelta(days=RESPONSE_DAYS)
    rows = await Message.raw(
        "SELECT m.state AS state, COUNT(*) AS members, SUM(CASE WHEN EXISTS (SELECT 1 FROM "
        "core_interaction i WHERE i.customer = m.customer AND i.occurred_at >= {} AND "
        "i.occurred_at < {} AND i.direction = 'inbound' AND (i.plugin IS NULL OR "
        "i.plugin <> 'campaigns')) THEN 1 ELSE 0 END) AS responded "
        "FROM campaigns_message m WHERE m.campaign = {} AND m.state IN ('sent', 'holdout') "
        "GROUP BY m.state", since, until, campaign_id).run()
    groups = {row["state"]: (int(row["members"]), int(row["responded"] or 0)) for row in rows}
    mailed, control = groups.get("sent", (0, 0)), groups.get("holdout", (0, 0))
    def rate(group: tuple[int, int]) -> float | None:
        return round(100 * group[1] / group[0], 1) if group[0] else None

    mailed_rate, control_rate = rate(mailed), rate(control)
    return {"days": RESPONSE_DAYS, "mailed": mailed[0], "mailed_responded": mailed[1],
            "mailed_rate": mailed_rate, "control": control[0], "control_responded": control[1],
            "control_rate": control_rate,
            "lift_points": (round(mailed_rate - control_rate, 1)
                            if mailed_rate is not None and control_rate is not None else None)}


async def report(campaign_id: int) -> dict[str, Any]:
    """Counts per state, exclusions per reason, opens, clicks and unsubscribes."""
    by_state = {row["state"]: int(row["n"]) for row in await Message.raw(
        "SELECT state, COUNT(*) AS n FROM campaigns_message WHERE campaign = {} "
        "GROUP BY state", campaign_id).run()}
    reasons = [{"reason": row["reason"], "label": REASON_LABELS.get(row["reason"], row["reason"]),
                "count": int(row["n"])} for row in await Message.raw(
        "SELECT reason, COUNT(*) AS n FROM campaigns_message WHERE campaign = {} "
        "AND state = 'suppressed' GROUP BY reason ORDER BY COUNT(*) DESC", campaign_id).run()]
    totals = (await Message.raw(
        "SELECT COUNT(opened_at) AS opened, COUNT(clicked_at) AS clicked, "
        "COUNT(unsubscribed_at) AS unsubscribed, COALESCE(SUM(clicks), 0) AS clicks "
        "FROM campaigns_message WHERE campaign = {}", campaign_id).run())[0]
    failures = await Message.select(
        Message.id, Message.customer, Message.customer.name.as_alias("customer_name"),
        Message.email, Message.detail).where(
        (Message.campaign == campaign_id) & (Message.state == "failed")).order_by(
        Message.id).limit(20).run()
    sent = by_state.get("sent", 0)
    lift = await _responses(campaign_id) if by_state.get("holdout") else None
    variants = [{"variant": row["variant"], "sent": int(row["sent"]),
                 "opened": int(row["opened"]), "clicked": int(row["clicked"]),
                 "open_rate": round(100 * int(row["opened"]) / int(row["sent"]), 1)
                 if int(row["sent"]) else None,
                 "click_rate": round(100 * int(row["clicked"]) / int(row["sent"]), 1)
                 if int(row["sent"]) else None}
                for row in await Message.raw(
        "SELECT variant, COUNT(*) AS sent, COUNT(opened_at) AS opened, "
        "COUNT(clicked_at) AS clicked FROM campaigns_message WHERE campaign = {} "
        "AND state = 'sent' GROUP BY variant ORDER BY variant", campaign_id).run()]
    return {"lift": lift, "variants": variants if len(variants) > 1 else [], "by_state": by_state, "total": sum(by_state.values()), "reasons": reasons,
            "sent": sent, "opened": int(totals["opened"]), "clicked": int(totals["clicked"]),
            "clicks": int(totals["clicks"]), "unsubscribed": int(totals["unsubscribed"]),
            "failures": failures,
            # In percent, as the percent filter takes them.
            "open_rate": round(100 * int(totals["opened"]) / sent, 1) if sent else None,
            "click_rate": round(100 * int(totals["clicked"]) / sent, 1) if sent else None}

