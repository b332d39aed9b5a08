"""Articles suggested to an agent answering a case, limited to cases the agent may see."""

from __future__ import annotations

from core.permissions import Actor
from plugins.service import cases, kb
from tests.conftest import make_user, sign_in
from tests.plugins.service.conftest import new_customer

EDITOR = Actor(kind="staff", id=None, name="editor",
               grants={"service.article.view": "all", "service.article.edit": "all"})


async def test_agent_sees_articles_relevant_to_the_case(service_client):
    client = service_client
    rapport = client.rapport
    await kb.create_article(EDITOR, {
        "title": "Boiler pressure too low", "audience": "internal", "published": True,
        "keywords": "boiler, pressure", "body": "Ask the customer to refill to 1.5 bar."})
    public = await kb.create_article(EDITOR, {
        "title": "Topping up boiler pressure", "audience": "public", "published": True,
        "keywords": "boiler, pressure", "body": "Open the filling loop slowly."})
    await kb.create_article(EDITOR, {"title": "Invoices explained", "audience": "public",
                                     "published": True, "body": "Your invoice lists..."})
    await kb.create_article(EDITOR, {"title": "Boiler pressure DRAFT", "audience": "internal",
                                     "keywords": "boiler, pressure"})
    customer = await new_customer("Grace Hopper")
    case = await cases.open_case(rapport, None, customer_id=customer,
                                 subject="Boiler keeps losing pressure",
                                 description="The pressure gauge drops every night.")
    fragment = await client.get(f"/service/kb/suggest?case={case['id']}")
    assert fragment.status_code == 200
    text = fragment.text
    assert "Boiler pressure too low" in text and "Topping up boiler pressure" in text
    assert "Invoices explained" not in text
    # Editors see drafts in the knowledge base, but a draft is never offered for a reply.
    assert "DRAFT" not in text
    assert f"/portal/service/help/{public['slug']}" in text  # the link a customer can open
    assert "data-kb-insert" in text and "/static/plugins/service/kb/kb.js" in text
    assert (await client.get("/service/kb/suggest?case=999999")).status_code == 404

    # An agent of another team cannot learn about the case through suggestions.
    await make_user("agent@example.test", roles=["service_agent"], teams=["Elsewhere"])
    await sign_in(client, "agent@example.test")
    assert (await client.get(f"/service/kb/suggest?case={case['id']}")).status_code == 404
    free_text = await client.get("/service/kb/suggest", params={"q": "boiler pressure"})
    assert "Boiler pressure too low" in free_text.text
