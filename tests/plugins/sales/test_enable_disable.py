"""The sales plugin can be switched off: core works without it and none of its routes exist."""

from __future__ import annotations

from tests.conftest import app_client, make_user, sign_in


async def test_core_without_sales_works_and_has_no_sales_route(make_rapport):
    instance = await make_rapport([])
    assert not instance.is_enabled("sales")
    app = instance.asgi
    paths = {route.path for route in app.routes}
    assert not [p for p in paths if p.startswith(("/sales", "/api/v1/sales",
                                                 "/portal/sales", "/static/plugins/sales"))]
    async with app_client(instance) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        home = await client.get("/")
        assert home.status_code == 200 and "/sales/widgets" not in home.text
        assert "Pipeline" not in home.text
        assert (await client.get("/sales/leads")).status_code == 404


async def test_app_with_sales_serves_its_pages_api_schema_and_static_files(sales_client):
    home = await sales_client.get("/")
    assert 'href="/sales/board"' in home.text and "/sales/widgets/pipeline" in home.text
    schema = (await sales_client.get("/schema/openapi.json")).json()
    assert "/api/v1/sales/leads" in schema["paths"]
    assert "/api/v1/sales/quotes/{quote_id}" in schema["paths"]
    script = await sales_client.get("/static/plugins/sales/board.js")
    assert script.status_code == 200 and "dragstart" in script.text


async def test_bad_sales_settings_are_refused_with_the_key_named(make_rapport):
    import pytest

    from core.loader import PluginError

    with pytest.raises(PluginError, match="stale_after_days"):
        await make_rapport(["sales"], {"sales": {"stale_after_days": "soon"}})
