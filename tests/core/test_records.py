"""Audited writes: every change lands in the audit log with before and after values."""

from __future__ import annotations

import json

import pytest

from core import records
from core.audit import AuditEntry
from core.customers.tables import Customer
from core.permissions import Actor

ADA = Actor(kind="staff", id=None, name="Ada", email="ada@example.test")


async def test_create_update_delete_are_audited_with_before_and_after(rapport):
    row = await records.create(ADA, Customer, {"kind": "contact", "name": "Grace Hopper"})
    await records.update(ADA, Customer, row["id"], {"name": "Grace B. Hopper"})
    await records.delete(ADA, Customer, row["id"])
    entries = await AuditEntry.select().where(AuditEntry.record_type == "core_customer").order_by(
        AuditEntry.id).run()
    assert [e["action"] for e in entries] == ["create", "update", "delete"]
    assert json.loads(entries[1]["changes"]) == {"name": ["Grace Hopper", "Grace B. Hopper"]}
    assert entries[0]["actor_label"] == "ada@example.test"
    assert await Customer.count().run() == 0


async def test_updating_a_missing_record_changes_nothing(rapport):
    with pytest.raises(records.RecordNotFound):
        await records.update(ADA, Customer, 999, {"name": "x"})
    assert await AuditEntry.count().run() == 0


async def test_a_failed_write_leaves_no_audit_entry(rapport):
    import sqlite3

    import asyncpg

    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        await records.create(ADA, Customer, {"kind": "contact", "name": "x", "owner": 424242})
    assert await AuditEntry.count().run() == 0
    assert await Customer.count().run() == 0


class _Declares:
    from core.plugin import hookimpl as _hookimpl

    @_hookimpl
    def register_events(self):
        from core.plugin import EventType

        return [EventType("testing.contact.changed", "A contact changed", durable=True),
                EventType("testing.contact.seen", "A contact was looked at")]


async def test_a_write_can_announce_a_durable_event_in_its_transaction(rapport):
    from core.jobs_tables import OutboxEvent

    rapport.pm.register(_Declares(), name="testing_declares")
    heard = []

    async def listen(event):
        heard.append((event.name, event.payload))

    rapport.event_listeners.append(listen)

    def emit(name="testing.contact.changed", **more):
        return records.Emit(rapport, name, key=lambda row: f"customer:{row['id']}", **more)

    row = await records.create(ADA, Customer, {"kind": "contact", "name": "Grace"},
                               event=emit(payload={"kind": "contact"}))
    await records.update(ADA, Customer, row["id"], {"name": "Grace"}, event=emit())  # no change
    await records.update(ADA, Customer, row["id"], {"name": "Grace H.", "job_title": "Admiral"},
                         event=emit())
    with pytest.raises(RuntimeError):  # rolled back: neither the change nor its event exist
        async with Customer._meta.db.transaction():
            await records.delete(ADA, Customer, row["id"], event=emit())
            raise RuntimeError("the change failed")
    await records.delete(ADA, Customer, row["id"], event=emit("testing.contact.seen"))
    stored = await OutboxEvent.select(OutboxEvent.name, OutboxEvent.payload,
                                      OutboxEvent.key).order_by(OutboxEvent.id).run()
    key = f"customer:{row['id']}"
    assert [(e["name"], json.loads(e["payload"]), e["key"]) for e in stored] == [
        ("testing.contact.changed", {"id": row["id"], "kind": "contact"}, key),
        ("testing.contact.changed", {"id": row["id"], "changed": ["job_title", "name"]}, key)]
    # Listeners hear both, and the event that is not durable once the delete committed.
    assert heard == [("testing.contact.changed", {"id": row["id"], "kind": "contact"}),
                     ("testing.contact.changed", {"id": row["id"], "changed": ["job_title", "name"]}),
                     ("testing.contact.seen", {"id": row["id"]})]
