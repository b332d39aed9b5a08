"""Phone numbers are read in the customer's country (then the instance's region), refused
with "add the country code" when they do not fit it, and shown formatted, never as raw E.164."""

from __future__ import annotations

import pytest

from core.customers.importing import import_csv
from core.customers.service import (
    CustomerError,
    create_customer,
    normalise_phone,
    phone_region,
    update_customer,
)
from core.customers.tables import Customer, CustomerAddress, CustomerPhone
from core.identity.users import load_actor
from tests.conftest import csrf_headers, make_user
from tests.core.portal.conftest import portal  # noqa: F401 - fixture

BERLIN = "030 1234567"


async def test_a_german_number_in_national_form_is_accepted_for_a_customer_in_germany(rapport):
    row = await create_customer(rapport, None, {
        "kind": "contact", "first_name": "Jana", "last_name": "Becker", "phones": [BERLIN],
        "addresses": [{"city": "Berlin", "country": "de"}]})
    assert row["primary_phone"] == "+49301234567"


async def test_a_number_that_does_not_fit_the_assumed_country_asks_for_the_country_code(
        rapport):
    with pytest.raises(CustomerError) as refused:
        await create_customer(rapport, None, {
            "kind": "contact", "first_name": "Jana", "last_name": "Becker", "phones": [BERLIN]})
    message = refused.value.errors["phones"]
    assert "United Kingdom" in message and "add the country code" in message
    assert await Customer.count().run() == 0


async def test_a_stored_address_country_is_used_when_only_phones_change(rapport):
    row = await create_customer(rapport, None, {
        "kind": "contact", "first_name": "Jana", "last_name": "Becker",
        "addresses": [{"city": "München", "country": "DE"}]})
    admin = await load_actor(rapport, await make_user("boss@example.test"))
    changed = await update_customer(rapport, admin, row["id"], {"phones": ["089 12345678"]})
    assert changed["primary_phone"] == "+498912345678"


def test_region_falls_back_from_customer_to_user_to_instance(monkeypatch):
    monkeypatch.setenv("RAPPORT_DEFAULT_REGION", "FR")
    assert phone_region("", "de") == "DE"
    assert phone_region(None, "xx", "") == "FR"
    assert normalise_phone("+49 30 1234567", "GB") == "+49301234567"  # a country code wins


async def test_import_reads_each_rows_number_in_its_country(rapport):
    text = "First name,Last name,Phone,City,Country\nJana,Becker,030 1234567,Berlin,DE\n"
    report = await import_csv(rapport, None, "contact", text, dry_run=False)
    assert report.ok, report
    phones = {r["phone"] for r in await CustomerPhone.select(CustomerPhone.phone).run()}
    assert phones == {"+49301234567"}


async def test_search_and_the_portal_show_numbers_formatted(portal):  # noqa: F811 - fixture
    ada = portal.ada
    await CustomerAddress.update({CustomerAddress.country: "DE"}).where(
        CustomerAddress.customer == ada.customer_id).run()
    added = await portal.post("/portal/profile/phones/add", data={"phone": BERLIN},
                              headers=await csrf_headers(portal), follow_redirects=True)
    assert added.status_code == 200
    assert "+49 30 1234567" in added.text and "+49301234567" not in added.text
    refused = await portal.post("/portal/profile/phones/add", data={"phone": "12"},
                                headers=await csrf_headers(portal))
    assert refused.status_code == 400 and "not a valid phone number" in refused.text

    from core.search.customers import search_customers

    admin = await load_actor(portal.rapport, await make_user("boss@example.test"))
    await Customer.update({Customer.primary_phone: "+49301234567"}).where(
        Customer.id == ada.customer_id).run()
    [hit] = await search_customers(portal.rapport, admin, "Lovelace", 5)
    assert "+49 30 1234567" in hit.snippet and "+49301234567" not in hit.snippet


async def test_the_users_locale_reads_numbers_when_the_customer_has_no_country(rapport):
    from core.identity.tables import User

    uid = await make_user("berlin@example.test")
    await User.update({User.locale: "de-DE"}).where(User.id == uid).run()
    actor = await load_actor(rapport, uid)
    row = await create_customer(rapport, actor, {
        "kind": "contact", "first_name": "Jana", "last_name": "Becker", "phones": [BERLIN]})
    assert row["primary_phone"] == "+49301234567"
    # The customer's own country still comes first.
    row = await create_customer(rapport, actor, {
        "kind": "contact", "first_name": "Ann", "last_name": "Lee", "phones": ["020 7946 0958"],
        "addresses": [{"city": "London", "country": "GB"}]})
    assert row["primary_phone"] == "+442079460958"
