"""The staff "Log interaction" form never saves an interaction that says nothing."""

from __future__ import annotations

from core.interactions.service import record_interaction
from core.interactions.tables import Interaction
from tests.conftest import csrf_headers
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}


async def test_log_form_without_subject_or_notes_is_refused_naming_the_subject(admin_client):
    customer = await add_customer()
    response = await admin_client.post("/interactions/new", headers=await csrf_headers(
        admin_client), data={"customer": str(customer), "channel": "call",
                             "direction": "outbound", "subject": "  ", "notes": ""})
    assert response.status_code == 400
    assert 'id="subject-error"' in response.text and "subject or notes" in response.text
    assert await Interaction.count().run() == 0


async def test_log_form_from_the_360_page_keeps_the_form_with_the_error(admin_client):
    customer = await add_customer()
    response = await admin_client.post("/interactions/new", headers={
        **await csrf_headers(admin_client), "hx-request": "true"}, data={
        "customer": str(customer), "channel": "call", "direction": "outbound"})
    assert response.status_code == 200 and "Logged." not in response.text
    assert 'id="subject-error"' in response.text
    assert await Interaction.count().run() == 0


async def test_notes_alone_are_enough_to_log(admin_client):
    customer = await add_customer()
    response = await admin_client.post("/interactions/new", headers=await csrf_headers(
        admin_client), data={"customer": str(customer), "channel": "call",
                             "direction": "outbound", "notes": "Asked for the price list"},
        follow_redirects=False)
    assert response.status_code == 303
    assert (await Interaction.select(Interaction.notes).first().run())["notes"] == (
        "Asked for the price list")


async def test_editing_away_subject_and_notes_is_refused(admin_client):
    customer = await add_customer()
    row, _ = await record_interaction(admin_client.rapport, None, customer_id=customer,
                                      channel="call", subject="Renewal")
    response = await admin_client.post(f"/interactions/{row['id']}/edit", headers=await
                                       csrf_headers(admin_client), data={
        "channel": "call", "direction": "none", "subject": "", "notes": ""})
    assert response.status_code == 400 and 'id="subject-error"' in response.text
    assert (await Interaction.select(Interaction.subject).first().run())["subject"] == "Renewal"
