"""Several pipelines: created and edited in the UI (ordered stages with probabilities), and the
board and list switching between them."""

from __future__ import annotations

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import post_form


async def _stages(client, pipeline_id: int) -> list[dict]:
    items = (await client.get("/api/v1/sales/pipelines")).json()["items"]
    return next(p for p in items if p["id"] == pipeline_id)["stages"]


async def test_create_a_pipeline_and_edit_its_stages(sales_client):
    refused = await post_form(sales_client, "/sales/pipelines", {
        "name": "Renewals", "stages": "Contacted: 10\nOffer: 150"})
    assert refused.status_code == 400 and "whole percentage from 0 to 100" in refused.text
    assert 'aria-describedby="err-np-stages"' in refused.text
    created = await post_form(sales_client, "/sales/pipelines", {
        "name": "Renewals", "stages": "Contacted: 10\nOffer: 60"})
    assert created.status_code == 303
    pid = int(created.headers["location"].rsplit("/", 1)[1])
    stages = await _stages(sales_client, pid)
    assert [(s["name"], s["probability"], s["outcome"]) for s in stages] == [
        ("Contacted", 10, "open"), ("Offer", 60, "open"), ("Won", 100, "won"),
        ("Lost", 0, "lost")]
    # Add a stage: it goes before Won and Lost; then move it up and rename another.
    await post_form(sales_client, f"/sales/pipelines/{pid}/stages",
                    {"name": "Signature", "probability": "90"})
    signature = next(s for s in await _stages(sales_client, pid) if s["name"] == "Signature")
    await post_form(sales_client, f"/sales/pipelines/{pid}/stages/{signature['id']}/move",
                    {"direction": "up"})
    contacted = (await _stages(sales_client, pid))[0]
    await post_form(sales_client, f"/sales/pipelines/{pid}/stages/{contacted['id']}",
                    {"name": "First call", "probability": "15"})
    assert [(s["name"], s["probability"]) for s in await _stages(sales_client, pid)] == [
        ("First call", 15), ("Signature", 90), ("Offer", 60), ("Won", 100), ("Lost", 0)]
    duplicate = await post_form(sales_client, f"/sales/pipelines/{pid}/stages",
                                {"name": "offer", "probability": "5"})
    assert duplicate.status_code == 400 and "already has a stage of this name" in duplicate.text
    won = next(s for s in await _stages(sales_client, pid) if s["outcome"] == "won")
    refused = await post_form(sales_client, f"/sales/pipelines/{pid}/stages/{won['id']}/delete",
                              {})
    assert refused.status_code == 400 and "cannot be deleted" in refused.text
    await post_form(sales_client, f"/sales/pipelines/{pid}/stages/{signature['id']}/delete", {})
    assert "Signature" not in [s["name"] for s in await _stages(sales_client, pid)]


async def test_a_stage_with_deals_cannot_be_deleted_and_the_board_switches_pipeline(
        sales_client):
    created = await sales_client.post("/api/v1/sales/pipelines", json={
        "name": "Partners", "stages": [{"name": "Intro", "probability": 10},
                                       {"name": "Pilot", "probability": 40}]})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    stages = await _stages(sales_client, pid)
    deal = await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Partner deal", "amount": "10.00", "pipeline": pid,
        "stage": stages[1]["id"]})
    assert deal.status_code == 201, deal.text
    await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Default pipeline deal", "amount": "10.00"})
    board = await sales_client.get(f"/sales/board?pipeline={pid}")
    assert "Pipeline: Partners" in board.text and "Partner deal" in board.text
    assert "Default pipeline deal" not in board.text and "1 deals · 10.00 EUR" in board.text
    default_board = await sales_client.get("/sales/board")
    assert "Default pipeline deal" in default_board.text
    assert "Partner deal" not in default_board.text
    listed = await sales_client.get(f"/sales/opportunities?pipeline={pid}")
    assert "Partner deal" in listed.text and "Default pipeline deal" not in listed.text
    refused = await post_form(sales_client,
                              f"/sales/pipelines/{pid}/stages/{stages[1]['id']}/delete", {})
    assert refused.status_code == 400 and "rename it instead" in refused.text
    bad = await sales_client.post("/api/v1/sales/pipelines", json={
        "name": "Partners", "stages": [{"name": "X", "probability": 1}]})
    assert bad.status_code == 422 and bad.json()["field"] == "name"


async def test_only_administrators_manage_pipelines(sales_client):
    await make_user("rep@example.test", roles=["sales_representative"])
    await sign_in(sales_client, "rep@example.test")
    assert (await sales_client.get("/sales/pipelines")).status_code == 403
    denied = await post_form(sales_client, "/sales/pipelines", {"name": "Mine",
                                                                "stages": "A: 1"})
    assert denied.status_code == 403
    board = await sales_client.get("/sales/board")
    assert board.status_code == 200 and 'href="/sales/pipelines"' not in board.text
