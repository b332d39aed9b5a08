"""What a signed-in customer does in the portal: profile, preferences, history, cards, data."""

from __future__ import annotations

import json

import pytest

from core.audit import AuditEntry
from core.customers.tables import ConsentRecord, Customer, CustomerEmail, CustomerPhone
from core.plugin import Panel, hookimpl
from tests.conftest import app_client, csrf_headers
from tests.core.portal.conftest import make_person, portal_sign_in


def interactions_available():
    try:
        from core.interactions.service import record_interaction  # noqa: F401
    except ImportError:
        return False
    return True


needs_interactions = pytest.mark.skipif(not interactions_available(),
                                        reason="core.interactions is not in this build")


async def portal_touch_points(customer_id: int) -> list[dict]:
    from core.interactions.tables import Interaction

    return await Interaction.select().where(
        (Interaction.customer == customer_id) & (Interaction.channel == "portal")).run()


async def test_customer_changes_their_name_and_it_is_audited(portal):
    ada = portal.ada
    page = await portal.get("/portal/profile")
    assert page.status_code == 200 and 'value="Lovelace"' in page.text
    bad = await portal.post("/portal/profile", data={"first_name": "", "last_name": ""},
                            headers=await csrf_headers(portal))
    assert bad.status_code == 400 and 'id="first_name-error"' in bad.text
    saved = await portal.post("/portal/profile", data={"first_name": "Augusta Ada",
                                                       "last_name": "King"},
                              headers=await csrf_headers(portal), follow_redirects=False)
    assert saved.status_code == 303
    row = await Customer.select().where(Customer.id == ada.customer_id).first().run()
    assert row["name"] == "Augusta Ada King"
    entry = await AuditEntry.select().where(
        (AuditEntry.record_type == "core_customer") & (AuditEntry.action == "update")
    ).order_by(AuditEntry.id, ascending=False).first().run()
    assert entry["actor_kind"] == "portal" and entry["actor_id"] == ada.identity_id
    assert "Augusta Ada King" in entry["changes"]
    # The audit log names the portal identity, not the person.
    assert "ada@example.test" not in entry["actor_label"]
    if interactions_available():
        touch = await portal_touch_points(ada.customer_id)
        assert [t["subject"] for t in touch] == ["Name changed in the portal"]


async def test_customer_adds_and_removes_phones_and_emails(portal):
    ada = portal.ada
    bad = await portal.post("/portal/profile/phones/add", data={"phone": "call me"},
                            headers=await csrf_headers(portal))
    assert bad.status_code == 400 and 'id="phone-error"' in bad.text
    added = await portal.post("/portal/profile/phones/add",
                              data={"phone": "+44 7911 123456", "label": "mobile"},
                              headers=await csrf_headers(portal), follow_redirects=False)
    assert added.status_code == 303
    phones = await CustomerPhone.select(CustomerPhone.phone).where(
        CustomerPhone.customer == ada.customer_id).run()
    assert "+447911123456" in {p["phone"] for p in phones}  # stored in E.164
    gone = await portal.post(f"/portal/profile/emails/{ada.email_id}/delete",
                             headers=await csrf_headers(portal), follow_redirects=False)
    assert gone.status_code == 303
    assert await CustomerEmail.count().where(CustomerEmail.customer == ada.customer_id).run() == 0
    address = await portal.post("/portal/profile/addresses/add",
                                data={"street": "12 St James's Square", "city": "London",
                                      "country": "gb"},
                                headers=await csrf_headers(portal), follow_redirects=True)
    assert "12 St James&#39;s Square" in address.text and ", GB" in address.text


async def test_preferences_change_the_contact_policy_at_once(portal):
    from core.interactions.policy import check_contact

    ada = portal.ada
    rapport = portal.rapport
    assert (await check_contact(rapport, ada.customer_id, "email", purpose="marketing")).allowed
    page = await portal.get("/portal/preferences")
    assert page.status_code == 200
    saved = await portal.post("/portal/preferences", data={
        "preferred_channel": "sms", "opt_out": ["email"], "consent_marketing": "withdrawn",
        "consent_newsletter": "given",
    }, headers=await csrf_headers(portal), follow_redirects=True)
    assert saved.status_code == 200 and "apply from now on" in saved.text
    email = await check_contact(rapport, ada.customer_id, "email")
    assert not email.allowed and email.rule == "opted_out"
    marketing_sms = await check_contact(rapport, ada.customer_id, "sms", purpose="marketing")
    assert not marketing_sms.allowed and marketing_sms.rule == "no_consent"
    call = await check_contact(rapport, ada.customer_id, "call")
    assert not call.allowed and call.rule == "preferred_channel"
    assert (await check_contact(rapport, ada.customer_id, "sms", purpose="newsletter")).allowed
    consents = await ConsentRecord.select().where(ConsentRecord.customer == ada.customer_id).run()
    assert {(c["purpose"], c["granted"], c["source"]) for c in consents} == {
        ("marketing", False, "portal"), ("newsletter", True, "portal")}
    touch = await portal_touch_points(ada.customer_id)
    assert any(t["subject"] == "Communication preferences changed in the portal" for t in touch)
    # Saving the same answers again records no new consent.
    await portal.post("/portal/preferences", data={
        "preferred_channel": "sms", "opt_out": ["email"], "consent_marketing": "withdrawn",
        "consent_newsletter": "given"}, headers=await csrf_headers(portal))
    assert await ConsentRecord.count().where(ConsentRecord.customer == ada.customer_id).run() == 2
    # Each change was announced durably, once (core.customer.consent_changed).
    from core.jobs_tables import OutboxEvent

    events = await OutboxEvent.select(OutboxEvent.payload).where(
        OutboxEvent.name == "core.customer.consent_changed").order_by(OutboxEvent.id).run()
    assert [json.loads(e["payload"])["changed"] for e in events] == [
        ["opted_out_channels", "preferred_channel"], ["consent"], ["consent"]]


async def test_preferring_an_opted_out_channel_is_refused_inline(portal):
    response = await portal.post("/portal/preferences",
                                 data={"preferred_channel": "email", "opt_out": ["email"]},
                                 headers=await csrf_headers(portal))
    assert response.status_code == 400 and 'id="preferred_channel-error"' in response.text


@needs_interactions
async def test_history_shows_what_staff_chose_to_show(admin_client):
    from core.interactions.service import record_interaction

    client = admin_client
    rapport = client.rapport
    ada = await make_person(rapport, "Ada", "Lovelace", "ada@example.test")
    for channel, subject, visible in (("email", "Your order shipped", None),
                                      ("call", "Internal call note", None),
                                      ("meeting", "Kick-off meeting", True)):
        await record_interaction(rapport, None, customer_id=ada.customer_id, channel=channel,
                                 subject=subject, visible_in_portal=visible)
    await portal_sign_in(client, "ada@example.test")
    history = await client.get("/portal/history")
    assert "Kick-off meeting" in history.text  # shown one by one
    assert "Your order shipped" not in history.text and "Internal call note" not in history.text
    # An administrator shows email in the portal: it appears, calls still do not.
    saved = await client.post("/admin/portal/history", data={"channel": ["portal", "email"]},
                              headers=await csrf_headers(client), follow_redirects=False)
    assert saved.status_code == 303
    history = await client.get("/portal/history")
    assert "Your order shipped" in history.text and "Internal call note" not in history.text
    home = await client.get("/portal/")
    assert "Your order shipped" in home.text


async def test_home_shows_cards_plugins_contribute(make_rapport):
    class Loyalty:
        @staticmethod
        @hookimpl
        def portal_home_cards(customer):
            return [Panel(id="points", title="Your points", html=f"<p>{customer['id'] * 10} points</p>")]

        @staticmethod
        @hookimpl
        def register_portal_nav_items():
            from core.plugin import NavItem

            return [NavItem(label="Rewards", href="/portal/rewards", order=50)]

    instance = await make_rapport()
    instance.pm.register(Loyalty, name="loyaltylike")
    async with app_client(instance) as client:
        ada = await make_person(instance, "Ada", "Lovelace", "ada@example.test")
        await portal_sign_in(client, "ada@example.test")
        home = await client.get("/portal/")
    assert "Your points" in home.text and f"{ada.customer_id * 10} points" in home.text
    assert 'href="/portal/rewards"' in home.text


async def test_customer_downloads_their_own_data(portal):
    response = await portal.get("/portal/data/export.json")
    assert response.status_code == 200
    data = response.json()
    assert data["customer_id"] == portal.ada.customer_id
    text = json.dumps(data)
    assert "Lovelace" in text and "ada@example.test" in text
    assert "Babbage" not in text and "bob@example.test" not in text
    assert data["sections"]["core_portal_identity"]["email"] == "ada@example.test"
    assert "password_hash" not in text and "invitation_hash" not in text
    entry = await AuditEntry.select().where(AuditEntry.action == "privacy_export").first().run()
    assert entry["actor_kind"] == "portal"


async def test_admin_brands_the_portal(admin_client):
    client = admin_client
    bad = await client.post("/admin/branding", data={"name": "Acme", "colour": "red",
                                                     "logo_url": "https://cdn.example/x.png"},
                            headers=await csrf_headers(client))
    assert bad.status_code == 400
    assert 'id="colour-error"' in bad.text and 'id="logo_url-error"' in bad.text
    ok = await client.post("/admin/branding", data={"name": "Acme Care", "colour": "#aa3300",
                                                    "logo_url": "/static/brand/logo.svg"},
                           headers=await csrf_headers(client), follow_redirects=False)
    assert ok.status_code == 303
    login = await client.get("/portal/login")
    assert "Acme Care" in login.text and 'src="/static/brand/logo.svg"' in login.text
    css = await client.get("/portal/branding.css")
    assert "--portal-brand: #aa3300" in css.text


async def test_erasing_a_portal_customer_removes_their_access(portal):
    from core.portal.tables import PortalIdentity
    from core.privacy.service import erase_customer

    await erase_customer(portal.rapport, None, portal.ada.customer_id)
    assert await PortalIdentity.count().where(
        PortalIdentity.customer == portal.ada.customer_id).run() == 0
    response = await portal.get("/portal/", follow_redirects=False)
    assert response.status_code in (303, 401)
    dump = json.dumps(await AuditEntry.select().run(), default=str)
    assert "ada@example.test" not in dump and "Lovelace" not in dump
