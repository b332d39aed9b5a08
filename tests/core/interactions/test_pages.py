"""Staff pages: logging an interaction, the list, "my day", the calendar feed, the policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.identity.users import load_actor
from core.interactions import listing
from core.interactions.service import record_interaction
from core.interactions.tables import Interaction
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}


async def test_logging_an_interaction_shows_it_on_the_customer_page(admin_client):
    customer = await add_customer()
    form = await admin_client.get(f"/interactions/new?customer={customer}", headers=HTML)
    assert form.status_code == 200 and 'name="subject"' in form.text
    response = await admin_client.post("/interactions/new", headers=await csrf_headers(
        admin_client), data={"customer": str(customer), "channel": "call",
                             "direction": "outbound", "subject": "Discussed renewal",
                             "duration_minutes": "12"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/customers/{customer}"
    row = await Interaction.select().first().run()
    assert row["duration_seconds"] == 720 and row["user"] == admin_client.user_id
    page = await admin_client.get(f"/customers/{customer}", headers=HTML)
    assert "Discussed renewal" in page.text


async def test_bad_form_shows_errors_next_to_the_fields(admin_client):
    response = await admin_client.post("/interactions/new", headers=await csrf_headers(
        admin_client), data={"channel": "fax", "direction": "outbound", "subject": "x",
                             "duration_minutes": "abc"})
    assert response.status_code == 400
    assert 'id="customer-error"' in response.text and 'id="channel-error"' in response.text
    assert 'id="duration_minutes-error"' in response.text
    assert await Interaction.count().run() == 0


async def test_interactions_list_filters_and_pages_by_cursor(admin_client):
    rapport = admin_client.rapport
    customer = await add_customer()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(55):
        await record_interaction(rapport, None, customer_id=customer,
                                 channel="email" if i % 2 else "call", subject=f"Touch {i:02d}",
                                 occurred_at=start + timedelta(hours=i))
    first = await admin_client.get("/interactions", headers=HTML)
    assert "Touch 54" in first.text and "Touch 04" not in first.text and "Load more" in first.text
    cursor = first.text.split("after=")[1].split('"')[0]
    more = await admin_client.get(f"/interactions?after={cursor}",
                                  headers={**HTML, "hx-request": "true"})
    assert "Touch 04" in more.text and "Touch 54" not in more.text
    calls = await admin_client.get("/interactions?channel=call", headers=HTML)
    assert "Touch 54" in calls.text and "Touch 53" not in calls.text
    bad = await admin_client.get("/interactions?channel=fax", headers=HTML)
    assert "channel: must be one of" in bad.text


async def test_representative_sees_only_interactions_of_customers_they_reach(client):
    rapport = client.rapport
    rep = await make_user("rep@example.test", roles=["field_representative"])
    mine = await add_customer("Mine Ltd", owner=rep)
    theirs = await add_customer("Theirs Ltd")
    await record_interaction(rapport, None, customer_id=mine, channel="visit", subject="Visible")
    hidden, _ = await record_interaction(rapport, None, customer_id=theirs, channel="visit",
                                         subject="Hidden")
    await sign_in(client, "rep@example.test")
    page = await client.get("/interactions", headers=HTML)
    assert "Visible" in page.text and "Hidden" not in page.text
    assert (await client.get(f"/interactions/{hidden['id']}", headers=HTML)).status_code == 404
    assert (await client.get(f"/customers/{theirs}", headers=HTML)).status_code == 404


async def test_my_day_lists_follow_ups_and_marks_them_done_with_htmx(admin_client):
    rapport = admin_client.rapport
    from core.identity.users import load_actor

    actor = await load_actor(rapport, admin_client.user_id)
    customer = await add_customer()
    now = datetime.now(UTC)
    overdue, _ = await record_interaction(rapport, actor, customer_id=customer, channel="call",
                                          followup_due=now - timedelta(days=2),
                                          followup_note="Send the quote")
    await record_interaction(rapport, actor, customer_id=customer, channel="call",
                             followup_due=now + timedelta(days=3), followup_note="Book a demo")
    page = await admin_client.get("/my-day", headers=HTML)
    assert "Send the quote" in page.text and "Book a demo" in page.text
    done = await admin_client.post(f"/follow-ups/{overdue['id']}/done",
                                   headers={**await csrf_headers(admin_client),
                                            "hx-request": "true"})
    assert done.status_code == 201 or done.status_code == 200
    assert "Done." in done.text
    assert "Send the quote" not in (await admin_client.get("/my-day", headers=HTML)).text


async def test_calendar_feed_serves_follow_ups_to_the_secret_url_only(admin_client):
    rapport = admin_client.rapport
    from core.identity.users import load_actor

    actor = await load_actor(rapport, admin_client.user_id)
    customer = await add_customer()
    await record_interaction(rapport, actor, customer_id=customer, channel="call",
                             followup_due=datetime.now(UTC) + timedelta(days=1),
                             followup_note="Ring back")
    page = await admin_client.get("/calendar", headers=HTML)
    url = page.text.split('id="feed-url" readonly value="')[1].split('"')[0]
    path = url.split("://", 1)[1].split("/", 1)[1]
    feed = await admin_client.get(f"/{path}")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in feed.text and "Follow up: Ada Lovelace" in feed.text
    assert (await admin_client.get("/calendar/1-forged.ics")).status_code == 404
    await admin_client.post("/calendar/regenerate", headers=await csrf_headers(admin_client))
    assert (await admin_client.get(f"/{path}")).status_code == 404


async def test_administrator_changes_the_fatigue_rule_in_the_ui(admin_client):
    bad = await admin_client.post("/admin/contact-policy", headers=await csrf_headers(
        admin_client), data={"max_outbound": "2", "period_days": "0"})
    assert bad.status_code == 400 and 'id="period_days-error"' in bad.text
    ok = await admin_client.post("/admin/contact-policy", headers=await csrf_headers(
        admin_client), data={"max_outbound": "2", "period_days": "14"}, follow_redirects=False)
    assert ok.status_code == 303
    from core.interactions.policy import fatigue_rule

    assert (await fatigue_rule()).period_days == 14


async def test_interactions_list_says_how_many_match_counting_a_customers_timeline_once(
        admin_client):
    rapport = admin_client.rapport
    ada = await add_customer()
    bob = await add_customer("Bob Smith")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(53):
        await record_interaction(rapport, None, customer_id=ada,
                                 channel="email" if i % 2 else "call", subject=f"Touch {i:02d}",
                                 occurred_at=start + timedelta(hours=i))
    # Bob takes part in one of Ada's calls: it is on his timeline once, not twice.
    shared, _ = await record_interaction(rapport, None, customer_id=bob, channel="meeting",
                                         subject="Together", participants=[ada])
    page = await admin_client.get("/interactions", headers=HTML)
    assert "54 interactions" in page.text
    calls = await admin_client.get("/interactions?channel=call", headers=HTML)
    assert "27 interactions" in calls.text
    timeline = await admin_client.get(f"/interactions?customer={ada}", headers=HTML)
    assert "54 interactions" in timeline.text
    one = await admin_client.get(f"/interactions?customer={bob}", headers=HTML)
    assert "1 interaction<" in one.text
    admin = await load_actor(rapport, admin_client.user_id)
    capped = await listing.count_upto(rapport, admin, listing.Filters(), bound=10)
    assert capped == 11  # "10+": counting stops past the bound
