"""Privacy: the export holds everything, erasure leaves nothing personal, consent is logged."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from core import records
from core.audit import AuditEntry
from core.customers.tables import (
    PERSONAL_DATA,
    ConsentRecord,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomerTag,
)
from core.permissions import Actor
from core.privacy.service import erase_customer, export_customer, record_consent
from tests.conftest import csrf_headers, make_user, sign_in

STAFF = Actor(kind="staff", id=1, name="Staff", email="staff@example.test")  # the first user

# A distinctive value for every personal field, so the tests can look for each one.
PERSON = {
    "name": "Grace Hopper", "first_name": "Grace", "last_name": "Hopper",
    "job_title": "Rear Admiral", "primary_email": "grace@navy.example",
    "primary_phone": "+15550001111", "notes": "prefers mornings", "birthday": date(1906, 12, 9),
}
SUB_VALUES = {
    "email": "grace.private@example.test", "phone": "+15550002222",
    "street": "1 Compiler Lane", "city": "Arlington", "region": "Virginia", "postcode": "22201",
    "latitude": Decimal("38.8812"), "longitude": Decimal("-77.1234"),
}


async def seed_person(**overrides) -> int:
    from core.identity.tables import User

    if not await User.exists().where(User.id == STAFF.id).run():
        await make_user(STAFF.email)
    values = dict(kind="contact", **PERSON)
    values.update(overrides)
    row = await records.create(STAFF, Customer, values)
    cid = row["id"]
    await records.create(STAFF, CustomerEmail, {"customer": cid, "email": SUB_VALUES["email"]})
    await records.create(STAFF, CustomerPhone, {"customer": cid, "phone": SUB_VALUES["phone"]})
    await records.create(STAFF, CustomerAddress, {
        "customer": cid, **{k: SUB_VALUES[k] for k in
                            ("street", "city", "region", "postcode", "latitude", "longitude")}})
    await CustomerTag.insert(CustomerTag(customer=cid, tag="vip")).run()
    return cid


def personal_values() -> list[str]:
    found = [str(v) for v in PERSON.values()] + [str(v) for v in SUB_VALUES.values()]
    return [v for v in found if v]


async def test_export_contains_every_personal_data_field(rapport):
    cid = await seed_person()
    await record_consent(STAFF, cid, "newsletter", True, "web form", rapport=rapport)
    data = await export_customer(rapport, cid)
    text = json.dumps(data)
    assert data["format"] == "rapport.privacy-export"
    sections = data["sections"]
    for table, fields in PERSONAL_DATA.items():
        section = sections[table._meta.tablename]
        rows = [section] if isinstance(section, dict) else section
        if table is Customer or table in (CustomerEmail, CustomerPhone, CustomerAddress):
            assert rows, f"{table._meta.tablename} is missing from the export"
        for row in rows:
            for field in fields:
                assert field in row, f"{table._meta.tablename}.{field} is not exported"
    for value in personal_values():
        assert value in text, f"{value!r} is not in the export"
    assert sections["core_customer_tag"][0]["tag"] == "vip"
    assert sections["core_consent_record"][0]["purpose"] == "newsletter"


async def test_export_includes_what_plugins_return_through_the_hook(make_rapport, tmp_path):
    from tests.conftest import connected

    instance = await make_rapport()

    class LoyaltyLike:
        from core.plugin import hookimpl

        @staticmethod
        @hookimpl
        async def privacy_export(customer_id):
            return {"loyalty_points": [{"customer": customer_id, "points": 120}]}

    instance.pm.register(LoyaltyLike, name="loyaltylike")
    async with connected(instance):
        cid = await seed_person()
        data = await export_customer(instance, cid)
    assert data["sections"]["loyalty_points"] == [{"customer": cid, "points": 120}]


async def test_erasure_leaves_no_personal_data_in_core_tables(rapport):
    cid = await seed_person()
    other = await seed_person(name="Alan Turing", primary_email="alan@example.test")
    await erase_customer(rapport, STAFF, cid)

    row = await Customer.select().where(Customer.id == cid).first().run()
    assert row["erased_at"] is not None and row["do_not_contact"] is True
    for field in PERSONAL_DATA[Customer]:
        assert str(row[field]) not in PERSON.values() and row[field] in ("", None, "Erased customer")
    for table in (CustomerEmail, CustomerPhone, CustomerAddress, CustomerTag):
        assert await table.count().where(table.customer == cid).run() == 0
    # Nothing personal is left in any core table the customer touches, the audit log included.
    dump = json.dumps(await Customer.select().where(Customer.id == cid).run(), default=str)
    for value in personal_values():
        assert value not in dump
    erased_entries = await AuditEntry.select().where(
        (AuditEntry.record_type == "core_customer") & (AuditEntry.record_id == str(cid))).run()
    assert erased_entries and all("Grace" not in json.dumps(e, default=str) for e in erased_entries)
    # The other customer is untouched.
    alan = await Customer.select().where(Customer.id == other).first().run()
    assert alan["name"] == "Alan Turing" and alan["erased_at"] is None
    assert await CustomerEmail.count().where(CustomerEmail.customer == other).run() == 1


async def test_erasure_redacts_the_audit_trail_but_keeps_its_entries(rapport):
    cid = await seed_person()
    before = await AuditEntry.count().run()
    await erase_customer(rapport, STAFF, cid)
    entries = await AuditEntry.select().run()
    assert len(entries) == before + 1  # nothing removed, one entry for the erasure itself
    everything = json.dumps(entries, default=str)
    for value in personal_values():
        assert value not in everything, f"{value!r} is still in the audit log"
    erasure = [e for e in entries if e["action"] == "privacy_erase"]
    assert erasure[0]["record_id"] == str(cid) and erasure[0]["actor_id"] == STAFF.id


async def test_erasure_is_all_or_nothing(make_rapport):
    from core.plugin import hookimpl
    from tests.conftest import connected

    instance = await make_rapport()

    class Failing:
        @staticmethod
        @hookimpl
        async def privacy_erase(customer_id):
            raise RuntimeError("plugin could not erase")

    instance.pm.register(Failing, name="failing")
    async with connected(instance):
        cid = await seed_person()
        with pytest.raises(RuntimeError):
            await erase_customer(instance, STAFF, cid)
        row = await Customer.select().where(Customer.id == cid).first().run()
        assert row["name"] == "Grace Hopper" and row["erased_at"] is None
        assert await CustomerEmail.count().where(CustomerEmail.customer == cid).run() == 1


async def test_consent_given_and_withdrawn_are_both_kept_in_the_log(rapport):
    from core.privacy.service import current_consents

    cid = await seed_person()
    await record_consent(STAFF, cid, "marketing", True, "signed form", "email", rapport=rapport)
    await record_consent(STAFF, cid, "marketing", False, "phone call", "email", rapport=rapport)
    log = await ConsentRecord.select().where(ConsentRecord.customer == cid).order_by(
        ConsentRecord.id).run()
    assert [r["granted"] for r in log] == [True, False]
    assert (await current_consents(cid))[("marketing", "email")] is False
    actions = [e["action"] for e in await AuditEntry.select().order_by(AuditEntry.id).run()]
    assert actions[-2:] == ["consent_given", "consent_withdrawn"]


# --- staff pages -----------------------------------------------------------------------------


async def test_staff_downloads_the_export_and_it_is_audited(admin_client):
    cid = await seed_person()
    response = await admin_client.get(f"/customers/{cid}/privacy/export.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert response.json()["sections"]["core_customer"]["name"] == "Grace Hopper"
    assert await AuditEntry.count().where(AuditEntry.action == "privacy_export").run() == 1


async def test_erasure_needs_typed_confirmation(admin_client):
    cid = await seed_person()
    page = await admin_client.get(f"/customers/{cid}/privacy")
    assert page.status_code == 200 and "Type ERASE to confirm" in page.text
    refused = await admin_client.post(f"/customers/{cid}/privacy/erase", data={"confirm": "yes"},
                                      headers=await csrf_headers(admin_client))
    assert refused.status_code == 400 and 'id="confirm-error"' in refused.text
    assert (await Customer.select(Customer.erased_at).where(Customer.id == cid).first().run()
            )["erased_at"] is None
    done = await admin_client.post(f"/customers/{cid}/privacy/erase", data={"confirm": "ERASE"},
                                   headers=await csrf_headers(admin_client),
                                   follow_redirects=False)
    assert done.status_code == 303
    row = await Customer.select().where(Customer.id == cid).first().run()
    assert row["erased_at"] is not None and row["name"] == "Erased customer"


async def test_staff_records_consent_with_inline_errors(admin_client):
    cid = await seed_person()
    bad = await admin_client.post(f"/customers/{cid}/privacy/consent",
                                  data={"purpose": "newsletter", "granted": "yes", "source": ""},
                                  headers=await csrf_headers(admin_client))
    assert bad.status_code == 400 and 'id="source-error"' in bad.text
    ok = await admin_client.post(f"/customers/{cid}/privacy/consent",
                                 data={"purpose": "newsletter", "granted": "yes",
                                       "source": "phone call"},
                                 headers=await csrf_headers(admin_client), follow_redirects=True)
    assert ok.status_code == 200 and "Consent recorded." in ok.text
    assert "newsletter" in ok.text


async def test_privacy_pages_of_customers_outside_scope_answer_404(client):
    await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    await sign_in(client, "rep@example.test")
    cid = await seed_person()  # no owner, no team: outside the rep's scope
    for url in (f"/customers/{cid}/privacy", f"/customers/{cid}/privacy/export.json"):
        assert (await client.get(url)).status_code == 404
    erase = await client.post(f"/customers/{cid}/privacy/erase", data={"confirm": "ERASE"},
                              headers=await csrf_headers(client))
    assert erase.status_code == 403  # sales representatives may not erase at all


async def test_customer_record_offers_the_privacy_action(rapport):
    actions = rapport.collect("record_actions", rapport=rapport, record_type="customer",
                              record={"id": 5}, user=STAFF)
    assert any(a.href == "/customers/5/privacy" for a in actions)
