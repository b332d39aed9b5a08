"""The knowledge base REST API: write, publish and read articles, search and keyset pages,
feedback, categories; drafts hidden from readers, permissions, errors as problem+json naming
the field, and the paths in the OpenAPI document."""

from __future__ import annotations

from tests.conftest import app_client, make_user, sign_in

ARTICLES = "/api/v1/service/articles"
CATEGORIES = "/api/v1/service/article-categories"


def assert_problem(response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


async def login(client, email: str, roles) -> None:
    await make_user(email, roles=roles)
    await sign_in(client, email)
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]


async def test_editor_writes_publishes_and_readers_find_the_article(service_client):
    from core.audit import AuditEntry

    category = await service_client.post(CATEGORIES, json={"name": "Billing", "position": 5})
    assert category.status_code == 201, category.text
    category_id = category.json()["id"]
    listed = (await service_client.get(CATEGORIES)).json()["data"]
    assert [c["name"] for c in listed] == ["Billing"]

    created = await service_client.post(ARTICLES, json={
        "title": "Reading your invoice", "body": "The VAT line is at the bottom.",
        "keywords": "invoice, VAT", "audience": "public", "kind": "howto",
        "category": category_id})
    assert created.status_code == 201, created.text
    article = created.json()
    assert article["published"] is False and article["slug"] == "reading-your-invoice"
    assert created.headers["location"] == article["url"]
    assert await AuditEntry.exists().where(
        (AuditEntry.record_type == "service_kb_article")
        & (AuditEntry.record_id == str(article["id"]))).run()

    published = await service_client.patch(article["url"], json={"published": True})
    assert published.status_code == 200 and published.json()["published"] is True
    edited = await service_client.patch(article["url"], json={"title": "Your invoice explained"})
    assert edited.json()["title"] == "Your invoice explained"
    assert edited.json()["body"] == "The VAT line is at the bottom."  # kept

    found = (await service_client.get(f"{ARTICLES}?q=invoice")).json()
    assert [a["title"] for a in found["data"]] == ["Your invoice explained"]
    assert found["data"][0]["snippet"].startswith("The VAT line")
    assert (await service_client.get(f"{ARTICLES}?category={category_id}&kind=faq")
            ).json()["data"] == []

    feedback = await service_client.post(f"{article['url']}/feedback", json={"helpful": False})
    assert feedback.status_code == 200 and feedback.json()["helpful_no"] == 1
    # Answering again changes the answer rather than counting twice.
    again = (await service_client.post(f"{article['url']}/feedback",
                                       json={"helpful": True, "comment": "Clear"})).json()
    assert (again["helpful_yes"], again["helpful_no"]) == (1, 0)

    unpublished = await service_client.patch(article["url"], json={"published": False})
    assert unpublished.json()["published"] is False


async def test_keyset_pages_cover_every_article_once(service_client):
    from plugins.service import kb

    titles = {f"Article {n}" for n in range(5)}
    for title in sorted(titles):
        await kb.create_article(None, {"title": title, "published": True})
    seen, url = [], f"{ARTICLES}?limit=2"
    while url:
        page = (await service_client.get(url)).json()
        assert len(page["data"]) <= 2
        seen += [a["title"] for a in page["data"]]
        url = f"{ARTICLES}?limit=2&after={page['next']}" if page["next"] else ""
    assert sorted(seen) == sorted(titles) and len(seen) == 5
    assert seen[0] == "Article 4"  # newest first


async def test_drafts_are_hidden_from_readers_who_may_not_edit(service_rapport):
    from plugins.service import kb

    async with app_client(service_rapport) as reader:
        draft = await kb.create_article(None, {"title": "Unfinished warranty terms",
                                               "audience": "internal"})
        live = await kb.create_article(None, {"title": "Warranty terms", "published": True})
        await login(reader, "reader@example.test", ["read_only"])
        titles = [a["title"] for a in (await reader.get(ARTICLES)).json()["data"]]
        assert titles == ["Warranty terms"]
        searched = (await reader.get(f"{ARTICLES}?q=warranty")).json()["data"]
        assert [a["title"] for a in searched] == ["Warranty terms"]
        assert (await reader.get(f"{ARTICLES}?status=draft")).json()["data"] == []
        hidden = await reader.get(f"{ARTICLES}/{draft['id']}")
        assert hidden.status_code == 404
        assert hidden.headers["content-type"].startswith("application/problem+json")
        assert (await reader.get(f"{ARTICLES}/{live['id']}")).json()["title"] == \
            "Warranty terms"
        assert (await reader.post(f"{ARTICLES}/{draft['id']}/feedback",
                                  json={"helpful": True})).status_code == 404


async def test_permissions_are_checked_on_every_route(service_rapport):
    from core.identity.tables import Role, RolePermission
    from plugins.service import kb

    async with app_client(service_rapport) as reader:
        live = await kb.create_article(None, {"title": "Warranty terms", "published": True})
        url = f"{ARTICLES}/{live['id']}"
        await login(reader, "reader@example.test", ["read_only"])
        # A reader reads and answers "was this helpful?", but writes nothing.
        assert (await reader.post(f"{url}/feedback", json={"helpful": True})
                ).status_code == 200
        for response in (await reader.post(ARTICLES, json={"title": "Mine"}),
                         await reader.patch(url, json={"published": False}),
                         await reader.post(CATEGORIES, json={"name": "Mine"})):
            assert response.status_code == 403, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        assert (await kb.get_article(live["id"]))["published"] is True

        role = await Role.insert(Role(key="clerk", name="Clerk")).returning(Role.id).run()
        await RolePermission.insert(RolePermission(role=role[0]["id"],
                                                   permission="core.customer.view",
                                                   scope="all")).run()
        # A role without service.article.view is refused even the reading.
        await login(reader, "clerk@example.test", ["clerk"])
        for path in (ARTICLES, url, CATEGORIES):
            assert (await reader.get(path)).status_code == 403


async def test_errors_are_problems_naming_the_field(service_client):
    from plugins.service import kb

    existing = await kb.create_article(None, {"title": "Existing", "slug": "taken"})
    url = f"{ARTICLES}/{existing['id']}"
    assert_problem(await service_client.post(ARTICLES, json={"title": ""}), 422, "title")
    assert_problem(await service_client.post(ARTICLES, json={"title": "x", "kind": "poem"}),
                   422, "kind")
    assert_problem(await service_client.post(ARTICLES, json={"title": "x",
                                                             "audience": "everyone"}),
                   422, "audience")
    assert_problem(await service_client.post(ARTICLES, json={"title": "x", "category": 999}),
                   422, "category")
    assert_problem(await service_client.post(ARTICLES, json={"title": "x", "slug": "taken"}),
                   422, "slug")
    assert_problem(await service_client.post(ARTICLES, json={"title": "x", "colour": "red"}),
                   422, "colour")
    assert_problem(await service_client.post(ARTICLES, json={"title": "x",
                                                             "published": "false"}),
                   422, "published")
    assert_problem(await service_client.patch(url, json={"title": "x" * 301}), 422, "title")
    assert_problem(await service_client.post(f"{url}/feedback", json={"helpful": "yes"}), 422,
                   "helpful")
    assert_problem(await service_client.get(f"{ARTICLES}?kind=poem"), 422, "kind")
    assert_problem(await service_client.get(f"{ARTICLES}?after=nonsense"), 422, "after")
    assert_problem(await service_client.get(f"{ARTICLES}?limit=1000"), 400, "limit")
    await service_client.post(CATEGORIES, json={"name": "Billing"})
    assert_problem(await service_client.post(CATEGORIES, json={"name": "Billing"}), 422, "name")
    assert_problem(await service_client.post(CATEGORIES, json={"name": "X", "position": "top"}),
                   422, "position")
    missing = await service_client.patch(f"{ARTICLES}/999999", json={"title": "x"})
    assert missing.status_code == 404
    # Nothing was written by the refused requests.
    assert (await kb.get_article(existing["id"]))["title"] == "Existing"
    titles = [a["title"] for a in (await service_client.get(ARTICLES)).json()["data"]]
    assert titles == ["Existing"]


async def test_paths_are_in_the_openapi_document(service_client):
    schema = (await service_client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths[ARTICLES])
    assert {"get", "patch"} <= set(paths[f"{ARTICLES}/{{article_id}}"])
    assert "post" in paths[f"{ARTICLES}/{{article_id}}/feedback"]
    assert {"get", "post"} <= set(paths[CATEGORIES])
    assert paths[ARTICLES]["get"]["summary"] == "List or search articles"
