"""Likely duplicates: flagged on create by email, phone or a close name at the same account;
listed on the duplicates page; never revealing a customer outside the user's scope."""

from __future__ import annotations

from core.customers.duplicates import likely_duplicates
from core.customers.service import create_customer
from core.identity.tables import Team
from core.identity.users import load_actor
from tests.conftest import make_user, sign_in


async def test_same_email_phone_or_close_name_at_the_same_account_is_flagged(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    acme = await create_customer(rapport, actor, {"kind": "account", "name": "Acme Ltd"})
    ada = await create_customer(rapport, actor, {
        "kind": "contact", "first_name": "Ada", "last_name": "Lovelace", "account": acme["id"],
        "emails": ["ada@acme.example"], "phones": ["+44 20 7123 4567"]})

    by_email = await likely_duplicates(rapport, actor, {
        "kind": "contact", "first_name": "A.", "emails": ["ADA@acme.example "]})
    assert [(d.customer_id, d.reason) for d in by_email] == [
        (ada["id"], "same email ada@acme.example")]
    by_phone = await likely_duplicates(rapport, actor, {
        "kind": "contact", "first_name": "Someone", "phones": ["020 7123 4567"]})
    assert [d.customer_id for d in by_phone] == [ada["id"]]
    by_name = await likely_duplicates(rapport, actor, {
        "kind": "contact", "first_name": "Lovelace,", "last_name": "Ada", "account": acme["id"]})
    assert [d.reason for d in by_name] == ["similar name at the same account"]
    elsewhere = await likely_duplicates(rapport, actor, {
        "kind": "contact", "first_name": "Ada", "last_name": "Lovelace"})
    assert elsewhere == []  # the same name without the account is not enough
    accounts = await likely_duplicates(rapport, actor, {"kind": "account", "name": "ACME Ltd."})
    assert [d.customer_id for d in accounts] == [acme["id"]]


async def test_a_duplicate_outside_the_users_scope_is_flagged_without_its_name(client):
    rapport = client.rapport
    admin = await make_user("admin@example.test")
    rep = await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    await make_user("x@example.test", roles=["sales_representative"], teams=["South"])
    south = (await Team.select(Team.id).where(Team.name == "South").first().run())["id"]
    await create_customer(rapport, await load_actor(rapport, admin), {
        "kind": "contact", "first_name": "Secret", "last_name": "Client", "team": south,
        "owner": None, "emails": ["secret@client.example"]})
    found = await likely_duplicates(rapport, await load_actor(rapport, rep), {
        "kind": "contact", "first_name": "New", "emails": ["secret@client.example"]})
    assert len(found) == 1 and found[0].customer_id is None
    assert "Secret" not in found[0].name
    await sign_in(client, "rep@example.test")
    warning = await client.get("/customers/duplicates/check",
                               params={"kind": "contact", "emails": "secret@client.example"})
    assert "outside your scope" in warning.text and "Secret Client" not in warning.text
    api = await client.get("/api/v1/customers/duplicates",
                           params={"kind": "contact", "email": "secret@client.example"})
    assert api.json()["duplicates"][0]["customer_id"] is None


async def test_duplicates_page_lists_groups_with_a_merge_link(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    first = await create_customer(rapport, actor, {"kind": "contact", "first_name": "Grace",
                                                    "emails": ["grace@navy.example"]})
    second = await create_customer(rapport, actor, {"kind": "contact", "first_name": "G. Hopper",
                                                     "emails": ["grace@navy.example"]})
    page = await admin_client.get("/customers/duplicates")
    assert page.status_code == 200
    assert "Same email: grace@navy.example" in page.text
    assert f"/customers/merge?survivor={first['id']}&amp;merged={second['id']}" in page.text


async def test_duplicates_page_has_an_empty_state(admin_client):
    page = await admin_client.get("/customers/duplicates")
    assert "No likely duplicates found" in page.text


async def test_new_contact_form_checks_for_duplicates_as_it_is_filled_in(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    acme = await create_customer(rapport, actor, {"kind": "account", "name": "Acme"})
    ada = await create_customer(rapport, actor, {"kind": "contact", "first_name": "Ada",
                                                 "last_name": "Lovelace", "account": acme["id"]})
    form = await admin_client.get("/contacts/new")
    assert 'hx-get="/customers/duplicates/check"' in form.text
    warning = await admin_client.get("/customers/duplicates/check", params={
        "kind": "contact", "first_name": "Ada", "last_name": "Lovelace",
        "account": f"Acme (#{acme['id']})"})
    assert f'href="/customers/{ada["id"]}"' in warning.text
    assert "similar name at the same account" in warning.text
