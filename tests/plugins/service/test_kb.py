"""Knowledge base: articles and categories (validated, audited), search that keeps internal
articles from customers, suggestions, and "was this helpful?" counters."""

from __future__ import annotations

import pytest

from core.audit import AuditEntry
from core.permissions import Actor
from plugins.service import kb
from plugins.service.tables import Article, ArticleFeedback
from tests.conftest import make_user, sign_in
from tests.plugins.service.conftest import new_customer, post_form

STAFF = Actor(kind="staff", id=None, name="setup",
              grants={"service.article.view": "all", "service.article.edit": "all"})
READER = Actor(kind="staff", id=None, name="reader", grants={"service.article.view": "all"})


async def article(title: str, **values) -> dict:
    values.setdefault("published", True)
    return await kb.create_article(STAFF, {"title": title, **values})


async def test_articles_are_validated_slugged_and_audited(service_client):
    category = await kb.create_category(STAFF, {"name": "Printers"})
    first = await article("Printer shows error E42", category=category["id"],
                          audience="public", kind="howto", keywords="paper jam; E42, E42")
    assert first["slug"] == "printer-shows-error-e42"
    assert first["keywords"] == "paper jam, E42"
    second = await article("Printer shows error E42!")
    assert second["slug"] == "printer-shows-error-e42-2"
    for values, field in [({"title": ""}, "title"), ({"title": "x", "audience": "everyone"},
                          "audience"), ({"title": "x", "kind": "poem"}, "kind"),
                          ({"title": "x", "category": 999999}, "category"),
                          ({"title": "x", "slug": first["slug"]}, "slug")]:
        with pytest.raises(kb.ArticleError) as caught:
            await kb.create_article(STAFF, values)
        assert caught.value.field == field
    with pytest.raises(kb.ArticleError) as caught:
        await kb.create_category(STAFF, {"name": "Printers"})
    assert caught.value.field == "name"
    updated = await kb.update_article(STAFF, first["id"], {"title": "Error E42 on printers"})
    assert updated["slug"] == first["slug"]  # links already sent to customers keep working
    await kb.unpublish(STAFF, first["id"])
    actions = [r["action"] for r in await AuditEntry.select(AuditEntry.action).where(
        (AuditEntry.record_type == "service_kb_article")
        & (AuditEntry.record_id == str(first["id"]))).order_by(AuditEntry.id).run()]
    assert actions == ["create", "update", "update"]


async def test_internal_and_draft_articles_never_reach_customers(service_client):
    public = await article("Resetting the router", audience="public", body="Hold reset 10 s.")
    internal = await article("Router reset: agent checklist", audience="internal",
                             body="Check the router firmware before a reset.")
    draft = await article("Router reset draft", audience="public", published=False)
    staff_titles = {r.title for r in await kb.search_articles(None, STAFF, "router reset", 10)}
    assert staff_titles == {public["title"], internal["title"], draft["title"]}
    reader_titles = {r.title for r in await kb.search_articles(None, READER, "router", 10)}
    assert reader_titles == {public["title"], internal["title"]}  # drafts: editors only
    customer = Actor(kind="portal", id=1, customer_id=1,
                     grants={"service.portal.view": "customer"})
    assert await kb.search_articles(None, customer, "router", 10) == []
    page = await service_client.get("/search", params={"q": "router reset"})
    assert page.status_code == 200 and "Router reset: agent checklist" in page.text
    public_titles = {r.article["title"] for r in await kb.search(customer, "router")}
    assert public_titles == {public["title"]}
    suggested = await kb.suggest("my router needs a reset", audience="public")
    assert [s["id"] for s in suggested] == [public["id"]]
    assert await kb.public_article(internal["slug"]) is None
    assert await kb.public_article(draft["slug"]) is None


async def test_suggestions_rank_by_overlap_with_the_text(service_client):
    jam = await article("Paper jam in the printer tray", audience="public",
                        keywords="jam, paper, tray", body="Open the tray and remove the paper.")
    toner = await article("Replacing the printer toner", audience="public", keywords="toner",
                          body="Printers show a toner warning when it is low.")
    await article("Holiday opening hours", audience="public", body="We close on 25 December.")
    found = await kb.suggest("The printer keeps jamming: paper stuck in the tray",
                             audience="public")
    assert [f["id"] for f in found][:2] == [jam["id"], toner["id"]]
    assert await kb.suggest("hello thanks", audience="public") == []


async def test_feedback_counts_once_per_person_and_deflections_add_up(service_client):
    a = await article("Change your password", audience="public")
    ada, bob = await new_customer("Ada"), await new_customer("Bob")
    await kb.feedback(a["id"], True, customer_id=ada)
    await kb.feedback(a["id"], True, customer_id=ada)  # the same answer again: no double count
    counts = await kb.feedback(a["id"], False, customer_id=bob)
    assert (counts["helpful_yes"], counts["helpful_no"]) == (1, 1)
    counts = await kb.feedback(a["id"], True, customer_id=bob)  # Bob changes his mind
    assert (counts["helpful_yes"], counts["helpful_no"]) == (2, 0)
    await kb.deflect(a["id"], customer_id=ada, text="how do I change my password")
    await kb.deflect(a["id"], customer_id=ada, text="password again")
    row = await Article.select().where(Article.id == a["id"]).first().run()
    assert (row["helpful_yes"], row["helpful_no"]) == (4, 0)
    assert (await kb.helpfulness([a["id"]]))[a["id"]]["deflections"] == 2
    assert await ArticleFeedback.count().where(ArticleFeedback.article == a["id"]).run() == 4
    internal = await article("Agent only", audience="internal")
    with pytest.raises(kb.ArticleError):
        await kb.deflect(internal["id"], customer_id=ada)


async def test_staff_pages_write_publish_and_filter(service_client):
    client = service_client
    response = await post_form(client, "/service/kb/categories", {"name": "Billing"})
    assert response.status_code == 303
    response = await post_form(client, "/service/kb/categories", {"name": "Billing"})
    assert response.status_code == 400 and "already has this name" in response.text
    from plugins.service.tables import ArticleCategory

    billing = await ArticleCategory.select().where(ArticleCategory.name == "Billing").first().run()
    response = await post_form(client, "/service/kb", {"title": "", "body": "x"})
    assert response.status_code == 400 and "Give the article a title" in response.text
    response = await post_form(client, "/service/kb", {
        "title": "Reading your invoice", "category": str(billing["id"]), "audience": "public",
        "kind": "faq", "body": "Line one.\n\nLine two <b>bold</b>"})
    assert response.status_code == 303
    article_id = int(response.headers["location"].rsplit("/", 1)[1])
    page = await client.get(f"/service/kb/{article_id}")
    assert "Draft" in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text
    drafts = await client.get("/service/kb?audience=public&status=draft")
    assert "Reading your invoice" in drafts.text
    assert (await post_form(client, f"/service/kb/{article_id}/publish", {})).status_code == 303
    await post_form(client, "/service/kb", {"title": "Other article", "audience": "internal",
                                            "kind": "technical", "published": "1"})
    listing = await client.get(f"/service/kb?category={billing['id']}")
    assert "Reading your invoice" in listing.text and "Other article" not in listing.text
    found = await client.get("/service/kb?q=invoice")
    assert "Reading your invoice" in found.text and "Other article" not in found.text
    await post_form(client, f"/service/kb/{article_id}/feedback", {"helpful": "yes"})
    await kb.feedback(article_id, False, customer_id=await new_customer("Critic"),
                      comment="Which line is the VAT?")
    page = await client.get(f"/service/kb/{article_id}")
    assert "1 said yes, 1 said no" in page.text and "Which line is the VAT?" in page.text
    worst = await client.get("/service/kb?sort=unhelpful")
    assert "Reading your invoice" in worst.text and "Other article" not in worst.text
    edited = await post_form(client, f"/service/kb/{article_id}", {
        "title": "Reading your invoice", "audience": "public", "kind": "poem"})
    assert edited.status_code == 400 and "Choose FAQ" in edited.text
    # A reader may read but not write.
    await make_user("reader@example.test", roles=["read_only"])
    await sign_in(client, "reader@example.test")
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]
    assert (await client.get(f"/service/kb/{article_id}")).status_code == 200
    assert (await client.get("/service/kb/new")).status_code == 403
    refused = await post_form(client, f"/service/kb/{article_id}/unpublish", {})
    assert refused.status_code == 403


async def test_simultaneous_answers_all_count(service_client):
    """Counters move in SQL (n = n + 1), so answers given at the same moment are not lost."""
    import asyncio

    if Article._meta.db.engine_type == "sqlite":
        pytest.skip("SQLite runs one writer at a time: simultaneous writes are PostgreSQL's")
    a = await article("Warranty terms", audience="public")
    customers = [await new_customer(f"Reader {n}") for n in range(8)]
    await asyncio.gather(*(kb.feedback(a["id"], n % 2 == 0, customer_id=c)
                           for n, c in enumerate(customers)))
    row = await Article.select().where(Article.id == a["id"]).first().run()
    assert (row["helpful_yes"], row["helpful_no"]) == (4, 4)
