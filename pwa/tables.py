"""The field app's own tables: push devices, preferences and outbox; reminders; what the
device uploaded (attachments, visit check-ins) and sync conflicts kept for the user.

Interactions themselves live in core (``core_interaction``); rows here point at them by id
(no foreign key, so this app migrates independently of the interactions app).
"""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Numeric,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import ApiToken, User


class PushSubscription(Table, tablename="pwa_push_subscription"):
    """One device of one user that accepted notifications (a browser push subscription)."""

    id: Serial
    user = ForeignKey(User, index=True)
    endpoint = Text()
    endpoint_hash = Varchar(length=64, unique=True)  # sha256 of endpoint: endpoints are long
    p256dh = Varchar(length=200)
    auth = Varchar(length=100)
    label = Varchar(length=200, default="")  # e.g. "Chrome on Android", from the user agent
    created_at = Timestamptz(default=TimestamptzNow())
    last_success_at = Timestamptz(null=True, default=None)
    last_failure_at = Timestamptz(null=True, default=None)
    # The API token that registered the device, if any: the device goes when the token is
    # revoked or expires (pwa.push.forget_devices_of_ended_tokens), and with the token's row.
    api_token = ForeignKey(ApiToken, null=True, default=None, index=True)


class PushPreference(Table, tablename="pwa_push_preference"):
    """A user's choice for one topic; no row means the topic is on."""

    user = ForeignKey(User, index=True)
    topic = Varchar(length=100)
    enabled = Boolean(default=True)


class PushOutbox(Table, tablename="pwa_push_outbox"):
    """A notification waiting for (or done with) delivery to one device.

    Rows survive restarts; a worker claims due rows by setting ``locked_until`` atomically.
    ``status``: pending, sent, dead (gave up or the device is gone).
    """

    id: Serial
    subscription = ForeignKey(PushSubscription, index=True)  # cascades when a device is removed
    user_id = Integer(index=True)
    topic = Varchar(length=100, default="")
    payload = Text()  # JSON: title, body, url, tag
    urgency = Varchar(length=10, default="normal")
    ttl_seconds = Integer(default=86400)
    status = Varchar(length=10, default="pending", index=True)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), index=True)
    locked_until = Timestamptz(null=True, default=None)
    last_error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)


class Reminder(Table, tablename="pwa_reminder"):
    """A notification due at a time (e.g. a follow-up), kept in the database so that a restart
    never loses it. ``source`` (e.g. ``follow_up:42``) makes rescheduling an update."""

    id: Serial
    user = ForeignKey(User, index=True)
    source = Varchar(length=100, unique=True)
    due_at = Timestamptz(index=True)
    topic = Varchar(length=100, default="core.follow_up.due")
    title = Varchar(length=200)
    body = Text(default="")
    url = Varchar(length=500, default="/field/")
    status = Varchar(length=10, default="pending", index=True)  # pending, claimed, sent
    claimed_until = Timestamptz(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)


class FieldAttachment(Table, tablename="pwa_attachment"):
    """A photo or a customer signature taken on a device; the bytes are a file in the data
    directory, never in the database."""

    id: Serial
    client_id = Varchar(length=36, unique=True)
    interaction_id = Integer(index=True)
    customer = ForeignKey(Customer, index=True)
    kind = Varchar(length=16)  # photo, signature
    content_type = Varchar(length=40)
    size = Integer()
    path = Varchar(length=300)  # relative to the data directory
    created_by = ForeignKey(User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class VisitCheckIn(Table, tablename="pwa_visit_check_in"):
    """Where and when a representative checked in for a visit report."""

    id: Serial
    interaction_id = Integer(unique=True)
    customer = ForeignKey(Customer, index=True)
    user = ForeignKey(User, index=True)
    checked_in_at = Timestamptz()
    latitude = Numeric(digits=(9, 6), null=True, default=None)
    longitude = Numeric(digits=(9, 6), null=True, default=None)
    accuracy_m = Integer(null=True, default=None)


class SyncConflict(Table, tablename="pwa_sync_conflict"):
    """A change made offline that lost to a newer server version (rule: the server wins for
    edits). The device's version is kept here and shown to the user, never dropped."""

    id: Serial
    client_id = Varchar(length=36, unique=True)
    user = ForeignKey(User, index=True)
    record_type = Varchar(length=100)
    record_id = Varchar(length=64)
    device_version = Text()  # JSON of what the device sent
    server_version = Text()  # JSON of what the server kept
    created_at = Timestamptz(default=TimestamptzNow())
    acknowledged = Boolean(default=False)


class SyncReceipt(Table, tablename="pwa_sync_receipt"):
    """One uploaded item, by the id the device gave it: a replayed upload answers from here
    instead of doing the work again."""

    id: Serial
    client_id = Varchar(length=36, unique=True)
    user = ForeignKey(User, index=True)
    kind = Varchar(length=20)
    status = Varchar(length=10)  # created, updated, conflict
    record_id = Varchar(length=64, default="")
    message = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


TABLES: list[type[Table]] = [PushSubscription, PushPreference, PushOutbox, Reminder,
                             FieldAttachment, VisitCheckIn, SyncConflict, SyncReceipt]
