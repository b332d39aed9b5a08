"""The API document lists the API, not the web UI's pages and form posts."""

from __future__ import annotations


async def test_openapi_document_lists_only_api_operations_with_every_plugin(make_rapport):
    from tests.conftest import app_client

    rapport = await make_rapport(plugins=["sales", "service"])
    async with app_client(rapport) as client:
        document = (await client.get("/schema/openapi.json")).json()
    paths = set(document["paths"])
    assert "/api/v1/customers" in paths
    assert any(p.startswith("/api/v1/service/") for p in paths)
    pages = sorted(p for p in paths if not p.startswith("/api/"))
    # Sign-in, admin, portal and plugin pages used to make up 166 of 224 paths.
    assert pages == []
