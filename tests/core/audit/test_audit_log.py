"""The audit log: administrators filter, page through and export it; nobody can rewrite it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from core import audit
from core.audit import AuditEntry
from core.permissions import Actor
from tests.conftest import make_user, sign_in

ADA = Actor(kind="staff", id=7, name="Ada", email="ada@example.test")
BOB = Actor(kind="staff", id=8, name="Bob", email="bob@example.test")


async def _seed() -> None:
    await audit.record(ADA, "create", "core_customer", 1, {"name": [None, "Acme"]})
    await audit.record(BOB, "update", "core_customer", 1, {"name": ["Acme", "Acme Ltd"]})
    await audit.record(ADA, "delete", "core_customer_phone", 5, {"phone": ["+441", None]})
    await audit.record(BOB, "login", summary="signed in", ip="10.0.0.9")


def _rows(page) -> str:
    """The log's rows as shown (the filters' choices name every kind of record)."""
    body = page.text.split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
    return body if "<tbody>" in page.text else ""


async def test_audit_page_lists_entries_newest_first(admin_client):
    await _seed()
    page = await admin_client.get("/admin/audit")
    assert page.status_code == 200
    text = _rows(page)
    assert text.index("Signed in") < text.index("Customer phone 5") < text.index("Acme Ltd")
    assert "10.0.0.9" in text


async def test_audit_page_speaks_in_words_not_table_names(admin_client):
    await _seed()
    page = await admin_client.get("/admin/audit")
    rows = _rows(page)
    assert "Customer 1" in rows and "Customer phone 5" in rows
    for word in ("Created", "Changed", "Deleted", "Signed in"):
        assert f"<td>{word}</td>" in rows
    assert "core_customer" not in rows and ">login<" not in rows and "staff #" not in rows
    # The filters offer the same words, and filtering by one still finds the entries.
    assert '<option value="core_customer">Customer</option>' in page.text
    assert "placeholder=\"core_customer\"" not in page.text
    chosen = await admin_client.get("/admin/audit", params={"record_type": "core_customer_phone"})
    assert "Customer phone 5" in _rows(chosen) and "Acme Ltd" not in _rows(chosen)


async def test_audit_page_filters_by_actor_action_record_and_date(admin_client):
    await _seed()
    by_actor = await admin_client.get("/admin/audit", params={"actor": "ADA@example.test"})
    assert "Customer phone" in _rows(by_actor) and "Acme Ltd" not in _rows(by_actor)
    by_id = await admin_client.get("/admin/audit", params={"actor": "8"})
    assert "Acme Ltd" in _rows(by_id) and "Customer phone" not in _rows(by_id)
    by_action = await admin_client.get("/admin/audit", params={"action": "update"})
    assert "Acme Ltd" in _rows(by_action) and "signed in" not in _rows(by_action)
    by_record = await admin_client.get(
        "/admin/audit", params={"record_type": "core_customer", "record_id": "1"})
    assert "Acme Ltd" in _rows(by_record) and "Customer phone" not in _rows(by_record)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    future = await admin_client.get("/admin/audit", params={"date_from": tomorrow})
    assert "No audit entries match" in future.text
    today = datetime.now(UTC).date().isoformat()
    now = await admin_client.get("/admin/audit", params={"date_from": today, "date_to": today})
    assert "Acme Ltd" in now.text


async def test_bad_date_is_reported_next_to_the_field(admin_client):
    page = await admin_client.get("/admin/audit", params={"date_from": "yesterday"})
    assert page.status_code == 400
    assert 'id="date_from-error"' in page.text


async def test_audit_page_pages_with_a_cursor(admin_client):
    for i in range(60):
        await audit.record(ADA, "update", "core_customer", i, summary=f"change number {i}")
    first = await admin_client.get("/admin/audit", params={"action": "update"})
    assert "change number 59<" in first.text and "change number 5<" not in first.text
    assert 'rel="next"' in first.text
    oldest_shown = min(int(r["id"]) for r in await AuditEntry.select(AuditEntry.id).order_by(
        AuditEntry.id, ascending=False).limit(50).run())
    second = await admin_client.get(
        "/admin/audit", params={"action": "update", "before": str(oldest_shown)})
    assert "change number 5<" in second.text and "change number 59<" not in second.text
    assert 'rel="next"' not in second.text


async def test_csv_export_holds_the_filtered_set_and_is_itself_audited(admin_client):
    await _seed()
    response = await admin_client.get("/admin/audit/export.csv", params={"actor": "bob@example.test"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["action"] for r in rows} == {"update", "login"}
    assert all(r["actor_label"] == "bob@example.test" for r in rows)
    exports = await AuditEntry.select().where(AuditEntry.action == "export").run()
    assert len(exports) == 1
    assert exports[0]["actor_id"] == admin_client.user_id
    assert "bob@example.test" in exports[0]["summary"]


async def test_csv_export_defuses_spreadsheet_formulas(admin_client):
    await audit.record(ADA, "update", summary="=HYPERLINK(\"http://evil\")")
    response = await admin_client.get("/admin/audit/export.csv")
    row = next(csv.DictReader(io.StringIO(response.text)))
    assert row["summary"].startswith("'=")


async def test_staff_without_audit_permission_cannot_read_or_export(client):
    from core.identity.tables import Role, RolePermission

    role = await Role.insert(Role(key="clerk", name="Clerk")).returning(Role.id).run()
    await RolePermission.insert(RolePermission(role=role[0]["id"], permission="core.customer.view",
                                               scope="all")).run()
    await make_user("rep@example.test", roles=["clerk"])
    await sign_in(client, "rep@example.test")
    for url in ("/admin/audit", "/admin/audit/export.csv"):
        response = await client.get(url)
        assert response.status_code == 403


async def test_database_refuses_to_change_or_delete_audit_entries(rapport):
    await audit.record(ADA, "create", "core_customer", 1, {"name": [None, "Acme"]})
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.update({AuditEntry.summary: "nothing happened"}).where(
            AuditEntry.id > 0).run()
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.delete().where(AuditEntry.id > 0).run()
    with pytest.raises(Exception, match="append-only"):
        # Even a redaction may not change who acted.
        await AuditEntry.update({AuditEntry.actor_id: 99, AuditEntry.redacted_at: datetime.now(UTC)}
                                ).where(AuditEntry.id > 0).run()
    rows = await AuditEntry.select().run()
    assert len(rows) == 1 and rows[0]["actor_id"] == 7 and rows[0]["redacted_at"] is None


async def test_erasure_redaction_blanks_values_once_and_keeps_the_trail(rapport):
    await audit.record(ADA, "update", "core_customer", 1, {"name": ["Ada", "Ada L."]},
                       summary="renamed Ada", ip="10.1.1.1")
    assert await audit.redact("core_customer", [1]) == 1
    row = await AuditEntry.select().first().run()
    assert "Ada" not in row["changes"] and "Ada" not in row["summary"] and row["ip"] == ""
    assert '"name"' in row["changes"]
    assert (row["action"], row["record_id"], row["actor_id"]) == ("update", "1", 7)
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.update({AuditEntry.summary: "again"}).where(AuditEntry.id > 0).run()
