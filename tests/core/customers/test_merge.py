"""Merging two customers: preview, one transaction, nothing lost (including plugin-owned
records), audited, and only within the user's scope."""

from __future__ import annotations

import json

import pytest

from core.audit import AuditEntry
from core.customers.merge import merge_customers, preview_merge
from core.customers.service import CustomerNotFound, create_customer
from core.customers.tables import ConsentRecord, Customer, CustomerEmail, CustomerTag
from core.identity.users import load_actor
from tests.conftest import app_client, connected, csrf_headers, make_user, sign_in
from tests.core.customers import merge_loyalty_plugin as loyalty


@pytest.fixture
async def loyalty_rapport(make_rapport, monkeypatch):
    monkeypatch.setattr("core.loader.installed_plugins", lambda: {"loyaltyfake": loyalty})
    loyalty.calls.clear()
    rapport = await make_rapport(["loyaltyfake"])
    async with connected(rapport):
        yield rapport


async def two_adas(rapport, actor):
    keep = await create_customer(rapport, actor, {
        "kind": "contact", "first_name": "Ada", "last_name": "Lovelace",
        "emails": ["ada@example.org"], "tags": ["vip"], "job_title": ""})
    other = await create_customer(rapport, actor, {
        "kind": "contact", "first_name": "Ada", "last_name": "Lovelace",
        "emails": ["ada@example.org", "countess@example.org"], "tags": ["vip", "maths"],
        "job_title": "Countess", "phones": ["+44 20 7123 4567"]})
    return keep["id"], other["id"]


async def test_merge_keeps_every_record_including_plugin_owned_ones(loyalty_rapport):
    rapport = loyalty_rapport
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    keep, gone = await two_adas(rapport, actor)
    await loyalty.LoyaltyCard.insert(loyalty.LoyaltyCard(customer=keep, points=10),
                                     loyalty.LoyaltyCard(customer=gone, points=5)).run()
    await loyalty.LoyaltyVisit.insert(loyalty.LoyaltyVisit(customer=gone, shop="Leeds")).run()
    await ConsentRecord.insert(ConsentRecord(customer=gone, purpose="newsletter", granted=True,
                                             source="web form")).run()

    preview = await preview_merge(rapport, actor, keep, gone)
    job = next(f for f in preview.fields if f.name == "job_title")
    assert (job.survivor, job.merged, job.differs) == ("", "Countess", True)
    assert preview.moving["emails"] == 2 and preview.moving["consent records"] == 1

    row = await merge_customers(rapport, actor, keep, gone, take_from_merged={"job_title"})
    assert row["job_title"] == "Countess"
    assert not await Customer.exists().where(Customer.id == gone).run()
    emails = await CustomerEmail.select(CustomerEmail.email).where(
        CustomerEmail.customer == keep).run()
    assert sorted(e["email"] for e in emails) == ["ada@example.org", "countess@example.org"]
    tags = await CustomerTag.select(CustomerTag.tag).where(CustomerTag.customer == keep).run()
    assert sorted(t["tag"] for t in tags) == ["maths", "vip"]
    assert await ConsentRecord.count().where(ConsentRecord.customer == keep).run() == 1
    # The plugin's hook folded the cards; its visits (no hook logic) followed anyway.
    assert loyalty.calls == [(keep, gone)]
    cards = await loyalty.LoyaltyCard.select().run()
    assert [(c["customer"], c["points"]) for c in cards] == [(keep, 15)]
    visits = await loyalty.LoyaltyVisit.select().run()
    assert [v["customer"] for v in visits] == [keep]
    entry = await AuditEntry.select().where(AuditEntry.action == "merge").first().run()
    assert entry["record_id"] == str(keep)
    assert json.loads(entry["changes"])["merged_id"][0] == gone


async def test_a_failing_plugin_undoes_the_whole_merge(loyalty_rapport):
    rapport = loyalty_rapport
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    keep, gone = await two_adas(rapport, actor)
    await loyalty.LoyaltyVisit.insert(loyalty.LoyaltyVisit(customer=gone, shop="York")).run()
    loyalty.fail_next_merge.append(True)
    with pytest.raises(RuntimeError):
        await merge_customers(rapport, actor, keep, gone)
    assert await Customer.exists().where(Customer.id == gone).run()
    assert await CustomerEmail.count().where(CustomerEmail.customer == gone).run() == 2
    assert await CustomerTag.count().where(CustomerTag.customer == gone).run() == 2
    assert (await loyalty.LoyaltyVisit.select().first().run())["customer"] == gone


async def test_merging_accounts_moves_their_contacts(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    keep = await create_customer(rapport, actor, {"kind": "account", "name": "Acme"})
    gone = await create_customer(rapport, actor, {"kind": "account", "name": "ACME Ltd"})
    bob = await create_customer(rapport, actor, {"kind": "contact", "first_name": "Bob",
                                                 "account": gone["id"]})
    await merge_customers(rapport, actor, keep["id"], gone["id"], take_from_merged={"name"})
    row = await Customer.select().where(Customer.id == bob["id"]).first().run()
    assert row["account"] == keep["id"]
    assert (await Customer.select().where(Customer.id == keep["id"]).first().run())["name"] == \
        "ACME Ltd"


async def test_merge_needs_edit_rights_on_both_records(rapport):
    admin = await load_actor(rapport, await make_user("admin@example.test"))
    rep_id = await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    rep = await load_actor(rapport, rep_id)
    mine = await create_customer(rapport, rep, {"kind": "contact", "first_name": "Mine"})
    theirs = await create_customer(rapport, admin, {"kind": "contact", "first_name": "Theirs"})
    with pytest.raises(CustomerNotFound):
        await merge_customers(rapport, rep, mine["id"], theirs["id"])
    with pytest.raises(CustomerNotFound):
        await preview_merge(rapport, rep, theirs["id"], mine["id"])
    assert await Customer.count().run() == 2


async def test_merge_page_previews_side_by_side_and_merges(make_rapport):
    instance = await make_rapport()
    async with app_client(instance) as client:
        uid = await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        actor = await load_actor(instance, uid)
        keep, gone = await two_adas(instance, actor)
        page = await client.get("/customers/merge", params={"survivor": keep, "merged": gone})
        assert page.status_code == 200
        assert 'name="take_job_title" value="merged"' in page.text and "Countess" in page.text
        done = await client.post("/customers/merge", data={
            "survivor": keep, "merged": gone, "take_job_title": "merged",
            "take_name": "survivor"}, headers=await csrf_headers(client), follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"].startswith(f"/customers/{keep}")
        row = await Customer.select().where(Customer.id == keep).first().run()
        assert row["job_title"] == "Countess"
        missing = await client.get("/customers/merge", params={"survivor": keep, "merged": gone})
        assert missing.status_code == 404
