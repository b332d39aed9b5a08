"""Tables of outbound webhooks (core app): subscriptions and their delivery log.

Times are UTC. Created by a hand-written migration (core/piccolo_migrations, 2026-12-07 03:50).
"""

from __future__ import annotations

from piccolo.columns import BigInt, BigSerial, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

# Delivery states.
PENDING, SUCCEEDED, RETRYING, FAILED, SKIPPED = (
    "pending", "succeeded", "retrying", "failed", "skipped")


class WebhookSubscription(Table, tablename="core_webhook"):
    """A URL receiving chosen durable events, signed with its own secret, sent as its owner."""

    id = BigSerial(primary_key=True)
    name = Varchar(length=200)
    url = Text()
    events = Text(default="[]")  # JSON list of event type names
    secret = Varchar(length=100)
    # After a rotation the old secret also signs for a day, so receivers can switch over.
    previous_secret = Varchar(length=100, null=True, default=None)
    previous_secret_until = Timestamptz(null=True, default=None)
    owner = Integer()  # the user the deliveries are made as (their permissions, field rules)
    enabled = Boolean(default=True)
    disabled_reason = Text(null=True, default=None)
    disabled_at = Timestamptz(null=True, default=None)
    consecutive_failures = Integer(default=0)
    last_delivery_at = Timestamptz(null=True, default=None)
    last_status = Varchar(length=20, null=True, default=None)
    last_response_code = Integer(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WebhookDelivery(Table, tablename="core_webhook_delivery"):
    """One message to one subscription: an event (once per event id) or a test ping."""

    id = BigSerial(primary_key=True)
    subscription = BigInt()
    event_id = BigInt(null=True, default=None)  # None for a test ping
    event_name = Varchar(length=200)
    body = Text()  # the JSON sent, fixed when the delivery was made (redacted for the owner)
    status = Varchar(length=20, default=PENDING)
    attempts = Integer(default=0)
    response_code = Integer(null=True, default=None)
    response_ms = Integer(null=True, default=None)
    response_excerpt = Text(null=True, default=None)
    error = Text(null=True, default=None)
    created_at = Timestamptz()
    last_attempt_at = Timestamptz(null=True, default=None)


TABLES: list[type[Table]] = [WebhookSubscription, WebhookDelivery]
