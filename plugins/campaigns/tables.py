"""Campaigns tables: segments (saved audience rules), campaigns (an e-mail and who it goes
to) and their messages, one row per recipient.

Every table is prefixed ``campaigns_``. A message row is unique per (campaign, customer), so
a recipient can never be queued, let alone mailed, twice in one campaign; its ``state`` moves
queued -> sending -> sent / failed, or queued -> suppressed when the contact policy refuses
the recipient at send time (``reason`` holds the policy's rule word). Members drawn at random
into the control group are ``holdout`` from the start and never mailed.
"""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import User

CAMPAIGN_STATES = ("draft", "scheduled", "sending", "sent")
MESSAGE_STATES = ("queued", "sending", "sent", "failed", "suppressed", "holdout")


class Segment(Table, tablename="campaigns_segment"):
    """A dynamic audience: rules (JSON, see segments.py) evaluated whenever it is used."""

    id: Serial
    name = Varchar(length=150)
    description = Text(default="")
    rules = Text(default="")  # {"match": "all"|"any", "groups": [{"match", "conditions"}]}
    created_by = ForeignKey(User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Campaign(Table, tablename="campaigns_campaign"):
    """An e-mail campaign: its audience, its template and, once sent, its progress."""

    id: Serial
    name = Varchar(length=150)
    segment = ForeignKey(Segment, null=True, default=None, index=True)
    subject = Varchar(length=250, default="")
    body_html = Text(default="")  # sanitised at save; sandboxed Jinja personalisation
    body_text = Text(default="")  # optional; derived from the HTML when empty
    state = Varchar(length=12, default="draft", index=True)
    links = Text(default="")  # JSON list of tracked URLs, frozen when sending starts
    recipients_ready = Boolean(default=False)  # the send job has written every message
    holdout_percent = Integer(default=0)  # control group: share of the segment left out
    subject_b = Varchar(length=250, default="")  # A/B: variant B (empty: no A/B test)
    body_html_b = Text(default="")
    created_by = ForeignKey(User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    sent_by = ForeignKey(User, null=True, default=None)
    send_started_at = Timestamptz(null=True, default=None)
    scheduled_for = Timestamptz(null=True, default=None)  # Send later: when the job starts
    send_finished_at = Timestamptz(null=True, default=None)


class Message(Table, tablename="campaigns_message"):
    """One recipient of one campaign (unique together), and what happened to their e-mail."""

    id: Serial
    campaign = ForeignKey(Campaign, index=True)
    customer = ForeignKey(Customer, index=True)
    email = Varchar(length=254, default="")
    state = Varchar(length=12, default="queued")
    reason = Varchar(length=40, default="")  # policy rule word when suppressed
    detail = Text(default="")  # the policy's sentence, or the mail server's refusal
    sent_at = Timestamptz(null=True, default=None)
    opened_at = Timestamptz(null=True, default=None)
    clicked_at = Timestamptz(null=True, default=None)
    clicks = Integer(default=0)
    unsubscribed_at = Timestamptz(null=True, default=None)
    variant = Varchar(length=1, default="A")  # A/B test: which version this recipient got


TABLES = (Segment, Campaign, Message)
