"""REST API for the knowledge base under ``/api/v1/service/articles`` and
``/api/v1/service/article-categories``.

Same conventions as the cases API (:mod:`plugins.service.api`): errors are
``application/problem+json`` naming the offending field, lists page by keyset (``?after=``
from the previous page's ``next``, ``?limit=`` up to 200), an article the caller may not read
answers 404 like one that does not exist. Who reads what is :func:`kb.visibility`, the rule
the pages use: drafts only for editors (``service.article.edit``). Every write goes through
:mod:`plugins.service.kb`, so validation and auditing are the pages' own.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from core.api_schemas import accepts
from core.audit import client_ip
from core.permissions import current_actor
from plugins.service import api_bodies as bodies
from plugins.service import kb
from plugins.service.api import API, MAX_LIMIT, problem
from plugins.service.cases import cursor_id
from plugins.service.tables import Article

VIEW = {"permission": "service.article.view"}
EDIT = {"permission": "service.article.edit"}
ARTICLE_FIELDS = ("title", "body", "keywords", "product", "audience", "kind", "category",
                  "slug", "published")
SUMMARY_FIELDS = ("id", "title", "slug", "audience", "kind", "product", "category",
                  "published", "helpful_yes", "helpful_no", "updated_at")
DETAIL_FIELDS = SUMMARY_FIELDS + ("body", "keywords", "author", "created_at")


class ArticleNotFound(LookupError):
    pass


def article_error(request: Request, exc: kb.ArticleError) -> Response:
    return problem(422, "Invalid article", f"{exc.field}: {exc.message}", field=exc.field)


def article_not_found(request: Request, exc: ArticleNotFound) -> Response:
    return problem(404, "Not found", str(exc) or "No such article")


KB_API: dict[str, Any] = {
    **API,
    "exception_handlers": {**API["exception_handlers"], kb.ArticleError: article_error,
                           ArticleNotFound: article_not_found},
}


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in SUMMARY_FIELDS}
    out["url"] = f"/api/v1/service/articles/{row['id']}"
    return out


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in DETAIL_FIELDS}
    out["url"] = f"/api/v1/service/articles/{row['id']}"
    return out


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise kb.ArticleError("body", "must be a JSON object")
    return data


def _article_body(data: Any) -> dict[str, Any]:
    """The JSON body checked for what kb.py cannot tell from text: unknown keys, and types
    (``"published": "false"`` would otherwise be truthy)."""
    data = _object(data)
    unknown = sorted(set(data) - set(ARTICLE_FIELDS))
    if unknown:
        raise kb.ArticleError(unknown[0], "is not a field of an article")
    if "published" in data and not isinstance(data["published"], bool):
        raise kb.ArticleError("published", "must be true or false")
    category = data.get("category")
    if category is not None and (not isinstance(category, int) or isinstance(category, bool)):
        raise kb.ArticleError("category", "must be a category id or null")
    for name in ("title", "body", "keywords", "product", "audience", "kind", "slug"):
        if name in data and data[name] is not None and not isinstance(data[name], str):
            raise kb.ArticleError(name, "must be text")
    return data


async def _readable(request: Request, article_id: int) -> dict[str, Any]:
    row = await kb.get_article(article_id, current_actor(request))
    if row is None:
        raise ArticleNotFound("No such article")
    return row


@get("/api/v1/service/articles", opt=VIEW, **KB_API, summary="List or search articles")
async def api_articles(
    request: Request,
    q: Annotated[str, Parameter(description="Words to search for; the answer is ranked, best "
                                            "first, one page")] = "",
    category: Annotated[int | None, Parameter(description="Category id")] = None,
    audience: Annotated[str | None, Parameter(description=f"One of {kb.AUDIENCES}")] = None,
    kind: Annotated[str | None, Parameter(description=f"One of {kb.KINDS}")] = None,
    status: Annotated[str | None, Parameter(
        description="published or draft (drafts: editors only)")] = None,
    after: Annotated[str | None, Parameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """Articles the caller may read (drafts only for editors), newest first without ``q``;
    follow ``next`` (a cursor for ``after``) until it is ``null``. With ``q`` the best matches
    come first, each with ``score`` and ``snippet``, and ``next`` is ``null``. The body is left
    out: get the article for it."""
    for name, value, allowed in (("audience", audience, kb.AUDIENCES), ("kind", kind, kb.KINDS),
                                 ("status", status, ("published", "draft"))):
        if value and value not in allowed:
            raise kb.ArticleError(name, f"must be one of {', '.join(allowed)}")
    actor = current_actor(request)
    if q.strip():
        if after:
            raise kb.ArticleError("after", "a search is one ranked page: no cursor")
        where = kb.visibility(actor)
        if category is not None:
            where = where & (Article.category == category)
        if kind:
            where = where & (Article.kind == kind)
        if audience:
            where = where & (Article.audience == audience)
        if status:
            where = where & (Article.published == (status == "published"))
        found = await kb.rank(q, where, limit, phrase=True)
        return {"data": [{**_summary(r.article), "score": r.score,
                          "snippet": kb.snippet(r.article["body"])} for r in found],
                "next": None}
    cursor = cursor_id(after)
    if after and cursor is None:
        raise kb.ArticleError("after", "is not a cursor from this list")
    rows = await kb.list_articles(actor, audience=audience, category=category, kind=kind or "",
                                  status=status or "", after=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [_summary(r) for r in rows], "next": str(rows[-1]["id"]) if more else None}


@get("/api/v1/service/articles/{article_id:int}", opt=VIEW, **KB_API, summary="Get an article")
async def api_article(request: Request, article_id: FromPath[int]) -> dict[str, Any]:
    """The article with its body; a draft answers 404 to readers who may not edit."""
    return _detail(await _readable(request, article_id))


@accepts(bodies.ARTICLE)
@post("/api/v1/service/articles", opt=EDIT, **KB_API, summary="Write an article")
async def api_article_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Body: ``title`` (required), ``body``, ``keywords``, ``product``, ``audience``
    (internal or public), ``kind`` (faq, howto, manual, technical), ``category`` (id or
    null), ``slug`` (made from the title when left out), ``published`` (default false: a
    draft)."""
    data = _article_body(data)
    row = await kb.create_article(current_actor(request), data, ip=client_ip(request))
    return Response(_detail(row), status_code=201,
                    headers={"location": f"/api/v1/service/articles/{row['id']}"})


@accepts(bodies.ARTICLE_CHANGE)
@patch("/api/v1/service/articles/{article_id:int}", opt=EDIT, **KB_API,
       summary="Change, publish or unpublish an article")
async def api_article_update(request: Request, article_id: FromPath[int],
                             data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Any of the fields of a new article; a missing key keeps its value. ``published``
    true publishes, false takes the article back to a draft."""
    data = _article_body(data)
    await _readable(request, article_id)
    actor, ip = current_actor(request), client_ip(request)
    if set(data) == {"published"}:
        # Audited as "published"/"unpublished", like the pages' buttons.
        await kb.set_published(actor, article_id, data["published"], ip=ip)
    else:
        # One transaction for the fields and the publication state together.
        await kb.update_article(actor, article_id, data, ip=ip)
    return _detail(await _readable(request, article_id))


@accepts(bodies.FEEDBACK)
@post("/api/v1/service/articles/{article_id:int}/feedback", opt=VIEW, **KB_API,
      summary="Say whether an article helped", status_code=200)
async def api_article_feedback(request: Request, article_id: FromPath[int],
                               data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Body: ``helpful`` (true or false), optional ``comment``. One answer per user and
    article: answering again changes it. Returns the article's counters."""
    data = _object(data)
    unknown = sorted(set(data) - {"helpful", "comment"})
    if unknown:
        raise kb.ArticleError(unknown[0], "is not a field of feedback")
    if not isinstance(data.get("helpful"), bool):
        raise kb.ArticleError("helpful", "must be true or false")
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise kb.ArticleError("comment", "must be text")
    await _readable(request, article_id)
    counters = await kb.feedback(article_id, data["helpful"], user_id=current_actor(request).id,
                                 comment=comment)
    return {"id": article_id, "helpful_yes": counters["helpful_yes"],
            "helpful_no": counters["helpful_no"]}


def _category(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "slug": row["slug"],
            "position": row["position"]}


@get("/api/v1/service/article-categories", opt=VIEW, **KB_API,
     summary="List article categories")
async def api_categories(request: Request) -> dict[str, Any]:
    """All categories in their display order (a bounded list: at most 500)."""
    return {"data": [_category(c) for c in await kb.categories()], "next": None}


@accepts(bodies.CATEGORY)
@post("/api/v1/service/article-categories", opt=EDIT, **KB_API,
      summary="Create an article category")
async def api_category_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Body: ``name`` (required, unique), ``slug`` (made from the name when left out),
    ``position`` (a whole number; lower comes first, default 100)."""
    data = _object(data)
    unknown = sorted(set(data) - {"name", "slug", "position"})
    if unknown:
        raise kb.ArticleError(unknown[0], "is not a field of a category")
    position = data.get("position")
    if position is not None and (not isinstance(position, int) or isinstance(position, bool)):
        raise kb.ArticleError("position", "must be a whole number")
    for name in ("name", "slug"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise kb.ArticleError(name, "must be text")
    row = await kb.create_category(current_actor(request), data, ip=client_ip(request))
    return Response(_category(row), status_code=201)


ROUTES: list = [api_articles, api_article, api_article_create, api_article_update,
                api_article_feedback, api_categories, api_category_create]
