"""References a user sets must be within their reach (issue 17, item 4): an owner, a team or
a linked record (customer, deal, contact) outside what the person may see or assign is
refused naming the field, through core and the plugins alike (core.references)."""

from __future__ import annotations

import pytest

from core.identity.tables import Team
from core.identity.tokens import create_token
from tests.conftest import app_client, make_user


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/json"}


@pytest.fixture
async def reach(make_rapport):
    rapport = await make_rapport(["sales", "service"])
    async with app_client(rapport) as client:
        ana = await make_user("ana@example.test", roles=["sales_representative"],
                              teams=["North"])
        nils = await make_user("nils@example.test", roles=["sales_representative"],
                               teams=["North"])
        bo = await make_user("bo@example.test", roles=["sales_representative"], teams=["South"])
        agent = await make_user("agent@example.test", roles=["service_agent"], teams=["North"])
        mia = await make_user("mia@example.test", roles=["manager"], teams=["North"])
        teams = {r["name"]: r["id"] for r in await Team.select(Team.id, Team.name).run()}
        from core.customers.tables import Customer

        def customer(name, owner, team):
            return Customer(kind="account", name=name, owner=owner, team=team)

        ids = [r["id"] for r in await Customer.insert(
            customer("Ana's customer", ana, teams["North"]),
            customer("Bo's customer", bo, teams["South"])).returning(Customer.id).run()]
        client.people = {"ana": ana, "nils": nils, "bo": bo, "agent": agent, "mia": mia}
        client.teams, client.customers = teams, ids
        client.tokens = {name: (await create_token(rapport, uid))[0]
                         for name, uid in client.people.items()}
        yield client


async def _post(client, who, path, body, method="post"):
    return await client.request(method.upper(), path, json=body,
                                headers=bearer(client.tokens[who]))


def _refused(response, field):
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field, response.json()


async def test_sales_records_refuse_owners_teams_and_links_out_of_reach(reach):
    north, south = reach.teams["North"], reach.teams["South"]
    mine, bos = reach.customers
    # Bo's deal in the South team, which Ana cannot see.
    bos_deal = await _post(reach, "bo", "/api/v1/sales/opportunities",
                           {"name": "South deal", "customer": bos, "amount": "100.00",
                            "team": south})
    assert bos_deal.status_code == 201, bos_deal.text
    from tests.plugins.sales.test_quotes import catalogue

    product = await catalogue()
    quote = {"customer": mine, "currency": "EUR", "lines": [{"product": product, "quantity": 1}]}
    _refused(await _post(reach, "ana", "/api/v1/sales/quotes",
                         {**quote, "owner": reach.people["bo"]}), "owner")
    _refused(await _post(reach, "ana", "/api/v1/sales/quotes",
                         {**quote, "team": south}), "team")
    _refused(await _post(reach, "ana", "/api/v1/sales/quotes",
                         {**quote, "opportunity": bos_deal.json()["id"]}), "opportunity")
    _refused(await _post(reach, "ana", "/api/v1/sales/quotes", {**quote, "customer": bos}),
             "customer")
    ok = await _post(reach, "ana", "/api/v1/sales/quotes", {**quote, "team": north})
    assert ok.status_code == 201, ok.text
    assert ok.json()["owner"] == reach.people["ana"] and ok.json()["team"] == north
    # Deals: no other team, no contact person out of sight.
    deal = {"name": "North deal", "customer": mine, "amount": "10.00"}
    _refused(await _post(reach, "ana", "/api/v1/sales/opportunities", {**deal, "team": south}),
             "team")
    created = await _post(reach, "ana", "/api/v1/sales/opportunities", {**deal, "team": north})
    assert created.status_code == 201, created.text
    _refused(await _post(reach, "ana", f"/api/v1/sales/opportunities/{created.json()['id']}",
                         {"owner": reach.people["bo"]}, method="patch"), "owner")


async def test_core_and_service_records_refuse_owners_and_teams_out_of_reach(reach):
    south, north = reach.teams["South"], reach.teams["North"]
    mine = reach.customers[0]
    account = {"kind": "account", "name": "Northwind"}
    # A manager gives customers to the people and teams they manage, not beyond.
    _refused(await _post(reach, "mia", "/api/v1/customers",
                         {**account, "owner": reach.people["bo"]}), "owner")
    _refused(await _post(reach, "mia", "/api/v1/customers", {**account, "team": south}), "team")
    created = await _post(reach, "mia", "/api/v1/customers",
                          {**account, "team": north, "owner": reach.people["nils"]})
    assert created.status_code == 201, created.text
    path = f"/api/v1/customers/{created.json()['id']}"
    _refused(await _post(reach, "mia", path, {"team": south}, method="patch"), "team")
    # Saving a customer with the owner it already has passes.
    same = await _post(reach, "mia", path, {"owner": reach.people["nils"], "name": "Northwind 2"},
                       method="patch")
    assert same.status_code == 200, same.text
    # A follow-up goes to someone one may give work to.
    touch = await _post(reach, "ana", "/api/v1/interactions",
                        {"customer_id": mine, "channel": "call", "subject": "Call",
                         "followup_due": "2030-01-02", "followup_assignee": reach.people["bo"]})
    _refused(touch, "followup_assignee")
    # A service agent assigns cases within their team only.
    case = await _post(reach, "agent", "/api/v1/service/cases",
                       {"customer_id": mine, "subject": "Broken", "description": "It broke"})
    assert case.status_code == 201, case.text
    assign = f"/api/v1/service/cases/{case.json()['id']}/assign"
    _refused(await _post(reach, "agent", assign, {"owner_id": reach.people["bo"]}), "owner_id")
    fine = await _post(reach, "agent", assign, {"owner_id": reach.people["nils"]})
    assert fine.status_code == 200, fine.text
