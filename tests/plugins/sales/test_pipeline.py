"""Opportunities and the pipeline: the board, stage history, stale deals, lists and widgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import new_customer, post_form


async def new_deal(client, **values):
    response = await client.post("/api/v1/sales/opportunities", json={
        "name": "Fleet renewal", "amount": "5000.00", "currency": "EUR", **values})
    assert response.status_code == 201, response.text
    return response.json()


async def stage_ids(client) -> dict[str, int]:
    stages = (await client.get("/api/v1/sales/stages")).json()
    return {s["name"]: s["id"] for s in stages}


async def test_dragging_a_card_moves_the_deal_and_records_the_stage_history(sales_client):
    customer = await new_customer()
    deal = await new_deal(sales_client, customer=customer)
    stages = await stage_ids(sales_client)
    board = await sales_client.get("/sales/board")
    assert f'id="deal-{deal["id"]}"' in board.text and 'draggable="true"' in board.text
    assert "/static/plugins/sales/board.js" in board.text
    # The drop (or the stage list on the card) posts the new stage with htmx.
    moved = await post_form(sales_client, f"/sales/opportunities/{deal['id']}/stage",
                            {"stage": str(stages["Proposal"])}, headers={
                                "hx-request": "true",
                                "x-csrftoken": sales_client.cookies["csrftoken"]})
    assert moved.status_code == 200
    assert f'data-stage-id="{stages["Proposal"]}"' in moved.text
    from plugins.sales.tables import StageChange

    history = await StageChange.select().where(StageChange.opportunity == deal["id"]).order_by(
        StageChange.id).run()
    assert [(h["from_stage"], h["to_stage"]) for h in history] == [
        (None, stages["Prospecting"]), (stages["Prospecting"], stages["Proposal"])]
    page = await sales_client.get(f"/sales/opportunities/{deal['id']}")
    assert "Prospecting → Proposal" in page.text


async def test_losing_a_deal_requires_a_reason(sales_client):
    deal = await new_deal(sales_client)
    stages = await stage_ids(sales_client)
    refused = await sales_client.post(f"/api/v1/sales/opportunities/{deal['id']}/stage",
                                      json={"stage": stages["Lost"]})
    assert refused.status_code == 422 and refused.json()["field"] == "close_reason"
    lost = await sales_client.post(f"/api/v1/sales/opportunities/{deal['id']}/stage",
                                   json={"stage": stages["Lost"], "reason": "Price too high"})
    assert lost.status_code == 200
    assert lost.json()["status"] == "lost" and lost.json()["close_reason"] == "Price too high"


async def test_amounts_are_exact_money_and_floats_are_refused(sales_client):
    deal = await new_deal(sales_client, amount={"amount": "1234.565", "currency": "eur"})
    assert deal["amount"] == {"amount": "1234.5600", "currency": "EUR"} or \
        deal["amount"]["amount"].startswith("1234.56")
    refused = await sales_client.post("/api/v1/sales/opportunities",
                                      json={"name": "X", "amount": 10.5})
    assert refused.status_code == 422 and refused.json()["field"] == "amount"


async def test_deal_without_activity_for_n_days_is_flagged_stale(sales_client):
    from plugins.sales.tables import Opportunity

    fresh = await new_deal(sales_client, name="Fresh deal")
    old = await new_deal(sales_client, name="Forgotten deal")
    await Opportunity.update({Opportunity.last_activity_at: datetime.now(UTC) - timedelta(
        days=30)}).where(Opportunity.id == old["id"]).run()
    board = await sales_client.get("/sales/board")
    assert board.text.count("No activity for over 14 days") == 1
    card_start = board.text.index(f'id="deal-{old["id"]}"')
    assert "deal-stale" in board.text[card_start - 60:card_start]
    listing = await sales_client.get("/sales/opportunities")
    assert listing.text.count(">stale<") == 1
    assert fresh["id"] != old["id"]


async def test_list_and_api_page_through_deals_with_a_cursor(sales_client):
    ids = [(await new_deal(sales_client, name=f"Deal {i}"))["id"] for i in range(5)]
    first = (await sales_client.get("/api/v1/sales/opportunities?limit=2")).json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    second = (await sales_client.get(
        f"/api/v1/sales/opportunities?limit=2&after={first['next_after']}")).json()
    assert [i["id"] for i in second["items"]] == ids[::-1][2:4]
    capped = await sales_client.get("/api/v1/sales/opportunities?limit=100000")
    assert capped.status_code == 200


async def test_pipeline_and_win_rate_widgets_sum_within_the_users_scope(sales_client):
    stages = await stage_ids(sales_client)
    a = await new_deal(sales_client, amount="1000.00")
    await new_deal(sales_client, amount="3000.00")
    won = await new_deal(sales_client, amount="500.00")
    await sales_client.post(f"/api/v1/sales/opportunities/{won['id']}/stage",
                            json={"stage": stages["Won"]})
    lost = await new_deal(sales_client, amount="500.00")
    await sales_client.post(f"/api/v1/sales/opportunities/{lost['id']}/stage",
                            json={"stage": stages["Lost"], "reason": "Timing"})
    await sales_client.post(f"/api/v1/sales/opportunities/{a['id']}/stage",
                            json={"stage": stages["Proposal"]})
    widget = await sales_client.get("/sales/widgets/pipeline")
    # Prospecting holds 3,000 EUR (10%: 300), Proposal 1,000 EUR (50%: 500).
    assert "3,000.00 EUR" in widget.text and "300.00 EUR" in widget.text
    assert "1,000.00 EUR" in widget.text and "500.00 EUR" in widget.text
    rate = await sales_client.get("/sales/widgets/win-rate")
    assert "50%" in rate.text and "1 won, 1 lost" in rate.text
    dashboard = await sales_client.get("/")
    assert "/sales/widgets/pipeline" in dashboard.text


async def test_representative_cannot_see_or_move_another_representatives_deal(sales_client):
    other = await make_user("other@example.test", roles=["field_representative"])
    await make_user("rep@example.test", roles=["field_representative"])
    theirs = await new_deal(sales_client, name="Not yours")
    from plugins.sales.tables import Opportunity

    await Opportunity.update({Opportunity.owner: other}).where(
        Opportunity.id == theirs["id"]).run()
    await sign_in(sales_client, "rep@example.test")
    mine = await new_deal(sales_client, name="Mine")
    stages = await stage_ids(sales_client)
    board = await sales_client.get("/sales/board")
    assert "Mine" in board.text and "Not yours" not in board.text
    assert (await sales_client.get(f"/sales/opportunities/{theirs['id']}")).status_code == 404
    moved = await sales_client.post(f"/api/v1/sales/opportunities/{theirs['id']}/stage",
                                    json={"stage": stages["Proposal"]})
    assert moved.status_code == 404
    assert mine["owner"] != other
