"""Global search asks providers concurrently and shows what arrived when one is slow."""

from __future__ import annotations

import asyncio

from core.plugin import Plugin, SearchProvider, SearchResult, hookimpl
from tests.conftest import make_user, sign_in


async def test_a_slow_provider_is_left_out_and_named_instead_of_stalling_search(
        make_rapport, monkeypatch):
    import types

    from core.search import service
    from tests.conftest import app_client

    finished = []

    async def slow(rapport, user, query, limit):
        await asyncio.sleep(30)
        finished.append("slow")
        return [SearchResult(title="Slow answer", url="/slow/1", kind="slow")]

    async def quick(rapport, user, query, limit):
        return [SearchResult(title=f"Quick answer for {query}", url="/quick/1", kind="quick")]

    module = types.ModuleType("twospeed_plugin")
    module.plugin = Plugin(id="twospeed", name="Two speeds", version="0")
    module.register_search_providers = hookimpl(lambda: [
        SearchProvider(kind="slow", label="Slow things", search=slow),
        SearchProvider(kind="quick", label="Quick things", search=quick)])
    monkeypatch.setattr("core.loader.installed_plugins", lambda: {"twospeed": module})
    monkeypatch.setattr(service, "PROVIDER_BUDGET", 0.2)
    rapport = await make_rapport(["twospeed"])
    async with app_client(rapport) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        page = await client.get("/search", params={"q": "printer"})
        assert page.status_code == 200
        assert "Quick answer for printer" in page.text and "Slow answer" not in page.text
        assert "Not searched in time: Slow things" in page.text  # the user knows what's missing
        api = (await client.get("/api/v1/search", params={"q": "printer"})).json()
        assert [g["kind"] for g in api["groups"]] == ["quick"]
        assert api["late"] == ["Slow things"]
    assert finished == []  # the slow provider was cancelled, not left running
