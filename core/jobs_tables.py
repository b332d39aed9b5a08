"""Tables of the background-job queue and the durable-event outbox (core app).

Times are UTC. On SQLite Piccolo stores them as text in one format, which compares in time
order, so the claim queries can compare them with parameters on both databases.
"""

from __future__ import annotations

from piccolo.columns import BigInt, BigSerial, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

# Job states. A cancelled or finished job keeps its row (the admin page shows recent ones)
# until the daily purge.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
# Delivery states of one durable event to one subscriber.
PENDING, DELIVERING, HANDLED, GAVE_UP, DISCARDED = (
    "pending", "running", "done", "failed", "discarded")


class JobRow(Table, tablename="core_job"):
    id = BigSerial(primary_key=True)
    name = Varchar(length=200)
    args = Text(default="{}")  # JSON
    status = Varchar(length=20, default=QUEUED)
    run_at = Timestamptz()
    attempts = Integer(default=0)
    max_attempts = Integer(default=5)
    # While a job with this (name, unique_key) waits in the queue, enqueueing another returns it.
    unique_key = Varchar(length=200, null=True, default=None)
    # The occurrence of a recurring job: one row per (name, slot) ever, so workers agree.
    schedule_slot = Timestamptz(null=True, default=None)
    exclusive = Boolean(default=False)  # never two of this name running at once
    locked_until = Timestamptz(null=True, default=None)  # the running attempt's lease
    worker = Varchar(length=100, null=True, default=None)
    cancel_requested = Boolean(default=False)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz()
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)


class OutboxEvent(Table, tablename="core_event"):
    """A durable event, written in the transaction of the change it announces."""

    id = BigSerial(primary_key=True)
    name = Varchar(length=200)
    payload = Text(default="{}")  # JSON
    actor_id = Integer(null=True, default=None)
    key = Varchar(length=200, null=True, default=None)  # aggregate, e.g. "customer:12"
    created_at = Timestamptz()


class EventDelivery(Table, tablename="core_event_delivery"):
    """One durable event for one subscriber (a plugin's ``on_event``): handled or not."""

    id = BigSerial(primary_key=True)
    event_id = BigInt()
    subscriber = Varchar(length=200)
    key = Varchar(length=200, null=True, default=None)
    status = Varchar(length=20, default=PENDING)
    attempts = Integer(default=0)
    run_at = Timestamptz()
    locked_until = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz()
    handled_at = Timestamptz(null=True, default=None)


TABLES: list[type[Table]] = [JobRow, OutboxEvent, EventDelivery]
