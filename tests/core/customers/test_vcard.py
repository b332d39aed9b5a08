"""vCard 3.0/4.0: one contact's card, a filtered export, import with a dry run, round trip."""

from __future__ import annotations

import pytest

from core.customers.service import create_customer, customer_details
from core.customers.tables import Customer
from core.customers.vcard import contact_card, import_vcard, read_cards
from core.identity.users import load_actor
from tests.conftest import make_user, sign_in

BROKEN = """BEGIN:VCARD
VERSION:3.0
FN:Good Person
N:Person;Good;;;
EMAIL;TYPE=INTERNET:good@example.org
END:VCARD
BEGIN:VCARD
VERSION:4.0
FN:Bad Email
N:Email;Bad;;;
EMAIL:not-an-address
END:VCARD
"""


async def ada(rapport, actor):
    acme = await create_customer(rapport, actor, {"kind": "account", "name": "Analytical Ltd"})
    return await create_customer(rapport, actor, {
        "kind": "contact", "first_name": "Ada", "last_name": "Lovelace", "job_title": "Countess",
        "account": acme["id"], "emails": ["ada@example.org", "ada@home.example"],
        "phones": ["+44 20 7123 4567"], "tags": ["vip", "maths"], "birthday": "1815-12-10",
        "notes": "Wrote the first program; likes poetry.",
        "addresses": [{"street": "12 St James's Square", "city": "London",
                       "postcode": "SW1Y 4JH", "country": "GB"}]})


@pytest.mark.parametrize("version", ["3.0", "4.0"])
async def test_a_contact_round_trips_through_vcard(rapport, version):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    row = await ada(rapport, actor)
    card = contact_card(row, await customer_details(row["id"]), "Analytical Ltd", version)
    assert f"VERSION:{version}" in card and "FN:Ada Lovelace" in card
    records, problems = read_cards(card)
    assert problems == []
    (line, record), = records
    assert line == 1
    assert record["first_name"] == "Ada" and record["last_name"] == "Lovelace"
    assert record["email"] == "ada@example.org" and record["emails"] == "ada@home.example"
    assert record["phone"] == "+442071234567" and record["account"] == "Analytical Ltd"
    assert record["birthday"] == "1815-12-10" and record["tags"] == "vip;maths"
    assert record["city"] == "London" and record["country"] == "GB"
    assert record["notes"] == "Wrote the first program; likes poetry."
    await Customer.delete().where(Customer.id == row["id"]).run()
    report = await import_vcard(rapport, actor, card, dry_run=False)
    assert report.committed and report.created == 1
    again = await Customer.select().where(Customer.name == "Ada Lovelace").first().run()
    assert again["account"] == row["account"] and again["job_title"] == "Countess"
    details = await customer_details(again["id"])
    assert [e["email"] for e in details["emails"]] == ["ada@example.org", "ada@home.example"]
    assert sorted(details["tags"]) == ["maths", "vip"]


async def test_vcard_dry_run_names_bad_cards_and_writes_nothing(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    for dry_run in (True, False):
        report = await import_vcard(rapport, actor, BROKEN, dry_run=dry_run)
        assert [(p.line, p.field) for p in report.errors] == [(7, "email")]
        assert not report.committed
    assert await Customer.count().run() == 0


async def test_download_one_card_and_export_the_filtered_list(client):
    rapport = client.rapport
    admin = await load_actor(rapport, await make_user("admin@example.test"))
    row = await ada(rapport, admin)
    await create_customer(rapport, admin, {"kind": "contact", "first_name": "Grace",
                                           "lifecycle_stage": "prospect"})
    await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    await sign_in(client, "rep@example.test")
    assert (await client.get(f"/contacts/{row['id']}/vcard")).status_code == 404
    await sign_in(client, "admin@example.test")
    one = await client.get(f"/contacts/{row['id']}/vcard", params={"version": "4.0"})
    assert one.status_code == 200 and one.headers["content-type"].startswith("text/vcard")
    assert 'filename="ada-lovelace.vcf"' in one.headers["content-disposition"]
    assert "VERSION:4.0" in one.text
    every = await client.get("/contacts/export.vcf")
    assert every.text.count("BEGIN:VCARD") == 2
    prospects = await client.get("/contacts/export.vcf", params={"stage": "prospect"})
    assert prospects.text.count("BEGIN:VCARD") == 1 and "FN:Grace" in prospects.text


async def test_vcf_upload_goes_straight_to_the_check(admin_client):
    from tests.conftest import csrf_headers

    response = await admin_client.post(
        "/customers/import", files={"file": ("phone.vcf", BROKEN.encode(), "text/vcard")},
        headers=await csrf_headers(admin_client), follow_redirects=True)
    assert response.status_code == 200 and "Waiting to start" in response.text
    from core import jobs

    await jobs.run_pending(admin_client.rapport)  # the check is a job
    response = await admin_client.get(str(response.url))
    assert "<td>7</td><td>email</td>" in response.text


async def test_buttons_lead_to_the_vcard_downloads_with_the_lists_filters(client):
    """The downloads existed with nothing leading to them: the contact page offers its card,
    the contacts list its filtered set, and the link follows the filters as they change."""
    rapport = client.rapport
    admin = await load_actor(rapport, await make_user("admin@example.test"))
    row = await ada(rapport, admin)
    await sign_in(client, "admin@example.test")
    page = await client.get(f"/customers/{row['id']}")
    assert f'href="/contacts/{row["id"]}/vcard"' in page.text and "Download vCard" in page.text
    listing = await client.get("/contacts")
    assert 'id="export-vcard-link" href="/contacts/export.vcf"' in listing.text
    assert "export.vcf" not in (await client.get("/accounts")).text
    filtered = await client.get("/contacts", params={"stage": "prospect"},
                                headers={"HX-Request": "true"})
    assert 'id="export-links" hx-swap-oob="true"' in filtered.text
    assert 'href="/contacts/export.vcf?stage=prospect' in filtered.text
