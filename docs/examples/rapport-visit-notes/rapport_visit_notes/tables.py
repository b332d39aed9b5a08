"""The plugin's one table. Its name starts with the plugin id so no other plugin collides."""

from __future__ import annotations

from piccolo.columns import Date, ForeignKey, Serial, Text, Timestamptz
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import User


class Note(Table, tablename="visit_notes_note"):
    id: Serial
    # Notes belong to the customer: deleting a customer deletes its visit notes.
    customer = ForeignKey(Customer, null=False, on_delete=OnDelete.cascade, index=True)
    author = ForeignKey(User, null=True, default=None, on_delete=OnDelete.set_null)
    visited_on = Date()
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow())
