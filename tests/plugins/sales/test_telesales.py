"""Telesales: a call list built from a filter, worked one by one, with the contact policy
deciding who may be called and outcomes logged as interactions with follow-ups."""

from __future__ import annotations

import re

from tests.plugins.sales.conftest import post_form


async def contact(name: str, phone: str, **values) -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind="contact", name=name, primary_phone=phone,
                                          lifecycle_stage="prospect", **values)).returning(
        Customer.id).run()
    return rows[0]["id"]


async def test_call_list_is_worked_one_by_one_and_respects_do_not_contact(sales_client):
    from core.interactions.tables import Interaction

    reachable = await contact("Ada Caller", "+441234567890")
    blocked = await contact("Grace Private", "+441234567891", do_not_contact=True)
    await contact("No Phone", "")
    built = await post_form(sales_client, "/sales/calls", {
        "name": "Prospects", "kind": "customers", "lifecycle_stage": "prospect"})
    assert built.status_code == 303, built.text
    url = built.headers["location"]
    page = await sales_client.get(url)
    assert "Ada Caller" in page.text and "0 of 2 done" in page.text
    entry = re.search(r"/entries/(\d+)/log", page.text).group(1)
    logged = await post_form(sales_client, f"{url}/entries/{entry}/log", {
        "outcome": "call back", "notes": "Wants a demo", "followup_due": "2030-01-15",
        "followup_note": "Demo"})
    assert logged.status_code == 303, logged.text
    call = await Interaction.select().where(Interaction.customer == reachable).first().run()
    assert call["channel"] == "call" and call["outcome"] == "call back"
    assert call["followup_due"] is not None and call["plugin"] == "sales"
    page = await sales_client.get(url)
    assert "Grace Private" in page.text and "Do not call" in page.text
    assert "/log\"" not in page.text  # no way to log a call the policy forbids
    entry = re.search(r"/entries/(\d+)/skip", page.text).group(1)
    await post_form(sales_client, f"{url}/entries/{entry}/skip", {})
    assert await Interaction.count().where(Interaction.customer == blocked).run() == 0
    finished = await sales_client.get(url)
    assert "Everyone on this list has been called" in finished.text


async def test_call_list_of_leads_logs_on_the_lead(sales_client):
    from plugins.sales.tables import Lead, LeadActivity

    lead = (await sales_client.post("/api/v1/sales/leads", json={
        "last_name": "Prospect", "phone": "+4411111", "region": "North"})).json()
    built = await post_form(sales_client, "/sales/calls", {
        "name": "North leads", "kind": "leads", "region": "north"})
    url = built.headers["location"]
    page = await sales_client.get(url)
    entry = re.search(r"/entries/(\d+)/log", page.text).group(1)
    await post_form(sales_client, f"{url}/entries/{entry}/log", {"outcome": "reached"})
    assert await LeadActivity.count().where(LeadActivity.lead == lead["id"]).run() == 1
    stored = await Lead.select(Lead.status).where(Lead.id == lead["id"]).first().run()
    assert stored["status"] == "working"
    empty = await post_form(sales_client, "/sales/calls", {
        "name": "Nobody", "kind": "leads", "region": "Atlantis"})
    assert empty.status_code == 400 and "nobody matches" in empty.text
