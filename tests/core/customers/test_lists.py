"""Account and contact lists: filters, sorting, keyset pages, bulk actions, CSV export."""

from __future__ import annotations

import csv
import io
import json

from core.audit import AuditEntry
from core.customers import custom_fields, service
from core.customers.tables import Customer, CustomerTag
from core.identity.users import load_actor
from tests.conftest import csrf_headers, make_user, sign_in

HTML = {"accept": "text/html"}


async def add(client, **values):
    return await service.create_customer(client.rapport, None, values)


async def test_contacts_list_shows_contacts_only_and_links_to_the_360_view(admin_client):
    acme = await add(admin_client, kind="account", name="Acme")
    grace = await add(admin_client, kind="contact", first_name="Grace", last_name="Hopper",
                      account=acme["id"], emails=["grace@acme.test"])
    page = await admin_client.get("/contacts", headers=HTML)
    assert page.status_code == 200
    assert f'href="/customers/{grace["id"]}"' in page.text
    assert "grace@acme.test" in page.text
    assert ">Acme</a>" in page.text  # the contact's account, fetched for the whole page
    accounts = await admin_client.get("/accounts", headers=HTML)
    assert "Acme" in accounts.text and "Grace Hopper" not in accounts.text


async def test_an_empty_list_invites_to_add_the_first_customer(admin_client):
    page = await admin_client.get("/accounts", headers=HTML)
    assert "No accounts yet." in page.text
    assert 'href="/accounts/new"' in page.text


async def test_next_page_continues_where_the_last_one_stopped(admin_client):
    for i in range(55):
        await add(admin_client, kind="account", name=f"Company {i:02d}")
    first = await admin_client.get("/accounts", headers=HTML)
    assert "Company 00" in first.text and "Company 49" in first.text
    assert "Company 50" not in first.text
    start = first.text.index('rel="next" href="') + len('rel="next" href="')
    next_url = first.text[start:first.text.index('"', start)].replace("&amp;", "&")
    second = await admin_client.get(next_url, headers=HTML)
    assert "Company 50" in second.text and "Company 54" in second.text
    assert "Company 49" not in second.text
    assert 'rel="next"' not in second.text


async def test_filters_narrow_the_list(admin_client):
    await custom_fields.create_definition(None, {"key": "tier", "label": "Tier",
                                                 "field_type": "choice",
                                                 "choices": "Gold\nSilver"})
    await add(admin_client, kind="account", name="Alpha Ltd", lifecycle_stage="customer",
              tags=["vip"], custom={"tier": "Gold"}, source="referral")
    await add(admin_client, kind="account", name="Beta Ltd", lifecycle_stage="lead",
              emails=["alpine@beta.test"], custom={"tier": "Silver"})
    await add(admin_client, kind="account", name="Gamma Ltd")

    async def names(query: str) -> set[str]:
        response = await admin_client.get(f"/accounts?{query}", headers=HTML)
        assert response.status_code == 200
        return {n for n in ("Alpha Ltd", "Beta Ltd", "Gamma Ltd") if n in response.text}

    assert await names("q=alp") == {"Alpha Ltd", "Beta Ltd"}  # name or email prefix
    assert await names("stage=customer") == {"Alpha Ltd"}
    assert await names("tag=VIP") == {"Alpha Ltd"}
    assert await names("source=referral") == {"Alpha Ltd"}
    assert await names("cf_tier=Silver") == {"Beta Ltd"}
    bad = await admin_client.get("/accounts?cf_tier=Bronze", headers=HTML)
    assert bad.status_code == 400 and "cf_tier" in bad.text


async def test_sorting_by_recently_updated(admin_client):
    old = await add(admin_client, kind="account", name="Aardvark")
    await add(admin_client, kind="account", name="Zebra")
    await service.update_customer(admin_client.rapport, None, old["id"], {"source": "web"})
    page = await admin_client.get("/accounts?sort=updated", headers=HTML)
    assert page.text.index("Aardvark") < page.text.index("Zebra")
    by_name = await admin_client.get("/accounts", headers=HTML)
    assert by_name.text.index("Aardvark") < by_name.text.index("Zebra")


async def test_htmx_filter_requests_get_only_the_results(admin_client):
    await add(admin_client, kind="account", name="Acme")
    response = await admin_client.get("/accounts?q=ac", headers={
        **HTML, "hx-request": "true", "hx-target": "results"})
    assert "Acme" in response.text and "<html" not in response.text


async def test_a_representative_sees_only_their_teams_customers(client):
    ada = await make_user("ada@example.test", teams=["North"])
    await make_user("nora@example.test", roles=["sales_representative"], teams=["North"])
    sam = await make_user("sam@example.test", roles=["sales_representative"], teams=["South"])
    admin = await load_actor(client.rapport, ada)
    from core.identity.tables import Team

    north = (await Team.select(Team.id).where(Team.name == "North").first().run())["id"]
    await service.create_customer(client.rapport, admin, {"kind": "account", "name": "Nordic",
                                                          "team": north})
    await service.create_customer(client.rapport, admin, {"kind": "account", "name": "Sunny",
                                                          "owner": sam})
    await sign_in(client, "nora@example.test")
    page = await client.get("/accounts", headers=HTML)
    assert "Nordic" in page.text and "Sunny" not in page.text


async def test_bulk_change_stage_and_tag_are_audited(admin_client):
    a = await add(admin_client, kind="account", name="A")
    b = await add(admin_client, kind="account", name="B")
    headers = await csrf_headers(admin_client)
    response = await admin_client.post("/customers/bulk", headers=headers, data={
        "action": "change_stage", "stage": "customer", "ids": [str(a["id"]), str(b["id"])],
        "back": "/accounts"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/accounts?changed=2"
    assert await Customer.count().where(Customer.lifecycle_stage == "customer").run() == 2
    await admin_client.post("/customers/bulk", headers=headers, data={
        "action": "add_tag", "tag": "Hot", "ids": [str(a["id"])], "back": "/accounts"})
    assert await CustomerTag.count().where(CustomerTag.tag == "hot").run() == 1
    summaries = [e["summary"] for e in await AuditEntry.select(AuditEntry.summary).where(
        AuditEntry.record_type == "core_customer").run()]
    assert summaries.count("bulk: change stage") == 2
    assert summaries.count("bulk: add tag") == 1


async def test_bulk_assign_needs_the_assign_permission(client):
    rep = await make_user("rep@example.test", roles=["sales_representative"])
    await sign_in(client, "rep@example.test")
    row = await service.create_customer(client.rapport, None, {"kind": "account", "name": "A",
                                                               "owner": rep})
    response = await client.post("/customers/bulk", headers=await csrf_headers(client), data={
        "action": "assign_owner", "owner": str(rep), "ids": [str(row["id"])],
        "back": "/accounts"})
    assert response.status_code == 400
    assert "core.customer.assign" in response.text


async def test_csv_export_streams_the_filtered_set_and_is_audited(admin_client):
    await custom_fields.create_definition(None, {"key": "seats", "label": "Seats",
                                                 "field_type": "number"})
    await add(admin_client, kind="account", name="Acme", lifecycle_stage="customer",
              custom={"seats": 12}, tags=["vip"])
    await add(admin_client, kind="account", name="=HYPERLINK(\"x\")", lifecycle_stage="customer")
    await add(admin_client, kind="account", name="Lead Co")
    response = await admin_client.get("/accounts/export.csv?stage=customer")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["name"] for r in rows) == ["'=HYPERLINK(\"x\")", "Acme"]
    acme = next(r for r in rows if r["name"] == "Acme")
    assert acme["tags"] == "vip" and acme["cf_seats"].startswith("12")
    entry = await AuditEntry.select().where(AuditEntry.action == "export").first().run()
    assert "stage=customer" in entry["summary"]
    assert json.loads(entry["changes"]) == {}


async def test_fields_hidden_from_a_user_are_left_out_of_exports_and_the_api(rapport):
    from core.customers.api import _serialise
    from core.customers.export import csv_export
    from core.customers.listing import CustomerFilters
    from core.permissions import Actor

    await service.create_customer(rapport, None, {"kind": "account", "name": "Acme",
                                                  "emails": ["boss@acme.test"]})
    actor = Actor(kind="staff", id=1, grants={"core.customer.export": "all",
                                              "core.customer.view": "all"},
                  hidden_fields=frozenset({"core_customer.primary_email"}))
    text = "".join([chunk async for chunk in csv_export(rapport, actor,
                                                       CustomerFilters(kind="account"))])
    assert "Acme" in text and "boss@acme.test" not in text
    row = await Customer.select().first().run()
    item = (await _serialise([row], actor))[0]
    assert item["name"] == "Acme" and "email" not in item


def _link(html: str, rel: str) -> str:
    start = html.index(f'rel="{rel}" href="') + len(f'rel="{rel}" href="')
    return html[start:html.index('"', start)].replace("&amp;", "&")


async def test_the_list_says_how_many_match_and_stops_counting_at_ten_thousand(
        admin_client, monkeypatch):
    from core.customers import listing

    for i in range(55):
        await add(admin_client, kind="account", name=f"Company {i:02d}",
                  lifecycle_stage="customer" if i < 3 else "lead")
    await add(admin_client, kind="contact", first_name="Ada", last_name="Lovelace")
    page = await admin_client.get("/accounts", headers=HTML)
    assert "55 accounts" in page.text
    filtered = await admin_client.get("/accounts?stage=customer", headers=HTML)
    assert "3 accounts" in filtered.text
    one = await admin_client.get("/contacts", headers=HTML)
    assert "1 contact<" in one.text
    # Past the bound the list says "N+" rather than counting every row.
    monkeypatch.setattr(listing, "COUNT_BOUND", 20)
    monkeypatch.setattr(listing.count_upto, "__kwdefaults__",
                        {"bound": 20, "permission": "core.customer.view"})
    monkeypatch.setattr(listing.total_text, "__defaults__", (20,))
    capped = await admin_client.get("/accounts", headers=HTML)
    assert "20+ accounts" in capped.text and "55 accounts" not in capped.text


async def test_previous_page_goes_back_one_page_and_first_page_to_the_start(admin_client):
    for i in range(120):
        await add(admin_client, kind="account", name=f"Company {i:03d}")
    first = await admin_client.get("/accounts", headers=HTML)
    assert 'rel="prev"' not in first.text and "First page" not in first.text
    second = await admin_client.get(_link(first.text, "next"), headers=HTML)
    third = await admin_client.get(_link(second.text, "next"), headers=HTML)
    assert "Company 100" in third.text and "Company 119" in third.text
    back = await admin_client.get(_link(third.text, "prev"), headers=HTML)
    assert back.status_code == 200
    assert "Company 050" in back.text and "Company 099" in back.text
    assert "Company 049" not in back.text and "Company 100" not in back.text
    assert _link(back.text, "next") == _link(second.text, "next")
    start = await admin_client.get(_link(back.text, "prev"), headers=HTML)
    assert "Company 000" in start.text and "Company 049" in start.text
    assert 'rel="prev"' not in start.text  # back on the first page


async def test_column_headers_sort_the_list_and_say_which_order_is_used(admin_client):
    old = await add(admin_client, kind="account", name="Aardvark")
    await add(admin_client, kind="account", name="Zebra")
    await service.update_customer(admin_client.rapport, None, old["id"], {"industry": "Zoo"})
    page = await admin_client.get("/accounts?stage=", headers=HTML)
    # Name is the default order and says so to screen readers; the other headers are links.
    assert 'aria-sort="ascending"><a class="sort-link" href="/accounts?"' in page.text
    assert 'href="/accounts?sort=updated"' in page.text
    assert page.text.index("Aardvark") < page.text.index("Zebra")
    updated = await admin_client.get("/accounts?sort=updated", headers=HTML)
    assert 'aria-sort="descending"><a class="sort-link" href="/accounts?sort=updated"' \
        in updated.text
    assert updated.text.index("Aardvark") < updated.text.index("Zebra")
    # Sorting keeps the filters in force.
    filtered = await admin_client.get("/accounts?q=zeb", headers=HTML)
    assert 'href="/accounts?q=zeb&amp;sort=updated"' in filtered.text
