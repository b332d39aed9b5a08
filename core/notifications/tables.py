"""The in-app inbox: one row per notification for one staff user."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.identity.tables import User


class Notification(Table, tablename="core_notification"):
    """What a PushMessage said, kept for the bell and /notifications whether or not the user
    has a device for push. ``read_at`` is null until the user reads it."""

    id: Serial
    user = ForeignKey(User, on_delete=OnDelete.cascade)  # indexed with read_at, id (migration)
    topic = Varchar(length=100, default="")
    title = Varchar(length=200, default="")
    body = Text(default="")
    url = Varchar(length=2000, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    read_at = Timestamptz(null=True, default=None)
