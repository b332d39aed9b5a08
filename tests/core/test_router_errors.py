"""Answers the router gives before any route runs (unknown path, wrong method) carry the same
security headers as every other response."""

from __future__ import annotations

import pytest

from core.web_app import SECURITY_HEADERS


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/no-such-page", 404),
    ("GET", "/api/v1/no-such-thing", 404),
    ("DELETE", "/healthz", 405),
    ("PUT", "/login", 405),
])
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_not_found_and_wrong_method_answers_carry_the_security_headers(
        client, method, path, status, accept):
    response = await client.request(method, path, headers={"accept": accept})
    assert response.status_code == status
    for name, value in SECURITY_HEADERS:
        assert response.headers.get(name.decode()) == value.decode(), name
