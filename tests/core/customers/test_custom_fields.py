"""Custom fields: typed, validated on every write, stored so lists can filter on them."""

from __future__ import annotations

import pytest

from core.customers import custom_fields, service
from core.customers.service import CustomerError
from core.customers.tables import Customer


async def define(key, field_type, **extra):
    return await custom_fields.create_definition(None, {"key": key, "label": key.title(),
                                                        "field_type": field_type, **extra})


async def test_values_of_every_type_are_validated_and_read_back(rapport):
    await define("region", "choice", choices="North\nSouth")
    await define("products", "multi_choice", choices="Cars\nBoats\nPlanes")
    await define("seats", "number")
    await define("budget", "money")
    await define("renewal", "date")
    await define("partner", "boolean")
    await define("portal", "url")
    await define("motto", "text", applies_to="account")
    row = await service.create_customer(rapport, None, {
        "kind": "account", "name": "Acme",
        "custom": {"region": "North", "products": ["Cars", "Boats"], "seats": "12",
                   "budget": "1,500.5 EUR", "renewal": "2026-03-01", "partner": "yes",
                   "portal": "https://acme.example", "motto": "Beep"}})
    values = (await custom_fields.values_for([row["id"]]))[row["id"]]
    assert values["region"] == "North"
    assert values["products"] == ["Cars", "Boats"]
    assert str(values["seats"]).startswith("12")
    assert values["budget"] == {"amount": "1500.50", "currency": "EUR"}
    assert values["renewal"].isoformat() == "2026-03-01"
    assert values["partner"] is True
    assert values["portal"] == "https://acme.example"


@pytest.mark.parametrize("field_type,extra,bad", [
    ("choice", {"choices": "A\nB"}, "C"),
    ("number", {}, "many"),
    ("date", {}, "31/12/2025"),
    ("url", {}, "javascript:alert(1)"),
    ("boolean", {}, "perhaps"),
    ("multi_choice", {"choices": "A\nB"}, "A,Z"),
])
async def test_a_bad_custom_value_is_refused_naming_the_field(rapport, field_type, extra, bad):
    await define("thing", field_type, **extra)
    with pytest.raises(CustomerError) as caught:
        await service.create_customer(rapport, None, {"kind": "contact", "first_name": "A",
                                                      "cf_thing": bad})
    assert caught.value.field == "cf_thing"
    assert await Customer.count().run() == 0


async def test_a_required_field_must_be_filled_on_create_but_not_on_other_kinds(rapport):
    await define("vat_number", "text", required=True, applies_to="account")
    with pytest.raises(CustomerError) as caught:
        await service.create_customer(rapport, None, {"kind": "account", "name": "Acme"})
    assert caught.value.field == "cf_vat_number"
    person = await service.create_customer(rapport, None, {"kind": "contact", "first_name": "A"})
    assert person["id"]


async def test_updating_one_custom_field_keeps_the_others(rapport):
    await define("seats", "number")
    await define("tier", "choice", choices="Gold\nSilver")
    row = await service.create_customer(rapport, None, {"kind": "account", "name": "Acme",
                                                        "custom": {"seats": 3, "tier": "Gold"}})
    await service.update_customer(rapport, None, row["id"], {"custom": {"tier": "Silver"}})
    values = (await custom_fields.values_for([row["id"]]))[row["id"]]
    assert values["tier"] == "Silver" and values["seats"] == 3


async def test_a_custom_field_key_must_be_unique_and_machine_friendly(rapport):
    with pytest.raises(custom_fields.CustomFieldError) as caught:
        await define("Not OK", "text")
    assert caught.value.field == "key"
    await define("ok", "text")
    with pytest.raises(custom_fields.CustomFieldError):
        await define("ok", "number")
