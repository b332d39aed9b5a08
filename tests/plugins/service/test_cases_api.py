"""The cases REST API: create, list with filters and keyset pages, get, reply, status, assign,
row scopes, and errors as problem+json naming the field."""

from __future__ import annotations

import base64

from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.cases_helpers import EXE, PNG
from tests.plugins.service.conftest import new_customer


def assert_problem(response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


async def test_api_opens_answers_and_closes_a_case(service_client):
    customer = await new_customer("Ada Lovelace")
    created = await service_client.post("/api/v1/service/cases", json={
        "customer_id": customer, "subject": "Engine stalls", "description": "Since Monday",
        "priority": "urgent", "case_type": "complaint", "channel": "email",
        "attachments": [{"filename": "photo.png",
                         "content_base64": base64.b64encode(PNG).decode()}]})
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["number"].startswith("CS-") and case["status"] == "new"
    assert created.headers["location"] == case["url"]

    reply = await service_client.post(f"{case['url']}/messages",
                                      json={"kind": "reply", "body": "Try restarting"})
    assert reply.status_code == 201 and reply.json()["kind"] == "reply"
    note = await service_client.post(f"{case['url']}/messages",
                                     json={"kind": "note", "body": "VIP"})
    assert note.status_code == 201
    detail = (await service_client.get(case["url"])).json()
    assert detail["status"] == "waiting"
    assert [m["kind"] for m in detail["messages"]] == ["inbound", "reply", "note"]
    file_url = detail["messages"][0]["attachments"][0]["url"]
    downloaded = await service_client.get(file_url)
    assert downloaded.status_code == 200 and downloaded.content == PNG

    resolved = await service_client.post(f"{case['url']}/status", json={"status": "resolved"})
    assert resolved.status_code == 200 and resolved.json()["is_open"] is False
    agent = await make_user("agent@example.test", roles=["service_agent"])
    assigned = await service_client.post(f"{case['url']}/assign", json={"owner_id": agent})
    assert assigned.status_code == 200 and assigned.json()["owner"] == agent
    priority = await service_client.post(f"{case['url']}/priority", json={"priority": "low"})
    assert priority.json()["priority"] == "low"


async def test_api_errors_are_problems_naming_the_field(service_client):
    customer = await new_customer()
    cases_url = "/api/v1/service/cases"
    assert_problem(await service_client.post(cases_url, json={"subject": "x"}), 422,
                   "customer_id")
    assert_problem(await service_client.post(cases_url, json={
        "customer_id": customer, "subject": ""}), 422, "subject")
    assert_problem(await service_client.post(cases_url, json={
        "customer_id": customer, "subject": "x", "priority": "asap"}), 422, "priority")
    assert_problem(await service_client.post(cases_url, json={
        "customer_id": customer, "subject": "x", "colour": "red"}), 422, "colour")
    assert_problem(await service_client.post(cases_url, json={
        "customer_id": customer, "subject": "x",
        "attachments": [{"filename": "a.png", "content_base64": base64.b64encode(EXE).decode()}]}),
        422, "attachments")
    assert_problem(await service_client.get(f"{cases_url}?priority=asap"), 422, "priority")
    assert_problem(await service_client.get(f"{cases_url}?after=nonsense"), 422, "after")
    assert_problem(await service_client.get(f"{cases_url}?limit=1000"), 400, "limit")
    created = (await service_client.post(cases_url, json={
        "customer_id": customer, "subject": "x"})).json()
    await service_client.post(f"{created['url']}/status", json={"status": "closed"})
    assert_problem(await service_client.post(f"{created['url']}/status",
                                             json={"status": "waiting"}), 422, "status")
    assert_problem(await service_client.post(f"{created['url']}/messages",
                                             json={"kind": "shout", "body": "x"}), 422, "kind")
    assert_problem(await service_client.post(f"{created['url']}/assign",
                                             json={"owner_id": "me"}), 422, "owner_id")
    missing = await service_client.get(f"{cases_url}/999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_api_lists_in_queue_order_by_keyset_within_the_callers_scope(service_rapport):
    from plugins.service import cases

    async with app_client(service_rapport) as client:
        agent = await make_user("own@example.test", roles=["field_representative"])
        customer = await new_customer()
        ids = []
        for i, priority in enumerate(["low", "urgent", "normal", "urgent", "high"]):
            case = await cases.open_case(service_rapport, None, customer_id=customer,
                                         subject=f"Case {i}", priority=priority)
            ids.append(case["id"])
            if i != 4:
                await cases.assign(service_rapport, None, case["id"], owner_id=agent)
        await sign_in(client, "own@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        seen, url = [], "/api/v1/service/cases?limit=2"
        while url:
            page = (await client.get(url)).json()
            seen += [row["subject"] for row in page["data"]]
            url = f"/api/v1/service/cases?limit=2&after={page['next']}" if page["next"] else ""
        # Urgent first (oldest first among them); "Case 4" belongs to nobody: not visible.
        assert seen == ["Case 1", "Case 3", "Case 2", "Case 0"]
        assert (await client.get(f"/api/v1/service/cases/{ids[4]}")).status_code == 404
        refused = await client.post(f"/api/v1/service/cases/{ids[4]}/messages",
                                    json={"kind": "reply", "body": "hi"})
        assert refused.status_code == 404
        urgent = (await client.get("/api/v1/service/cases?priority=urgent")).json()
        assert [r["subject"] for r in urgent["data"]] == ["Case 1", "Case 3"]


async def test_api_is_in_the_openapi_document(service_client):
    schema = (await service_client.get("/schema/openapi.json")).json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/service/cases"])
    assert "post" in schema["paths"]["/api/v1/service/cases/{case_id}/messages"]


async def test_api_leaves_out_fields_hidden_from_the_callers_role(service_rapport):
    from core.identity.tables import FieldRule, Role
    from plugins.service import cases

    async with app_client(service_rapport) as client:
        agent = await make_user("agent@example.test", roles=["service_agent"])
        role = await Role.select(Role.id).where(Role.key == "service_agent").first().run()
        await FieldRule.insert(FieldRule(role=role["id"], record_type="service_case",
                                         field="satisfaction_comment")).run()
        customer = await new_customer()
        case = await cases.open_case(service_rapport, None, customer_id=customer, subject="x")
        await cases.assign(service_rapport, None, case["id"], owner_id=agent)
        await cases.change_status(service_rapport, None, case["id"], "resolved")
        await cases.rate(service_rapport, case["id"], customer_id=customer, score=2,
                         comment="The agent was rude")
        await sign_in(client, "agent@example.test")
        detail = (await client.get(f"/api/v1/service/cases/{case['id']}")).json()
        assert detail["satisfaction"] == 2 and "satisfaction_comment" not in detail
        listed = (await client.get("/api/v1/service/cases?view=all")).json()["data"]
        assert "satisfaction_comment" not in listed[0]
