"""The interactions list exports its filtered set as CSV (every page, in the list's order,
within the reader's export scope, audited), and lists oldest first on request."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from core.audit import AuditEntry
from core.identity.users import load_actor
from core.interactions.service import record_interaction
from tests.conftest import make_user, sign_in
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}
START = datetime(2026, 1, 1, tzinfo=UTC)


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_export_holds_every_filtered_interaction_across_pages_and_is_audited(admin_client):
    rapport = admin_client.rapport
    customer = await add_customer("=HYPERLINK(evil)")
    for i in range(230):  # more than one export page (listing.MAX_LIMIT is 200)
        await record_interaction(rapport, None, customer_id=customer,
                                 channel="call" if i % 2 else "email", subject=f"Touch {i:03d}",
                                 occurred_at=START + timedelta(hours=i), duration_seconds=90)
    page = await admin_client.get("/interactions?channel=call", headers=HTML)
    assert 'href="/interactions/export.csv?channel=call"' in page.text
    rows = rows_of(await admin_client.get("/interactions/export.csv?channel=call"))
    assert len(rows) == 115 and {r["channel"] for r in rows} == {"call"}
    assert rows[0]["subject"] == "Touch 229" and rows[-1]["subject"] == "Touch 001"
    assert rows[0]["customer"] == "'=HYPERLINK(evil)"  # a spreadsheet must not run it
    assert rows[0]["duration_minutes"] == "1.5"
    oldest = rows_of(await admin_client.get("/interactions/export.csv?order=oldest"))
    assert [r["subject"] for r in oldest[:2]] == ["Touch 000", "Touch 001"] and len(oldest) == 230
    entry = await AuditEntry.select().where(AuditEntry.action == "export").order_by(
        AuditEntry.id, ascending=False).first().run()
    assert entry["record_type"] == "core_interaction" and "order=oldest" in entry["summary"]
    bad = await admin_client.get("/interactions/export.csv?channel=fax")
    assert bad.status_code == 400 and "channel" in bad.text


async def test_list_pages_oldest_first_without_repeats(admin_client):
    rapport = admin_client.rapport
    customer = await add_customer()
    for i in range(60):
        await record_interaction(rapport, None, customer_id=customer, channel="call",
                                 subject=f"Touch {i:02d}", occurred_at=START + timedelta(hours=i))
    first = await admin_client.get("/interactions?order=oldest", headers=HTML)
    assert "Touch 00" in first.text and "Touch 59" not in first.text
    cursor = first.text.split("after=")[1].split('"')[0].split("&")[0]
    more = await admin_client.get(f"/interactions?order=oldest&after={cursor}",
                                  headers={**HTML, "hx-request": "true"})
    assert "Touch 59" in more.text and "Touch 00" not in more.text
    timeline = await admin_client.get(f"/api/v1/interactions?customer={customer}&order=oldest"
                                      "&limit=3", headers={"accept": "application/json"})
    assert [i["subject"] for i in timeline.json()["data"]] == ["Touch 00", "Touch 01",
                                                               "Touch 02"]


async def test_export_keeps_to_the_readers_export_scope(client):
    rapport = client.rapport
    admin = await load_actor(rapport, await make_user("boss@example.test"))
    rep = await make_user("rep@example.test", roles=["sales_representative"])
    field = await make_user("field@example.test", roles=["field_representative"])
    theirs = await add_customer("Theirs", owner=rep)
    others = await add_customer("Others", owner=admin.id)
    await record_interaction(rapport, None, customer_id=theirs, channel="call",
                             subject="Mine to export", occurred_at=START)
    await record_interaction(rapport, None, customer_id=others, channel="call",
                             subject="Not mine", occurred_at=START)
    await sign_in(client, "rep@example.test")
    assert [r["subject"] for r in rows_of(await client.get("/interactions/export.csv"))] == [
        "Mine to export"]
    await sign_in(client, "field@example.test")  # a role without core.interaction.export
    page = await client.get("/interactions", headers=HTML)
    assert "Mine to export" not in page.text and "export.csv" not in page.text
    assert (await client.get("/interactions/export.csv")).status_code == 403
    assert field
