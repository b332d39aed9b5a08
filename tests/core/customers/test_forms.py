"""Customer forms: create, edit with inline errors, delete with confirmation; custom-field
administration."""

from __future__ import annotations

from core.customers import custom_fields, service
from core.customers.tables import Customer, CustomField
from tests.conftest import csrf_headers, make_user, sign_in

HTML = {"accept": "text/html"}


async def test_creating_a_contact_linked_to_an_account(admin_client):
    acme = await service.create_customer(admin_client.rapport, None,
                                         {"kind": "account", "name": "Acme Ltd"})
    form = await admin_client.get("/contacts/new", headers=HTML)
    assert form.status_code == 200 and 'name="first_name"' in form.text
    options = await admin_client.get("/accounts/options?account=acm", headers=HTML)
    assert f"Acme Ltd (#{acme['id']})" in options.text
    response = await admin_client.post("/contacts/new", headers=await csrf_headers(admin_client),
                                       data={"first_name": "Wile", "last_name": "Coyote",
                                             "account": f"Acme Ltd (#{acme['id']})",
                                             "emails": "wile@acme.test", "lifecycle_stage": "lead"},
                                       follow_redirects=False)
    assert response.status_code == 303
    row = await Customer.select().where(Customer.name == "Wile Coyote").first().run()
    assert response.headers["location"] == f"/customers/{row['id']}"
    assert row["account"] == acme["id"] and row["owner"] == admin_client.user_id


async def test_a_bad_form_shows_each_error_next_to_its_field_and_keeps_the_input(admin_client):
    await custom_fields.create_definition(None, {"key": "seats", "label": "Seats",
                                                 "field_type": "number", "required": True})
    response = await admin_client.post("/accounts/new", headers=await csrf_headers(admin_client),
                                       data={"name": "Acme", "emails": "not-an-email",
                                             "website": "ftp://x", "cf_seats": ""})
    assert response.status_code == 400
    assert 'id="emails-error"' in response.text and "not an email address" in response.text
    assert 'id="website-error"' in response.text
    assert 'id="cf_seats-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="Acme"' in response.text
    assert await Customer.count().run() == 0


async def test_editing_and_deleting_a_customer(admin_client):
    row = await service.create_customer(admin_client.rapport, None, {
        "kind": "account", "name": "Acme", "phones": ["+44 20 7946 0958"], "tags": ["vip"]})
    page = await admin_client.get(f"/customers/{row['id']}/edit", headers=HTML)
    assert "+44 20 7946 0958" in page.text and 'value="vip"' in page.text
    headers = await csrf_headers(admin_client)
    saved = await admin_client.post(f"/customers/{row['id']}/edit", headers=headers, data={
        "name": "Acme Holdings", "phones": "+44 20 7946 0958", "tags": "vip, hot",
        "lifecycle_stage": "customer"}, follow_redirects=False)
    assert saved.status_code == 303
    changed = await Customer.select().where(Customer.id == row["id"]).first().run()
    assert changed["name"] == "Acme Holdings" and changed["lifecycle_stage"] == "customer"
    confirm = await admin_client.get(f"/customers/{row['id']}/delete", headers=HTML)
    assert "Delete Acme Holdings?" in confirm.text
    gone = await admin_client.post(f"/customers/{row['id']}/delete", headers=headers,
                                   follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/accounts"
    assert await Customer.count().run() == 0


async def test_someone_else_s_customer_cannot_be_edited_and_looks_missing(client):
    owner = await make_user("owner@example.test", roles=["field_representative"])
    await make_user("other@example.test", roles=["field_representative"])
    row = await service.create_customer(client.rapport, None, {"kind": "account", "name": "X",
                                                               "owner": owner})
    await sign_in(client, "other@example.test")
    assert (await client.get(f"/customers/{row['id']}/edit", headers=HTML)).status_code == 404


async def test_an_administrator_defines_a_custom_field_that_appears_on_forms(admin_client):
    page = await admin_client.get("/admin/custom-fields", headers=HTML)
    assert "No custom fields yet" in page.text
    headers = await csrf_headers(admin_client)
    bad = await admin_client.post("/admin/custom-fields", headers=headers, data={
        "label": "Tier", "key": "Tier!", "field_type": "choice", "choices": "Gold"})
    assert bad.status_code == 400 and 'id="key-error"' in bad.text
    ok = await admin_client.post("/admin/custom-fields", headers=headers, data={
        "label": "Tier", "key": "tier", "field_type": "choice", "choices": "Gold\nSilver",
        "applies_to": "account"}, follow_redirects=False)
    assert ok.status_code == 303
    form = await admin_client.get("/accounts/new", headers=HTML)
    assert 'name="cf_tier"' in form.text and "Silver" in form.text
    contact_form = await admin_client.get("/contacts/new", headers=HTML)
    assert 'name="cf_tier"' not in contact_form.text
    field = await CustomField.select().first().run()
    await admin_client.post(f"/admin/custom-fields/{field['id']}/delete", headers=headers)
    assert await CustomField.count().run() == 0


async def test_custom_field_administration_needs_the_settings_permission(client):
    await make_user("viewer@example.test", roles=["read_only"])
    await sign_in(client, "viewer@example.test")
    response = await client.get("/admin/custom-fields", headers=HTML)
    assert response.status_code == 403
