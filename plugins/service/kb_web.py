"""Staff pages of the knowledge base: list, search, read, write, publish, categories, and the
suggestions fragment an agent sees while answering a case.

Reading needs ``service.article.view``; writing, publishing and categories need
``service.article.edit``. Drafts are visible to editors only (see :func:`kb.visibility`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.identity.tables import User
from core.permissions import current_actor, scoped
from plugins.service import kb
from plugins.service.tables import Article, ArticleCategory, ArticleFeedback, Case

VIEW = {"permission": "service.article.view"}
EDIT = {"permission": "service.article.edit"}
PAGE = 50
FIELDS = ("title", "slug", "category", "audience", "kind", "product", "keywords", "body")



async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _int(value: str | None) -> int | None:
    """An id from a query value; None when absent, not a number or beyond a 64-bit column."""
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or abs(number) < 2 ** 63 else None


async def _visible(request: Request, article_id: int) -> dict[str, Any]:
    row = await kb.get_article(article_id, current_actor(request))
    if row is None:
        raise NotFoundException("not found")
    return row


def _common() -> dict[str, Any]:
    return {"audiences": kb.AUDIENCES, "kinds": kb.KINDS, "kind_labels": kb.KIND_LABELS}


@get("/service/kb", opt=VIEW, name="service-kb")
async def kb_list(request: Request, q: FromQuery[str] = "", category: FromQuery[str] = "",
                  kind: FromQuery[str] = "", audience: FromQuery[str] = "",
                  status: FromQuery[str] = "", after: FromQuery[str] = "",
                  sort: FromQuery[str] = "") -> Template:
    actor = current_actor(request)
    categories = await kb.categories()
    category_id = _int(category)
    kind = kind if kind in kb.KINDS else ""
    audience = audience if audience in kb.AUDIENCES else ""
    status = status if status in ("published", "draft") and actor.can(
        "service.article.edit") else ""
    next_after = None
    if q.strip():
        # A search is ranked, not paged: the best PAGE answers are what anyone reads.
        where = kb.visibility(actor)
        if category_id is not None:
            where = where & (Article.category == category_id)
        if kind:
            where = where & (Article.kind == kind)
        if audience:
            where = where & (Article.audience == audience)
        if status:
            where = where & (Article.published == (status == "published"))
        rows = [r.article for r in await kb.rank(q, where, PAGE, phrase=True)]
    else:
        sort = sort if sort == "unhelpful" else ""
        rows = await kb.list_articles(actor, category=category_id, kind=kind,
                                      audience=audience or None, status=status,
                                      after=_int(after), limit=PAGE + 1,
                                      unhelpful_first=sort == "unhelpful")
        if sort:
            rows = rows[:PAGE]
        elif len(rows) > PAGE:
            rows = rows[:PAGE]
            next_after = rows[-1]["id"]
    stats = await kb.helpfulness([r["id"] for r in rows])
    return Template("service/kb/list.html", context={
        **_common(), "articles": rows, "categories": categories,
        "category_names": {c["id"]: c["name"] for c in categories}, "stats": stats,
        "q": q, "category": category_id, "kind": kind, "audience": audience, "status": status,
        "next_after": next_after, "can_edit": actor.can("service.article.edit"),
        "sort": sort if not q.strip() else "",
    })


async def _form_page(request: Request, article: dict[str, Any] | None, values: dict[str, Any],
                     errors: dict[str, str], status_code: int = 200) -> Template:
    return Template("service/kb/form.html", context={
        **_common(), "article": article, "values": values, "errors": errors,
        "categories": await kb.categories()}, status_code=status_code)


@get("/service/kb/new", opt=EDIT)
async def kb_new(request: Request, category: FromQuery[str] = "") -> Template:
    return await _form_page(request, None, {"audience": "internal", "kind": "faq",
                                            "category": _int(category)}, {})


@post("/service/kb", opt=EDIT, status_code=303)
async def kb_create(request: Request) -> Response:
    data = await form_data(request)
    values: dict[str, Any] = {f: data.get(f, "") for f in FIELDS}
    values["published"] = data.get("published") == "1"
    try:
        row = await kb.create_article(current_actor(request), values, ip=client_ip(request))
    except kb.ArticleError as exc:
        return await _form_page(request, None, values, {exc.field: exc.message}, 400)
    return Redirect(f"/service/kb/{row['id']}", status_code=303)


@get("/service/kb/{article_id:int}", opt=VIEW)
async def kb_show(request: Request, article_id: FromPath[int]) -> Template:
    actor = current_actor(request)
    article = await _visible(request, article_id)
    category = None
    if article["category"] is not None:
        category = await ArticleCategory.select().where(
            ArticleCategory.id == article["category"]).first().run()
    author = None
    if article["author"] is not None:
        author = await User.select(User.id, User.name).where(
            User.id == article["author"]).first().run()
    mine = None
    if actor.id is not None:
        mine = await ArticleFeedback.select(ArticleFeedback.helpful).where(
            (ArticleFeedback.article == article_id) & (ArticleFeedback.user == actor.id)
            & (ArticleFeedback.deflected == False)).first().run()  # noqa: E712
    return Template("service/kb/show.html", context={
        **_common(), "article": article, "category": category, "author": author,
        "paragraphs": [p for p in article["body"].split("\n\n") if p.strip()],
        "stats": (await kb.helpfulness([article_id])).get(article_id, {"deflections": 0}),
        "mine": mine, "can_edit": actor.can("service.article.edit"),
        "comments": await kb.recent_comments(article_id),
        "flash": request.query_params.get("flash", ""),
    })


@get("/service/kb/{article_id:int}/edit", opt=EDIT)
async def kb_edit(request: Request, article_id: FromPath[int]) -> Template:
    article = await _visible(request, article_id)
    return await _form_page(request, article, dict(article), {})


@post("/service/kb/{article_id:int}", opt=EDIT, status_code=303)
async def kb_update(request: Request, article_id: FromPath[int]) -> Response:
    article = await _visible(request, article_id)
    data = await form_data(request)
    values: dict[str, Any] = {f: data.get(f, "") for f in FIELDS}
    values["slug"] = values["slug"] or article["slug"]
    try:
        await kb.update_article(current_actor(request), article_id, values,
                                ip=client_ip(request))
    except kb.ArticleError as exc:
        return await _form_page(request, article, {**article, **values},
                                {exc.field: exc.message}, 400)
    return Redirect(f"/service/kb/{article_id}?flash=saved", status_code=303)


@post("/service/kb/{article_id:int}/publish", opt=EDIT, status_code=303)
async def kb_publish(request: Request, article_id: FromPath[int]) -> Response:
    await _visible(request, article_id)
    await kb.publish(current_actor(request), article_id, ip=client_ip(request))
    return Redirect(f"/service/kb/{article_id}?flash=published", status_code=303)


@post("/service/kb/{article_id:int}/unpublish", opt=EDIT, status_code=303)
async def kb_unpublish(request: Request, article_id: FromPath[int]) -> Response:
    await _visible(request, article_id)
    await kb.unpublish(current_actor(request), article_id, ip=client_ip(request))
    return Redirect(f"/service/kb/{article_id}?flash=unpublished", status_code=303)


@post("/service/kb/{article_id:int}/feedback", opt=VIEW, status_code=303)
async def kb_feedback(request: Request, article_id: FromPath[int]) -> Response:
    """An agent says whether the article helped (one answer per agent, changeable)."""
    await _visible(request, article_id)
    data = await form_data(request)
    if data.get("helpful") not in ("yes", "no"):
        raise NotFoundException("not found")
    await kb.feedback(article_id, data["helpful"] == "yes", user_id=current_actor(request).id)
    return Redirect(f"/service/kb/{article_id}?flash=thanks", status_code=303)


# --- categories ------------------------------------------------------------------------------


async def _categories_page(errors: dict[str, str] | None = None,
                           values: dict[str, str] | None = None, editing: int | None = None,
                           status_code: int = 200, flash: str = "") -> Template:
    rows = await kb.categories()
    counts = {r["category"]: r["n"] for r in await Article.raw(
        "SELECT category, COUNT(*) AS n FROM service_kb_article WHERE category IS NOT NULL "
        "GROUP BY category").run()}
    return Template("service/kb/categories.html", context={
        "categories": rows, "counts": counts, "errors": errors or {}, "values": values or {},
        "editing": editing, "flash": flash}, status_code=status_code)


@get("/service/kb/categories", opt=EDIT)
async def kb_categories(request: Request) -> Template:
    return await _categories_page(flash=request.query_params.get("flash", ""))


@post("/service/kb/categories", opt=EDIT, status_code=303)
async def kb_category_create(request: Request) -> Response:
    data = await form_data(request)
    try:
        await kb.create_category(current_actor(request), data, ip=client_ip(request))
    except kb.ArticleError as exc:
        return await _categories_page({exc.field: exc.message}, data, status_code=400)
    return Redirect("/service/kb/categories?flash=saved", status_code=303)


@post("/service/kb/categories/{category_id:int}", opt=EDIT, status_code=303)
async def kb_category_update(request: Request, category_id: FromPath[int]) -> Response:
    data = await form_data(request)
    try:
        await kb.update_category(current_actor(request), category_id, data,
                                 ip=client_ip(request))
    except kb.ArticleError as exc:
        if exc.field == "category":
            raise NotFoundException("not found") from None
        return await _categories_page({exc.field: exc.message}, data, editing=category_id,
                                      status_code=400)
    return Redirect("/service/kb/categories?flash=saved", status_code=303)


@post("/service/kb/categories/{category_id:int}/delete", opt=EDIT, status_code=303)
async def kb_category_delete(request: Request, category_id: FromPath[int]) -> Response:
    if not await ArticleCategory.exists().where(ArticleCategory.id == category_id).run():
        raise NotFoundException("not found")
    await kb.delete_category(current_actor(request), category_id, ip=client_ip(request))
    return Redirect("/service/kb/categories?flash=deleted", status_code=303)


# --- suggestions for an agent answering a case ------------------------------------------------


@get("/service/kb/suggest", opt=VIEW, include_in_schema=False)
async def kb_suggest(request: Request, case: FromQuery[int | None] = None,
                     q: FromQuery[str] = "") -> Template:
    """htmx fragment: articles relevant to the case (subject, description, product) or to
    ``q``. The case must be one the agent may see (404 otherwise)."""
    actor = current_actor(request)
    text, product = q, ""
    if case is not None:
        if not actor.can("service.case.view"):
            raise NotFoundException("not found")
        row = await scoped(Case.select(Case.id, Case.subject, Case.description,
                                       Case.product).where(Case.id == case),
                           request.app.state.rapport, actor, "service.case.view",
                           Case).first().run()
        if row is None:
            raise NotFoundException("not found")
        text = text or f"{row['subject']} {row['description'][:2000]}"
        product = row["product"]
    articles = await kb.suggest(text, audience="internal", user=actor, product=product,
                                limit=5) if text.strip() else []
    # The address customers reach (behind a proxy the request's own host may be internal).
    base = request.app.state.rapport.settings.base_url.rstrip("/")
    return Template("service/kb/_suggest.html", context={
        "articles": articles, "case": case, "portal_base": f"{base}/portal/service/help/",
    })


ROUTES = [kb_list, kb_new, kb_create, kb_categories, kb_category_create, kb_category_update,
          kb_category_delete, kb_suggest, kb_show, kb_edit, kb_update, kb_publish, kb_unpublish,
          kb_feedback]
