"""The 360° view: profile, figures, follow-ups, timeline, related records, plugin panels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.interactions.service import record_interaction
from core.plugin import Action, Panel, hookimpl
from tests.conftest import make_user, sign_in
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}


async def test_page_shows_profile_figures_follow_ups_and_related_contacts(admin_client):
    account = await add_customer("Acme Ltd", kind="account")
    ada = await add_customer("Ada Lovelace", account=account, job_title="CTO",
                             preferred_channel="email")
    await add_customer("Bob Babbage", account=account, job_title="Buyer")
    await record_interaction(admin_client.rapport, None, customer_id=ada, channel="meeting",
                             subject="Quarterly review", direction="outbound",
                             followup_due=datetime.now(UTC) + timedelta(days=1),
                             followup_assignee=admin_client.user_id,
                             followup_note="Send the minutes")
    page = await admin_client.get(f"/customers/{ada}", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "<h1>Ada Lovelace</h1>" in text and "CTO" in text and "Acme Ltd" in text
    assert "Bob Babbage" in text and "Quarterly review" in text and "Send the minutes" in text
    assert "May be contacted by email now." in text
    assert 'data-live="/live/customers/' in text


async def test_contact_policy_refusal_is_shown_on_the_page(admin_client):
    customer = await add_customer(do_not_contact=True)
    page = await admin_client.get(f"/customers/{customer}", headers=HTML)
    assert "asked not to be contacted at all" in page.text


async def test_timeline_pages_with_load_more_and_filters_by_channel(admin_client):
    customer = await add_customer()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(30):
        await record_interaction(admin_client.rapport, None, customer_id=customer,
                                 channel="sms" if i == 0 else "call", subject=f"Touch {i:02d}",
                                 occurred_at=start + timedelta(hours=i))
    page = await admin_client.get(f"/customers/{customer}", headers=HTML)
    assert "Touch 29" in page.text and "Touch 00" not in page.text and "Load more" in page.text
    cursor = page.text.split("after=")[1].split('"')[0]
    more = await admin_client.get(f"/customers/{customer}/timeline?after={cursor}",
                                  headers={"hx-request": "true"})
    assert "Touch 00" in more.text and "Touch 29" not in more.text
    sms = await admin_client.get(f"/customers/{customer}/timeline?channel=sms",
                                 headers={"hx-request": "true"})
    assert "Touch 00" in sms.text and "Touch 01" not in sms.text


async def test_participant_sees_the_meeting_in_their_own_timeline(admin_client):
    ada = await add_customer()
    bob = await add_customer("Bob Babbage")
    await record_interaction(admin_client.rapport, None, customer_id=ada, channel="meeting",
                             subject="Joint meeting", participants=[bob])
    page = await admin_client.get(f"/customers/{bob}", headers=HTML)
    assert "Joint meeting" in page.text


async def test_timeline_and_figures_merge_own_and_attended_interactions_in_order(admin_client):
    # Own interactions and those the customer attended are read by two queries (one OR of
    # both scans every interaction on PostgreSQL): pages must still interleave them by time.
    from core.identity.users import load_actor
    from core.interactions import listing

    rapport = admin_client.rapport
    ada = await add_customer()
    bob = await add_customer("Bob Babbage")
    start = datetime.now(UTC) - timedelta(days=10)
    for i in range(10):
        own = i % 2 == 0
        await record_interaction(rapport, None, customer_id=ada if own else bob, channel="call",
                                 subject=f"Touch {i:02d}", occurred_at=start + timedelta(hours=i),
                                 participants=[] if own else [ada])
    await record_interaction(rapport, None, customer_id=bob, channel="call", subject="Bob alone",
                             occurred_at=start + timedelta(hours=20))
    actor = await load_actor(rapport, admin_client.user_id)
    seen, after = [], ""
    while True:
        rows, after = await listing.page(rapport, actor, listing.Filters(customer_id=ada),
                                         after=after or "", limit=3)
        seen += [r["subject"] for r in rows]
        if after is None:
            break
    assert seen == [f"Touch {i:02d}" for i in reversed(range(10))]
    page = await admin_client.get(f"/customers/{ada}", headers=HTML)
    figures = page.text.split("Key figures")[1].split("</dl>")[0]
    assert "Interactions, last 90 days</dt><dd>10</dd>" in figures
    assert (start + timedelta(hours=9)).strftime("%d %b %Y") in figures


async def test_customer_outside_scope_is_not_found(client):
    await make_user("rep@example.test", roles=["field_representative"])
    theirs = await add_customer("Someone Else's")
    await sign_in(client, "rep@example.test")
    assert (await client.get(f"/customers/{theirs}", headers=HTML)).status_code == 404
    assert (await client.get(f"/customers/{theirs}/timeline")).status_code == 404
    assert (await client.get(f"/live/customers/{theirs}")).status_code == 404


class SlowPanelPlugin:
    @hookimpl
    def customer_panels(self, customer):
        return [Panel(id="orders", title="Orders", url=f"/orders/panel/{customer['id']}"),
                Panel(id="note", title="Loyalty", html="<p>Gold member</p>", order=1)]

    @hookimpl
    def record_actions(self, record_type, record):
        if record_type != "customer":
            return None
        return [Action(label="Send survey", href=f"/survey/{record['id']}"),
                Action(label="Secret thing", href="/secret", permission="nobody.has.this")]


async def test_plugin_panels_load_lazily_and_actions_respect_permissions(admin_client):
    admin_client.rapport.pm.register(SlowPanelPlugin(), name="slow_panel_test")
    customer = await add_customer()
    page = await admin_client.get(f"/customers/{customer}", headers=HTML)
    text = page.text
    assert f'hx-get="/orders/panel/{customer}" hx-trigger="load"' in text
    assert "<p>Gold member</p>" in text
    assert text.index("Loyalty") < text.index("Orders")  # ordered by Panel.order
    assert "Send survey" in text and "Secret thing" not in text
