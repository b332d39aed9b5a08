"""Every API operation declares what it accepts and answers, and bad input gets a clear
answer, never a server error (issue 17, item 9)."""

from __future__ import annotations

import json

from tests.conftest import app_client, make_user

PLUGINS = ["sales", "service", "loyalty", "configurator"]


def _free_form(schema: dict) -> bool:
    return not schema or (schema.get("type") == "object" and not schema.get("properties")
                          and not schema.get("additionalProperties"))


async def test_every_operation_declares_its_body_and_problem_answers(make_rapport):
    rapport = await make_rapport(PLUGINS)
    async with app_client(rapport) as client:
        document = (await client.get("/schema/openapi.json")).json()
    assert "Problem" in document["components"]["schemas"]
    free = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for code in ("401", "403", "404", "422"):
                content = operation["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], (method, path, code)
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                if _free_form(schema):
                    free.append(f"{method.upper()} {path}")
    assert free == [], free


async def test_bad_input_is_a_clear_answer_naming_the_field(make_rapport):
    rapport = await make_rapport(PLUGINS)
    async with app_client(rapport) as client:
        await make_user("admin@example.test")
        from core.identity.tokens import create_token_for_email

        token, _ = await create_token_for_email(rapport, "admin@example.test")
        auth = {"authorization": f"Bearer {token}", "accept": "application/json"}

        async def post(path, body):
            raw = body if isinstance(body, str) else json.dumps(body)
            answer = await client.post(path, content=raw.encode(),
                                       headers={**auth, "content-type": "application/json"})
            assert answer.headers["content-type"].startswith("application/problem+json"), \
                answer.text
            return answer.status_code, answer.json().get("errors", [{}])[0].get("field")

        deep = '{"name": ' + '[' * 5000 + ']' * 5000 + '}'
        assert await post("/api/v1/customers", deep) == (422, "body")
        nested = '{"name": ' + '[' * 100 + ']' * 100 + '}'
        assert (await post("/api/v1/customers", nested))[0] == 422
        # Sales counts lines from 1, as its own messages do.
        assert await post("/api/v1/sales/quotes", {"customer": 1, "lines": ["x"]}) == (
            422, "lines[1]")
        assert await post("/api/v1/sales/quotes", {"customer": 1, "lines": [
            {"product": 1, "quantity": "1e999999"}]}) == (422, "lines[1].quantity")
        assert await post("/api/v1/sales/opportunities", {
            "name": "Huge", "amount": "9" * 40}) == (422, "amount")
        assert await post("/api/v1/sales/orders", {"customer": 1, "lines": {"a": 1}}) == (
            422, "lines")
        assert await post("/api/v1/interactions", {"customer_id": "one", "channel": "call"}) \
            == (422, "customer_id")
        assert await post("/api/v1/sales/quotes", "{nope") == (400, "body")
        assert await post("/api/v1/customers/1/merge", {"merged_id": "two"}) == (
            422, "merged_id")
        forecast = await client.get("/api/v1/sales/forecast?currency=0", headers=auth)
        assert forecast.status_code in (200, 422), forecast.text
        missing = await client.get("/api/v1/no-such-thing", headers=auth)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
