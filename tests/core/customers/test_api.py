"""REST API for customers: keyset lists, CRUD, scope, problem+json errors, OpenAPI docs."""

from __future__ import annotations

import re

from core.customers import custom_fields, service
from tests.conftest import csrf_headers, make_user, sign_in


async def test_create_get_patch_delete_a_contact(admin_client):
    headers = await csrf_headers(admin_client)
    created = await admin_client.post("/api/v1/contacts", headers=headers, json={
        "first_name": "Ada", "last_name": "Lovelace", "emails": ["ADA@example.org"],
        "phones": ["+44 20 7946 0958"], "tags": ["maths"],
        "addresses": [{"street": "12 St James's Square", "city": "London", "country": "gb"}]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "contact" and body["name"] == "Ada Lovelace"
    assert body["email"] == "ada@example.org" and body["phone"] == "+442079460958"
    assert created.headers["location"] == f"/api/v1/customers/{body['id']}"
    fetched = await admin_client.get(f"/api/v1/contacts/{body['id']}")
    assert fetched.json()["addresses"][0]["country"] == "GB"
    changed = await admin_client.patch(f"/api/v1/customers/{body['id']}", headers=headers,
                                       json={"lifecycle_stage": "customer"})
    assert changed.status_code == 200 and changed.json()["lifecycle_stage"] == "customer"
    assert changed.json()["tags"] == ["maths"]
    # An account URL does not serve a contact.
    assert (await admin_client.get(f"/api/v1/accounts/{body['id']}")).status_code == 404
    gone = await admin_client.delete(f"/api/v1/customers/{body['id']}", headers=headers)
    assert gone.status_code == 204
    assert (await admin_client.get(f"/api/v1/customers/{body['id']}")).status_code == 404


async def test_validation_errors_are_problem_documents_naming_the_field(admin_client):
    headers = await csrf_headers(admin_client)
    response = await admin_client.post("/api/v1/accounts", headers=headers,
                                       json={"name": "Acme", "emails": ["nope"]})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == "emails" and problem["status"] == 422
    assert problem["errors"][0]["field"] == "emails"
    too_many = await admin_client.get("/api/v1/customers?limit=500")
    assert too_many.status_code == 400
    assert too_many.headers["content-type"].startswith("application/problem+json")
    assert too_many.json()["field"] == "limit"
    bad_stage = await admin_client.get("/api/v1/contacts?stage=friend")
    assert bad_stage.status_code == 422 and bad_stage.json()["field"] == "stage"


async def test_custom_values_are_written_and_read_through_the_api(admin_client):
    await custom_fields.create_definition(None, {"key": "tier", "label": "Tier",
                                                 "field_type": "choice", "choices": "A\nB"})
    headers = await csrf_headers(admin_client)
    bad = await admin_client.post("/api/v1/accounts", headers=headers,
                                  json={"name": "Acme", "custom": {"tier": "Z"}})
    assert bad.status_code == 422 and bad.json()["field"] == "cf_tier"
    ok = await admin_client.post("/api/v1/accounts", headers=headers,
                                 json={"name": "Acme", "custom": {"tier": "B"}})
    assert ok.json()["custom"] == {"tier": "B"}
    listed = await admin_client.get("/api/v1/accounts?cf_tier=B")
    assert [c["name"] for c in listed.json()["data"]] == ["Acme"]


async def test_list_pages_follow_the_next_cursor_to_the_end(admin_client):
    for i in range(7):
        await service.create_customer(admin_client.rapport, None,
                                      {"kind": "account", "name": f"Firm {i}"})
    seen, after = [], None
    while True:
        url = "/api/v1/accounts?limit=3&sort=created" + (f"&after={after}" if after else "")
        page = (await admin_client.get(url)).json()
        seen += [c["name"] for c in page["data"]]
        after = page["next"]
        if after is None:
            break
    assert sorted(seen) == [f"Firm {i}" for i in range(7)] and len(seen) == 7
    bad = await admin_client.get("/api/v1/accounts?after=garbage")
    assert bad.status_code == 422 and bad.json()["field"] == "after"


async def test_a_customer_outside_the_scope_answers_404(client):
    owner = await make_user("owner@example.test", roles=["field_representative"])
    await make_user("other@example.test", roles=["field_representative"])
    row = await service.create_customer(client.rapport, None, {"kind": "account", "name": "X",
                                                               "owner": owner})
    await sign_in(client, "other@example.test")
    response = await client.get(f"/api/v1/customers/{row['id']}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/customers")).json()["data"] == []


async def test_openapi_document_and_docs_page_work_without_internet(client):
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/customers" in document["paths"]
    assert "/accounts" not in document["paths"]  # HTML pages are not API
    for path in ("/schema", "/schema/swagger"):
        page = await client.get(path)
        assert page.status_code == 200, path
        scripts = re.findall(r'<script[^>]*src="([^"]+)"', page.text)
        assert scripts and all(s.startswith("/static/") for s in scripts)
        assert "<script>" not in page.text and "https://" not in page.text
        for url in scripts + re.findall(r'<link[^>]*href="([^"]+)"', page.text):
            assert (await client.get(url)).status_code == 200, url


async def test_a_bearer_token_reaches_the_api_without_csrf_and_bad_json_is_a_problem(client):
    from core.identity.tokens import create_token

    uid = await make_user("robot@example.test")
    token, _ = await create_token(client.rapport, uid, "tests")
    auth = {"authorization": f"Bearer {token}"}
    created = await client.post("/api/v1/accounts", headers=auth, json={"name": "Acme"})
    assert created.status_code == 201
    listed = await client.get("/api/v1/accounts", headers=auth)
    assert [c["name"] for c in listed.json()["data"]] == ["Acme"]
    broken = await client.post("/api/v1/accounts", headers={**auth,
                               "content-type": "application/json"}, content=b"{nope")
    assert broken.status_code == 400
    assert broken.headers["content-type"].startswith("application/problem+json")
