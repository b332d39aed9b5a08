"""Creating, changing and deleting customers: validation, normalisation, audit, scope."""

from __future__ import annotations

import json

import pytest

from core.audit import AuditEntry
from core.customers import service
from core.customers.service import CustomerError, CustomerNotFound
from core.customers.tables import Customer, CustomerEmail, CustomerPhone, CustomerTag
from core.identity.users import load_actor
from tests.conftest import make_user


async def staff(rapport, email, roles=("administrator",), teams=()):
    uid = await make_user(email, roles=roles, teams=teams)
    return await load_actor(rapport, uid)


async def test_contact_name_is_built_from_first_and_last_name_and_details_are_normalised(rapport):
    ada = await staff(rapport, "ada@example.test")
    row = await service.create_customer(rapport, ada, {
        "kind": "contact", "first_name": " Grace ", "last_name": "Hopper",
        "emails": [" Grace@Navy.MIL ", "grace@navy.mil"], "phones": ["020 7946 0958"],
        "tags": ["VIP", "vip", "Navy"],
    })
    assert row["name"] == "Grace Hopper"
    assert row["primary_email"] == "grace@navy.mil"
    assert row["primary_phone"] == "+442079460958"
    assert row["owner"] == ada.id  # the creator owns a new customer
    emails = await CustomerEmail.select(CustomerEmail.email).run()
    assert [e["email"] for e in emails] == ["grace@navy.mil"]
    tags = await CustomerTag.select(CustomerTag.tag).order_by(CustomerTag.id).run()
    assert [t["tag"] for t in tags] == ["vip", "navy"]


async def test_every_bad_field_is_named(rapport):
    ada = await staff(rapport, "ada@example.test")
    with pytest.raises(CustomerError) as caught:
        await service.create_customer(rapport, ada, {
            "kind": "contact", "first_name": "", "emails": ["not-an-email"],
            "phones": ["12"], "lifecycle_stage": "friend", "owner": 999,
        })
    errors = caught.value.errors
    assert set(errors) >= {"first_name", "emails", "phones", "lifecycle_stage", "owner"}
    assert "not an email" in errors["emails"]
    assert await Customer.count().run() == 0


async def test_kind_must_be_account_or_contact(rapport):
    with pytest.raises(CustomerError) as caught:
        await service.create_customer(rapport, None, {"kind": "robot", "name": "R2"})
    assert caught.value.field == "kind"


async def test_a_contact_belongs_only_to_an_account(rapport):
    ada = await staff(rapport, "ada@example.test")
    person = await service.create_customer(rapport, ada, {"kind": "contact", "first_name": "A"})
    with pytest.raises(CustomerError) as caught:
        await service.create_customer(rapport, ada, {"kind": "contact", "first_name": "B",
                                                     "account": person["id"]})
    assert caught.value.field == "account"
    acme = await service.create_customer(rapport, ada, {"kind": "account", "name": "Acme"})
    linked = await service.create_customer(rapport, ada, {"kind": "contact", "first_name": "B",
                                                          "account": acme["id"]})
    assert linked["account"] == acme["id"]


async def test_phone_numbers_use_the_default_region_unless_international(rapport, monkeypatch):
    monkeypatch.setenv("RAPPORT_DEFAULT_REGION", "FR")
    row = await service.create_customer(rapport, None, {
        "kind": "account", "name": "Lune", "phones": ["01 42 68 53 00", "+1 650 253 0000"]})
    assert row["primary_phone"] == "+33142685300"
    phones = await CustomerPhone.select(CustomerPhone.phone).order_by(CustomerPhone.id).run()
    assert [p["phone"] for p in phones] == ["+33142685300", "+16502530000"]


async def test_update_changes_only_given_fields_and_audits_sub_records(rapport):
    ada = await staff(rapport, "ada@example.test")
    row = await service.create_customer(rapport, ada, {
        "kind": "account", "name": "Acme", "tags": ["a"], "emails": ["x@acme.test"]})
    after = await service.update_customer(rapport, ada, row["id"], {
        "lifecycle_stage": "customer", "tags": ["a", "b"]})
    assert after["name"] == "Acme" and after["lifecycle_stage"] == "customer"
    assert after["primary_email"] == "x@acme.test"
    assert after["updated_at"] >= row["updated_at"]
    entries = await AuditEntry.select().where(AuditEntry.action == "update").order_by(
        AuditEntry.id).run()
    changes = [json.loads(e["changes"]) for e in entries]
    assert {"lifecycle_stage": ["lead", "customer"]}.items() <= changes[-2].items() or \
        any("lifecycle_stage" in c for c in changes)
    assert any(c.get("tags") == [["a"], ["a", "b"]] for c in changes)


async def test_someone_outside_the_scope_cannot_change_or_see_a_customer(rapport):
    north = await staff(rapport, "north@example.test", roles=["sales_representative"],
                        teams=["North"])
    south = await staff(rapport, "south@example.test", roles=["sales_representative"],
                        teams=["South"])
    row = await service.create_customer(rapport, north, {"kind": "account", "name": "Nord"})
    with pytest.raises(CustomerNotFound):
        await service.get_customer(rapport, south, row["id"])
    with pytest.raises(CustomerNotFound):
        await service.update_customer(rapport, south, row["id"], {"name": "Mine"})


async def test_a_sales_representative_cannot_give_a_customer_away(rapport):
    north = await staff(rapport, "north@example.test", roles=["sales_representative"])
    other = await make_user("other@example.test")
    with pytest.raises(CustomerError) as caught:
        await service.create_customer(rapport, north, {"kind": "account", "name": "X",
                                                       "owner": other})
    assert caught.value.field == "owner"


async def test_deleting_an_account_keeps_its_contacts(rapport):
    ada = await staff(rapport, "ada@example.test")
    acme = await service.create_customer(rapport, ada, {"kind": "account", "name": "Acme"})
    person = await service.create_customer(rapport, ada, {
        "kind": "contact", "first_name": "Wile", "account": acme["id"]})
    await service.delete_customer(rapport, ada, acme["id"])
    kept = await Customer.select().where(Customer.id == person["id"]).first().run()
    assert kept is not None and kept["account"] is None
    assert await AuditEntry.exists().where((AuditEntry.action == "delete")
                                           & (AuditEntry.record_id == str(acme["id"]))).run()


async def test_bulk_changes_touch_only_customers_in_scope(rapport):
    manager = await staff(rapport, "boss@example.test", roles=["manager"], teams=["North"])
    ada = await staff(rapport, "ada@example.test")
    south_team = (await make_user("s@example.test", teams=["South"]))
    from core.identity.tables import Team

    north_id = (await Team.select(Team.id).where(Team.name == "North").first().run())["id"]
    south_id = (await Team.select(Team.id).where(Team.name == "South").first().run())["id"]
    mine = await service.create_customer(rapport, ada, {"kind": "account", "name": "N",
                                                        "team": north_id, "owner": south_team})
    theirs = await service.create_customer(rapport, ada, {"kind": "account", "name": "S",
                                                          "team": south_id, "owner": south_team})
    changed = await service.bulk_change(rapport, manager, "change_stage",
                                        [mine["id"], theirs["id"]], "customer")
    assert changed == 1
    stages = {r["id"]: r["lifecycle_stage"] for r in await Customer.select().run()}
    assert stages == {mine["id"]: "customer", theirs["id"]: "lead"}
    assert await service.bulk_change(rapport, manager, "add_tag", [mine["id"], theirs["id"]],
                                     "Hot") == 1
    assert await CustomerTag.count().where(CustomerTag.tag == "hot").run() == 1
