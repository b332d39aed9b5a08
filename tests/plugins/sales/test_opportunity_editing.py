"""A deal's details change after it was created: name, amount and currency, expected close,
owner and contact, audited, within the user's scope, and owners only among the people the
user may give deals to."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import new_customer, post_form


async def _deal(client, **extra) -> dict:
    response = await client.post("/api/v1/sales/opportunities", json={
        "name": "Fleet renewal", "amount": "1000.00", **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def _stored(deal_id: int) -> dict:
    from plugins.sales.tables import Opportunity

    return await Opportunity.select().where(Opportunity.id == deal_id).first().run()


async def test_a_deal_is_edited_and_the_change_is_audited(sales_client):
    account = await new_customer("Acme Ltd")
    contact = await new_customer("Ada Lovelace", kind="contact")
    colleague = await make_user("colleague@example.test", name="Colleague")
    deal = await _deal(sales_client, customer=account)
    page = await sales_client.get(f"/sales/opportunities/{deal['id']}")
    assert f'href="/sales/opportunities/{deal["id"]}/edit"' in page.text
    form = await sales_client.get(f"/sales/opportunities/{deal['id']}/edit")
    assert form.status_code == 200 and 'value="Fleet renewal"' in form.text
    assert "Colleague" in form.text  # an administrator may give the deal to anyone
    saved = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit", {
        "name": "Fleet renewal 2027", "amount": "12,500.50", "currency": "usd",
        "expected_close": "2027-03-31", "owner": str(colleague), "contact": str(contact)})
    assert saved.status_code == 303, saved.text
    stored = await _stored(deal["id"])
    assert stored["name"] == "Fleet renewal 2027"
    assert (stored["amount_amount"], stored["amount_currency"]) == (Decimal("12500.50"), "USD")
    assert stored["expected_close"] == date(2027, 3, 31)
    assert (stored["owner"], stored["contact"]) == (colleague, contact)
    shown = await sales_client.get(f"/sales/opportunities/{deal['id']}")
    assert "Ada Lovelace" in shown.text and "Fleet renewal 2027" in shown.text
    from core.audit import AuditEntry

    entry = await AuditEntry.select().where(
        (AuditEntry.record_type == "sales_opportunity") & (AuditEntry.action == "update")
        & (AuditEntry.record_id == str(deal["id"]))).first().run()
    assert entry is not None and "amount_amount" in entry["changes"] and \
        "owner" in entry["changes"]


async def test_a_refused_change_names_the_field_and_changes_nothing(sales_client):
    deal = await _deal(sales_client)
    for values, field, message in (
            ({"name": " "}, "name", "give the opportunity a name"),
            ({"name": "X", "amount": "-5"}, "amount", "cannot be negative"),
            ({"name": "X", "amount": "5", "currency": "EURO"}, "currency", "ISO 4217"),
            ({"name": "X", "expected_close": "31/03/2027"}, "expected_close", "YYYY-MM-DD"),
            ({"name": "X", "contact": "999999"}, "contact", "contact person you can see")):
        refused = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit",
                                  values)
        assert refused.status_code == 400, (values, refused.text)
        assert f'id="{field}-error"' in refused.text and message in refused.text
    assert (await _stored(deal["id"]))["name"] == "Fleet renewal"


async def test_a_representative_cannot_give_a_deal_to_someone_outside_their_reach(
        sales_client):
    await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    teammate = await make_user("mate@example.test", roles=["sales_representative"],
                               teams=["North"], name="Teammate")
    stranger = await make_user("far@example.test", roles=["sales_representative"],
                               teams=["South"], name="Stranger")
    await sign_in(sales_client, "rep@example.test")
    deal = await _deal(sales_client)  # the rep's own deal (edit scope: own)
    form = await sales_client.get(f"/sales/opportunities/{deal['id']}/edit")
    assert "Stranger" not in form.text and "Teammate" not in form.text
    for other in (stranger, teammate):
        refused = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit",
                                  {"name": "Fleet renewal", "owner": str(other)})
        assert refused.status_code == 400 and "someone you may give deals to" in refused.text
    assert (await _stored(deal["id"]))["owner"] != stranger
    kept = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit",
                           {"name": "Renamed", "owner": str(deal["owner"])})
    assert kept.status_code == 303  # keeping the owner is no assignment


async def test_a_manager_may_give_deals_within_their_teams_only(sales_client):
    manager = await make_user("lead@example.test", roles=["manager"], teams=["North"])
    teammate = await make_user("mate@example.test", roles=["sales_representative"],
                               teams=["North"])
    stranger = await make_user("far@example.test", roles=["sales_representative"],
                               teams=["South"])
    deal = await _deal(sales_client, owner=manager)
    from plugins.sales.tables import Opportunity

    await Opportunity.update({Opportunity.owner: manager}).where(
        Opportunity.id == deal["id"]).run()
    await sign_in(sales_client, "lead@example.test")
    refused = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit",
                              {"owner": str(stranger)})
    assert refused.status_code == 400
    given = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit",
                            {"owner": str(teammate)})
    assert given.status_code == 303
    assert (await _stored(deal["id"]))["owner"] == teammate


async def test_a_deal_outside_the_users_scope_cannot_be_edited(sales_client):
    deal = await _deal(sales_client)  # the administrator's
    await make_user("rep@example.test", roles=["sales_representative"])
    await sign_in(sales_client, "rep@example.test")
    assert (await sales_client.get(f"/sales/opportunities/{deal['id']}/edit")).status_code \
        == 404
    refused = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/edit",
                              {"name": "Mine now"})
    assert refused.status_code == 404
    await make_user("viewer@example.test", roles=["read_only"])
    await sign_in(sales_client, "viewer@example.test")
    assert (await sales_client.get(f"/sales/opportunities/{deal['id']}/edit")).status_code \
        == 403
    assert (await _stored(deal["id"]))["name"] == "Fleet renewal"


async def test_the_new_deal_form_picks_the_customer_by_name(sales_client):
    account = await new_customer("Acme Ltd")
    form = await sales_client.get("/sales/opportunities/new")
    assert "Customer id" not in form.text and "customer_search" in form.text
    created = await post_form(sales_client, "/sales/opportunities", {
        "name": "Picked", "customer": str(account), "amount": "10"})
    assert created.status_code == 303
    typed = await post_form(sales_client, "/sales/opportunities", {
        "name": "Typed without JavaScript", "customer_number": str(account), "amount": "10"})
    assert typed.status_code == 303
    from plugins.sales.tables import Opportunity

    assert await Opportunity.count().where(Opportunity.customer == account).run() == 2


async def test_the_api_changes_a_deal_and_names_the_field_it_refuses(sales_client):
    contact = await new_customer("Ada Lovelace", kind="contact")
    account = await new_customer("Not A Person Ltd")
    deal = await _deal(sales_client)
    changed = await sales_client.patch(f"/api/v1/sales/opportunities/{deal['id']}", json={
        "amount": {"amount": "2500.00", "currency": "GBP"}, "expected_close": "2027-01-15",
        "contact": contact})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert Decimal(body["amount"]["amount"]) == Decimal("2500")
    assert body["amount"]["currency"] == "GBP"
    assert body["name"] == "Fleet renewal" and body["contact"] == contact
    for payload, field in (({"amount": 12.5}, "amount"), ({"contact": account}, "contact"),
                           ({"owner": 999999}, "owner"), ({"name": ""}, "name")):
        refused = await sales_client.patch(f"/api/v1/sales/opportunities/{deal['id']}",
                                           json=payload)
        assert refused.status_code == 422 and refused.json()["field"] == field, payload
    assert (await _stored(deal["id"]))["amount_currency"] == "GBP"
