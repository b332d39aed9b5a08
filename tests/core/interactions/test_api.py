"""The interactions and follow-ups API: keyset lists, idempotent create, errors naming fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.interactions.service import record_interaction
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.interactions.conftest import add_customer


async def _headers(client):
    return {**await csrf_headers(client), "accept": "application/json"}


async def test_create_answers_201_then_200_for_the_same_client_id(admin_client):
    customer = await add_customer()
    body = {"customer_id": customer, "channel": "visit", "direction": "outbound",
            "subject": "Site visit", "client_id": "phone-7:1", "duration_seconds": 900}
    first = await admin_client.post("/api/v1/interactions", json=body,
                                    headers=await _headers(admin_client))
    assert first.status_code == 201, first.text
    again = await admin_client.post("/api/v1/interactions", json=body,
                                    headers=await _headers(admin_client))
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    got = await admin_client.get(first.headers["location"], headers=await _headers(admin_client))
    assert got.json()["subject"] == "Site visit" and got.json()["customer_name"] == "Ada Lovelace"


async def test_invalid_create_is_a_problem_naming_the_field(admin_client):
    response = await admin_client.post("/api/v1/interactions",
                                       json={"customer_id": 1, "channel": "fax", "mood": "x"},
                                       headers=await _headers(admin_client))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "mood"
    response = await admin_client.post("/api/v1/interactions",
                                       json={"customer_id": 999, "channel": "fax"},
                                       headers=await _headers(admin_client))
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"customer_id", "channel"}


async def test_list_filters_and_follows_the_cursor(admin_client):
    customer = await add_customer()
    other = await add_customer("Bob")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(5):
        await record_interaction(admin_client.rapport, None, customer_id=customer,
                                 channel="call", occurred_at=start + timedelta(days=i))
    await record_interaction(admin_client.rapport, None, customer_id=other, channel="email")
    page = await admin_client.get(f"/api/v1/interactions?customer={customer}&limit=3",
                                  headers=await _headers(admin_client))
    data = page.json()
    assert len(data["data"]) == 3 and data["next"]
    rest = await admin_client.get(
        f"/api/v1/interactions?customer={customer}&limit=3&after={data['next']}",
        headers=await _headers(admin_client))
    assert len(rest.json()["data"]) == 2 and rest.json()["next"] is None
    ids = [d["id"] for d in data["data"] + rest.json()["data"]]
    assert len(set(ids)) == 5
    dated = await admin_client.get("/api/v1/interactions?from=2026-03-02&to=2026-03-03",
                                   headers=await _headers(admin_client))
    assert len(dated.json()["data"]) == 2
    bad = await admin_client.get("/api/v1/interactions?direction=up",
                                 headers=await _headers(admin_client))
    assert bad.status_code == 422 and bad.json()["field"] == "direction"


async def test_patch_and_follow_up_completion(admin_client):
    customer = await add_customer()
    created = await admin_client.post("/api/v1/interactions", json={
        "customer_id": customer, "channel": "call",
        "followup_due": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        headers=await _headers(admin_client))
    interaction = created.json()
    assert interaction["followup"]["assignee_id"] == admin_client.user_id
    mine = await admin_client.get("/api/v1/follow-ups", headers=await _headers(admin_client))
    assert [f["id"] for f in mine.json()["today"] + mine.json()["upcoming"]] == [interaction["id"]]
    patched = await admin_client.patch(interaction["url"], json={"outcome": "interested"},
                                       headers=await _headers(admin_client))
    assert patched.json()["outcome"] == "interested"
    refused = await admin_client.patch(interaction["url"], json={"customer_id": 5},
                                       headers=await _headers(admin_client))
    assert refused.status_code == 422 and refused.json()["field"] == "customer_id"
    done = await admin_client.post(f"/api/v1/follow-ups/{interaction['id']}/complete",
                                   headers=await _headers(admin_client))
    assert done.status_code == 200 and done.json()["followup"]["done"] is True


async def test_out_of_scope_interaction_is_404(client):
    rep = await make_user("rep@example.test", roles=["field_representative"])
    assert rep
    theirs = await add_customer("Theirs")
    row, _ = await record_interaction(client.rapport, None, customer_id=theirs, channel="call")
    await sign_in(client, "rep@example.test")
    response = await client.get(f"/api/v1/interactions/{row['id']}",
                                headers=await _headers(client))
    assert response.status_code == 404
    listed = await client.get("/api/v1/interactions", headers=await _headers(client))
    assert listed.json()["data"] == []
