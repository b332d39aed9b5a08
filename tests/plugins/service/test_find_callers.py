"""A help desk finds any caller to open a case (``core.customer.find``), seeing only name,
e-mail, phone and city of customers outside its own; the full record stays closed."""

from __future__ import annotations

from core.customers.tables import Customer, CustomerAddress
from core.identity.tables import Team
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.conftest import post_form


async def _team(name: str) -> int:
    row = await Team.select(Team.id).where(Team.name == name).first().run()
    if row:
        return row["id"]
    return (await Team.insert(Team(name=name)).returning(Team.id).run())[0]["id"]


async def _northern_caller() -> int:
    """A customer of Sales North's, with a phone, an e-mail, a city and private notes."""
    north = await _team("Sales North")
    [row] = await Customer.insert(Customer(
        kind="contact", name="Greta Lindqvist", primary_email="greta@nordic.example",
        primary_phone="+4930123456", team=north, notes="Negotiating a discount",
    )).returning(Customer.id).run()
    await CustomerAddress.insert(CustomerAddress(customer=row["id"], city="Uppsala",
                                                 street="Secret Road 1")).run()
    return row["id"]


async def test_service_agent_finds_a_caller_of_another_team_and_opens_a_case(service_rapport):
    async with app_client(service_rapport) as agent:
        caller = await _northern_caller()
        await make_user("agent@example.test", roles=["service_agent"], teams=["Service"])
        await sign_in(agent, "agent@example.test")

        for typed in ("Lindq", "greta@nordic", "030 123456"):
            options = await agent.get("/service/cases/customer-options",
                                      params={"customer_search": typed})
            assert f'value="{caller}"' in options.text, typed
        assert "Uppsala" in options.text and "+49 30 123456" in options.text
        assert "not one of your customers" in options.text

        created = await post_form(agent, "/service/cases", {
            "customer": str(caller), "subject": "Boiler leaks", "priority": "normal",
            "case_type": "service_request", "channel": "phone"})
        assert created.status_code == 303, created.text
        page = await agent.get(created.headers["location"])
        assert f'href="/customers/{caller}/card"' in page.text

        # The record itself stays with the people who look after it.
        assert (await agent.get(f"/customers/{caller}")).status_code == 404
        card = await agent.get(f"/customers/{caller}/card")
        assert card.status_code == 200
        assert "Greta Lindqvist" in card.text and "Uppsala" in card.text
        assert "+49 30 123456" in card.text and "greta@nordic.example" in card.text
        assert "Negotiating a discount" not in card.text and "Secret Road" not in card.text
        assert f"/service/cases/new?customer={caller}" in card.text

        found = await agent.get("/api/v1/search", params={"q": "Lindqvist"})
        [hit] = [r for g in found.json()["groups"] if g["kind"] == "customer"
                 for r in g["results"]]
        assert hit["url"] == f"/customers/{caller}/card"
        assert "Uppsala" in hit["snippet"] and "Negotiating" not in hit["snippet"]

        api = await agent.post("/api/v1/service/cases", json={
            "customer_id": caller, "subject": "Still leaking"},
            headers={"x-csrftoken": agent.cookies["csrftoken"]})
        assert api.status_code == 201, api.text


async def test_without_the_find_grant_other_teams_callers_stay_hidden(service_rapport):
    async with app_client(service_rapport) as rep:
        caller = await _northern_caller()
        await make_user("rep@example.test", roles=["sales_representative"], teams=["South"])
        await sign_in(rep, "rep@example.test")
        options = await rep.get("/service/cases/customer-options",
                                params={"customer_search": "Lindq"})
        assert f'value="{caller}"' not in options.text
        assert (await rep.get(f"/customers/{caller}/card")).status_code == 404
        refused = await post_form(rep, "/service/cases", {
            "customer": str(caller), "subject": "Boiler", "priority": "normal",
            "case_type": "service_request", "channel": "phone"})
        assert refused.status_code == 400
        found = await rep.get("/api/v1/search", params={"q": "Lindqvist"})
        assert all(g["kind"] != "customer" or not g["results"]
                   for g in found.json()["groups"])


async def test_a_customer_the_agent_may_open_links_to_the_360_view(service_rapport):
    async with app_client(service_rapport) as agent:
        await make_user("agent@example.test", roles=["service_agent"], teams=["Service"])
        [row] = await Customer.insert(Customer(kind="contact", name="Own Customer",
                                               team=await _team("Service"))
                                      ).returning(Customer.id).run()
        await sign_in(agent, "agent@example.test")
        options = await agent.get("/service/cases/customer-options",
                                  params={"customer_search": "Own Cust"})
        assert f'value="{row["id"]}"' in options.text
        assert "not one of your customers" not in options.text
        card = await agent.get(f"/customers/{row['id']}/card", follow_redirects=False)
        assert card.status_code == 303 and card.headers["location"] == f"/customers/{row['id']}"
