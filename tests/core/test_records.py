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
