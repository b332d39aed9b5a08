"""Search finds what people type: inside words, without accents, in any case, and in what
was said (interactions' subjects and notes); the customer lists filter the same way."""

from __future__ import annotations

from core.customers.tables import Customer, CustomerEmail
from core.identity.users import load_actor
from core.interactions.tables import Interaction
from core.search.customers import find_customers
from core.search.fold import fold
from core.search.service import search_everything
from tests.conftest import make_user, sign_in

HTML = {"accept": "text/html"}


def test_folding_removes_accents_and_case():
    assert fold("ZOË Müller") == "zoe muller"
    assert fold("Straße Łódź Øresund Ærø") == "strasse lodz oresund aero"
    assert fold("München") == fold("MUNCHEN") == "munchen"


async def add(name: str, kind: str = "contact", **values) -> int:
    rows = await Customer.insert(Customer(name=name, kind=kind, **values)).returning(
        Customer.id).run()
    return rows[0]["id"]


async def test_customers_are_found_inside_words_and_without_accents(admin_client):
    rapport = admin_client.rapport
    actor = await load_actor(rapport, admin_client.user_id)
    kaufhaus = await add("Kaufhaus München", kind="account")
    jurgen = await add("Jürgen Müller", account=kaufhaus, primary_email="j.muller@kaufhaus.test",
                       primary_phone="+4930123456")
    zoe = await add("Zoe Lemoine")
    adam = await add("Adam Lemoine")
    renee = await add("Renée O'Brien")
    await CustomerEmail.insert(CustomerEmail(customer=renee, email="rob@cafe.test")).run()

    async def ids(query):
        return [h.id for h in await find_customers(rapport, actor, query)]

    assert (await ids("muller"))[0] == jurgen
    assert (await ids("MÜLLER"))[0] == jurgen
    assert (await ids("ZOË")) == [zoe]
    assert set(await ids("lemoine")) == {zoe, adam}
    assert (await ids("renee"))[0] == renee
    # the index follows a rename, folded
    await Customer.update({Customer.name: "Zoë Lémoine-Dubois"}).where(Customer.id == zoe).run()
    assert (await ids("lemoine-dub"))[0] == zoe

    async def listed(path, query):
        response = await admin_client.get(f"{path}?q={query}", headers=HTML)
        assert response.status_code == 200
        names = ("Jürgen Müller", "Zoë Lémoine-Dubois", "Adam Lemoine", "Renée O&#39;Brien")
        if path == "/accounts":
            names = ("Kaufhaus München",)  # (contacts show it as their account)
        return {n for n in names if n in response.text}

    # The contacts list: infix ("moine" finds Adam Lemoine), accents and case ignored, by
    # company, email (any address) and phone typed nationally or not.
    assert await listed("/contacts", "moine") == {"Zoë Lémoine-Dubois", "Adam Lemoine"}
    assert await listed("/contacts", "MULLER") == {"Jürgen Müller"}
    assert await listed("/contacts", "munchen") == {"Jürgen Müller"}  # its company
    assert await listed("/contacts", "cafe.test") == {"Renée O&#39;Brien"}
    assert await listed("/contacts", "30123456") == {"Jürgen Müller"}
    assert await listed("/accounts", "unchen") == {"Kaufhaus München"}
    assert await listed("/contacts", "zz") == set()  # short: the start of names only
    assert await listed("/contacts", "ad") == {"Adam Lemoine"}
    api = await admin_client.get("/api/v1/customers?q=lemoine&kind=contact",
                                 headers={"accept": "application/json"})
    assert api.status_code == 200
    assert {r["name"] for r in api.json()["data"]} == {"Zoë Lémoine-Dubois", "Adam Lemoine"}


async def test_interactions_are_found_by_subject_and_notes_within_scope(client):
    rapport = client.rapport
    rep = await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    other = await make_user("other@example.test", roles=["sales_representative"],
                            teams=["South"])
    mine = await add("Ada Lovelace", owner=rep)
    theirs = await add("Grace Hopper", owner=other)
    call = (await Interaction.insert(Interaction(
        customer=mine, channel="call", subject="Renewal of the Café contract",
        notes="She asked about the Überweisung deadline and a discount for 2027.")).returning(
        Interaction.id).run())[0]["id"]
    await Interaction.insert(Interaction(
        customer=theirs, channel="call", subject="Café renewal", notes="Überweisung")).run()
    actor = await load_actor(rapport, rep)

    async def found(query):
        groups = await search_everything(rapport, actor, query, kinds={"interaction"})
        return [r.url for g in groups for r in g.results]

    assert await found("cafe contract") == [f"/interactions/{call}"]
    assert await found("uberweisung") == [f"/interactions/{call}"]  # notes, accents folded
    assert await found("DEADLINE") == [f"/interactions/{call}"]
    await Interaction.update({Interaction.notes: "Paid by card."}).where(
        Interaction.id == call).run()
    assert await found("uberweisung") == []
    assert await found("by card") == [f"/interactions/{call}"]
    await sign_in(client, "rep@example.test")
    page = await client.get("/search?q=renewal", headers=HTML)
    assert page.status_code == 200
    assert "Interactions" in page.text and f"/interactions/{call}" in page.text
    assert "Café renewal" not in page.text  # another team's call
    # The interactions list filters by the same index.
    listed = await client.get("/interactions?q=CAFE", headers=HTML)
    assert "Renewal of the Café contract" in listed.text and "Café renewal" not in listed.text
    listed = await client.get("/interactions?q=RENEWALS", headers=HTML)
    assert "Renewal of the Café contract" not in listed.text
    short = await client.get("/interactions?q=ca", headers=HTML)
    assert "at least three letters" in short.text
    await Interaction.delete().where(Interaction.id == call).run()
    assert await found("by card") == []
