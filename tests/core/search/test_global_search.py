"""Global search: customers by name, email, phone and account, typo tolerant, scoped."""

from __future__ import annotations

from core.customers.tables import Customer, CustomerEmail, CustomerPhone
from core.identity.tables import Team
from core.identity.users import load_actor
from core.plugin import Plugin, SearchProvider, SearchResult, hookimpl
from core.search.customers import find_customers, phone_digits
from tests.conftest import make_user, sign_in


async def add_customer(name: str, kind: str = "contact", **values) -> int:
    rows = await Customer.insert(Customer(name=name, kind=kind, **values)).returning(
        Customer.id).run()
    return rows[0]["id"]


async def team_id(name: str) -> int:
    return (await Team.select(Team.id).where(Team.name == name).first().run())["id"]


async def test_search_finds_customers_by_name_email_phone_and_account(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    acme = await add_customer("Acme Industries", kind="account")
    ada = await add_customer("Ada Lovelace", account=acme, primary_email="ada@analytical.example",
                             primary_phone="+442071234567")
    grace = await add_customer("Grace Hopper")
    await CustomerEmail.insert(CustomerEmail(customer=grace, email="amazing.grace@navy.example")).run()
    await CustomerPhone.insert(CustomerPhone(customer=grace, phone="+15551239876")).run()

    async def ids(query):
        return [h.id for h in await find_customers(rapport, actor, query)]

    assert (await ids("lovelace"))[0] == ada
    assert (await ids("analytical.example")) == [ada]
    assert (await ids("020 7123 4567")) == [ada]  # national format finds the E.164 number
    assert (await ids("amazing.grace")) == [grace]  # a second email address
    assert (await ids("555-123-9876")) == [grace]  # a second phone number
    found = await ids("acme")
    assert found[0] == acme and ada in found  # contacts are found through their account


async def test_search_forgives_typos_and_ranks_the_closest_first(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    john = await add_customer("John Smith")
    await add_customer("Joan Smithers")
    await add_customer("Peter Parker")
    hits = await find_customers(rapport, actor, "Jonh Smiht")
    assert hits and hits[0].id == john
    assert all(h.name != "Peter Parker" for h in hits)


async def test_a_misspelt_name_is_found_among_many_names_sharing_its_trigrams(admin_client):
    # On PostgreSQL "Dieter Schmidt" is more word-similar to "Schsuter" (0.56) than Schuster
    # is (0.38): with only the loose typo thresholds the noise filled every candidate slot.
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    await Customer.insert(*[Customer(name="Dieter Schmidt", kind="contact")
                            for _ in range(100)]).run()
    schuster = await add_customer("Schuster", kind="account")
    hits = await find_customers(rapport, actor, "Schsuter")
    assert hits and hits[0].id == schuster


async def test_search_index_follows_renames_and_deletes(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    acme = await add_customer("Acme", kind="account")
    ada = await add_customer("Ada Lovelace", account=acme)
    await Customer.update({Customer.name: "Zenith Works"}).where(Customer.id == acme).run()
    assert ada in [h.id for h in await find_customers(rapport, actor, "zenith")]
    assert await find_customers(rapport, actor, "acme") == []
    await Customer.delete().where(Customer.id == ada).run()
    assert ada not in [h.id for h in await find_customers(rapport, actor, "zenith")]


async def test_sales_rep_never_finds_another_teams_contact(client):
    rapport = client.rapport
    rep = await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    await make_user("other@example.test", roles=["sales_representative"], teams=["South"])
    north, south = await team_id("North"), await team_id("South")
    ours = await add_customer("Marie Curie", team=north, primary_email="marie@north.example")
    theirs = await add_customer("Marie Curry", team=south, primary_email="marie@south.example")
    actor = await load_actor(rapport, rep)
    for query in ("marie", "Mari Cury", "south.example", "ma"):
        found = [h.id for h in await find_customers(rapport, actor, query)]
        assert theirs not in found, query
    assert [h.id for h in await find_customers(rapport, actor, "marie")] == [ours]
    await sign_in(client, "rep@example.test")
    api = await client.get("/api/v1/search", params={"q": "marie"})
    titles = [r["title"] for g in api.json()["groups"] for r in g["results"]]
    assert titles == ["Marie Curie"]


async def test_search_page_groups_results_and_plugins_add_their_own(make_rapport, monkeypatch):
    import types

    from tests.conftest import app_client

    seen = []

    async def search_tickets(rapport, user, query, limit):
        seen.append(user.email)
        return [SearchResult(title=f"Ticket about {query}", url="/tickets/1", kind="ticket")]

    module = types.ModuleType("helpdesk_plugin")
    module.plugin = Plugin(id="helpdesk", name="Helpdesk", version="0")
    module.register_search_providers = hookimpl(lambda: [
        SearchProvider(kind="ticket", label="Tickets", search=search_tickets)])
    monkeypatch.setattr("core.loader.installed_plugins", lambda: {"helpdesk": module})
    rapport = await make_rapport(["helpdesk"])
    async with app_client(rapport) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        await add_customer("Printer Palace", kind="account")
        page = await client.get("/search", params={"q": "printer"})
        assert page.status_code == 200
        assert "<h2 id=\"search-kind-customer\">Customers</h2>" in page.text
        assert "Printer Palace" in page.text and "Ticket about printer" in page.text
        assert seen == ["admin@example.test"]  # providers are asked with the searcher
        suggest = await client.get("/search/suggest", params={"q": "printer"})
        assert 'role="option"' in suggest.text and "Printer Palace" in suggest.text
        home = await client.get("/", headers={"accept": "text/html"})
        assert 'hx-get="/search/suggest"' in home.text


async def test_empty_search_explains_what_to_type(admin_client):
    page = await admin_client.get("/search")
    assert "Type a name, an email address" in page.text
    none = await admin_client.get("/search", params={"q": "qwxzv"})
    assert "Nothing found for" in none.text


def test_phone_queries_are_recognised():
    assert phone_digits("+44 20 7123-4567") == "442071234567"
    assert phone_digits("030 1234") == "301234"
    assert phone_digits("ada") == ""
