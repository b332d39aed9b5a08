"""Sales global search answers from the trigram index, which follows edits and deletes."""

from __future__ import annotations


async def test_lead_search_follows_renames_and_deletes_and_ignores_two_letters(sales_client):
    from core.identity.users import load_actor
    from plugins.sales.search import leads
    from plugins.sales.tables import Lead

    created = await sales_client.post("/api/v1/sales/leads", json={
        "last_name": "Oppenheimer", "company": "Trinity Labs", "email": "j@trinity.example"})
    assert created.status_code in (200, 201)
    rapport = sales_client.rapport
    admin = await load_actor(rapport, sales_client.user_id)

    async def titles(query):
        return [r.title for r in await leads(rapport, admin, query, 10)]

    assert await titles("PENHEIM") == ["Oppenheimer"]
    assert await titles("nity lab") == ["Oppenheimer"]  # company, across a space
    assert await titles("trinity.example") == ["Oppenheimer"]
    assert await titles("op") == []  # too short for the index: nothing rather than a scan
    await Lead.update({Lead.last_name: "Feynman"}).where(Lead.last_name == "Oppenheimer").run()
    assert await titles("penheim") == []
    assert await titles("feynman") == ["Feynman"]
    await Lead.delete().where(Lead.last_name == "Feynman").run()
    assert await titles("feynman") == []
