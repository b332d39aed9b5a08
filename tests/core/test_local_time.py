"""Times in the user's zone: chosen in My account (or taken from the browser at sign-in),
typed and shown in it on staff pages, stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.audit import AuditEntry
from core.identity.tables import User
from core.interactions.tables import Interaction
from core.local_time import browser_locale, parse_local
from tests.conftest import DEMO_PASSWORD, csrf_headers
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}
BERLIN = ZoneInfo("Europe/Berlin")


async def _choose(client, zone: str, locale: str = "de-DE"):
    return await client.post("/account/preferences", data={"time_zone": zone, "locale": locale},
                             headers=await csrf_headers(client), follow_redirects=False)


async def test_a_user_in_berlin_enters_nine_oclock_and_sees_nine_oclock(admin_client):
    assert (await _choose(admin_client, "Europe/Berlin")).status_code == 303
    customer = await add_customer()
    form = await admin_client.get(f"/interactions/new?customer={customer}", headers=HTML)
    assert "When (Europe/Berlin time; empty means now)" in form.text
    assert "Due (Europe/Berlin time)" in form.text and "UTC" not in form.text
    response = await admin_client.post("/interactions/new", headers=await csrf_headers(
        admin_client), data={"customer": str(customer), "channel": "call",
                             "direction": "outbound", "subject": "Winter call",
                             "occurred_at": "2026-01-15T09:00",
                             "followup_due": "2026-07-15T09:00"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    row = await Interaction.select().first().run()
    assert row["occurred_at"].astimezone(UTC) == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    assert row["followup_due"].astimezone(UTC) == datetime(2026, 7, 15, 7, 0, tzinfo=UTC)

    page = await admin_client.get(f"/interactions/{row['id']}", headers=HTML)
    assert "15 Jan 2026 09:00" in page.text and "08:00" not in page.text
    edit = await admin_client.get(f"/interactions/{row['id']}/edit", headers=HTML)
    assert 'value="2026-01-15T09:00"' in edit.text and 'value="2026-07-15T09:00"' in edit.text


async def test_the_audit_log_and_a_utc_user_see_the_same_moment_differently(admin_client):
    await AuditEntry.insert(AuditEntry(
        occurred_at=datetime(2026, 1, 15, 23, 30, tzinfo=UTC), actor_kind="staff",
        actor_label="someone@example.test", action="update", record_type="core_customer",
        record_id="1", summary="late change")).run()
    log = await admin_client.get("/admin/audit", params={"date_from": "2026-01-15",
                                                          "date_to": "2026-01-15"}, headers=HTML)
    assert "2026-01-15 23:30:00" in log.text and "When (UTC)" in log.text
    await _choose(admin_client, "Europe/Berlin")
    log = await admin_client.get("/admin/audit", params={"date_from": "2026-01-16",
                                                          "date_to": "2026-01-16"}, headers=HTML)
    assert "2026-01-16 00:30:00" in log.text and "When (Europe/Berlin)" in log.text


async def test_sign_in_takes_the_browsers_zone_only_until_the_user_chooses(client):
    from tests.conftest import make_user

    await make_user("ada@example.test")

    async def sign_in_from(zone: str, language: str):
        return await client.post("/login", data={
            "email": "ada@example.test", "password": DEMO_PASSWORD, "next": "/",
            "time_zone": zone, "locale": language}, headers=await csrf_headers(client),
            follow_redirects=False)

    assert (await sign_in_from("Europe/Berlin", "de")).status_code == 303
    user = await User.select(User.time_zone, User.locale).first().run()
    assert user == {"time_zone": "Europe/Berlin", "locale": "de-DE"}
    await _choose(client, "America/New_York", "en-US")
    assert (await sign_in_from("Asia/Tokyo", "ja")).status_code == 303
    user = await User.select(User.time_zone, User.locale).first().run()
    assert user == {"time_zone": "America/New_York", "locale": "en-US"}


async def test_my_account_refuses_an_unknown_time_zone(admin_client):
    refused = await _choose(admin_client, "Mars/Olympus")
    assert refused.status_code == 400 and 'id="time-zone-error"' in refused.text
    page = await admin_client.get("/account", headers=HTML)
    assert 'src="/static/js/time-zone.js"' in page.text and "<script>" not in page.text


def test_typed_times_are_read_in_the_zone_across_daylight_saving():
    assert parse_local("2026-01-15T09:00", BERLIN) == datetime(2026, 1, 15, 8, tzinfo=UTC)
    assert parse_local("2026-07-15 09:00", BERLIN) == datetime(2026, 7, 15, 7, tzinfo=UTC)
    # 02:30 does not exist on 29 March 2026 in Berlin: the clock reads 03:30 then.
    assert parse_local("2026-03-29T02:30", BERLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert parse_local("", BERLIN) is None
    assert parse_local("next tuesday", BERLIN) == "next tuesday"  # left for the field's error
    assert browser_locale("de-AT") == "de-AT" and browser_locale("fr") == "fr-FR"
    assert browser_locale("xx") == ""
