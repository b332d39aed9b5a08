"""The knowledge base: articles in categories, for agents (internal) or customers (public).

Writes go through :mod:`core.records`, so every article and category change is audited.
Search and suggestions are two bounded passes: a LIKE/ILIKE query over title, keywords and
body fetches at most ``CANDIDATES`` rows, then Python ranks them by where the words matched.
That is cheap on both SQLite and PostgreSQL and needs no full-text index to keep in step.

Who sees what: staff with ``service.article.view`` see internal and public published
articles (editors also see drafts); everyone else (the portal, deflection) only ever sees
public, published ones: :func:`visibility` is the one place that decides it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.columns.combination import Or

from core import records
from core.permissions import Actor
from core.plugin import SearchResult
from plugins.service.tables import Article, ArticleCategory, ArticleFeedback

AUDIENCES = ("internal", "public")
KINDS = ("faq", "howto", "manual", "technical")
KIND_LABELS = {"faq": "Questions and answers", "howto": "How-to guides",
               "manual": "Product manuals", "technical": "Technical information"}
CANDIDATES = 200  # rows fetched before ranking: bounds the cost of any search
MAX_TERMS = 8  # words of a query or request text that are looked up
LIMITS = {"title": 300, "keywords": 500, "product": 300, "body": 100_000}

# Words too common to say anything about what a request is about.
STOPWORDS = frozenset("""
a about after again all also am an and any are as at be because been before being but by can
cannot could did do does doing don dont for from get got had has have having he her here hers
him his how i if in into is it its just me more most my no nor not now of off on once only or
other our out over own please same she should so some such than thank thanks that the their
them then there these they this those through to too under until up very was we were what when
where which while who why will with would you your yours hello hi dear regards still tried try
work working works want need help problem issue
""".split())


class ArticleError(ValueError):
    """A value the knowledge base refuses; ``field`` names the form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --- words and slugs -------------------------------------------------------------------------


def slugify(text: str, max_length: int = 300) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-")


_SUFFIXES = ("ings", "ing", "ers", "er", "ies", "es", "ed", "s")


def stem(word: str) -> str:
    """A crude stem so "printer", "printers" and "printing" meet at "print"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            # "jamming" -> "jamm" -> "jam", "stopped" -> "stopp" -> "stop"
            return word[:-1] if word[-1] == word[-2] and word[-1] not in "lsz" else word
    return word


def words(text: str) -> list[str]:
    """The meaningful stems of ``text``, in order, without repeats."""
    # Product codes and error codes ("DW-300", "E42", "404") are kept whole: they are often
    # the most telling words of a request.
    found = re.findall(r"[^\W_]+(?:-[^\W_]+)*", unicodedata.normalize("NFKC", text).lower())
    stems = (stem(w) if w.isalpha() else w for w in found
             if len(w) >= 3 and w not in STOPWORDS)
    return list(dict.fromkeys(stems))


def _like(term: str) -> str:
    # LIKE wildcards typed by a user match literally nothing special: drop them.
    return "%" + term.replace("%", "").replace("_", "").replace("\\", "") + "%"


# --- visibility ------------------------------------------------------------------------------


def visibility(user: Actor | None, *, audience: str | None = None) -> Any:
    """The where-clause of articles ``user`` may read.

    ``audience="public"`` (portal, deflection, anonymous) or a non-staff actor: public and
    published only. Staff: everything published; editors also their drafts.
    """
    public = (Article.audience == "public") & (Article.published == True)  # noqa: E712
    if audience == "public" or user is None or user.kind != "staff":
        return public
    if not user.can("service.article.view"):
        return public
    if user.can("service.article.edit"):
        return Article.id > 0
    return Article.published == True  # noqa: E712


# --- categories ------------------------------------------------------------------------------


async def categories() -> list[dict[str, Any]]:
    return await ArticleCategory.select().order_by(ArticleCategory.position).order_by(
        ArticleCategory.name).limit(500).run()


async def _category_values(values: dict[str, Any], exclude_id: int | None) -> dict[str, Any]:
    name = str(values.get("name", "")).strip()
    if not name:
        raise ArticleError("name", "Give the category a name.")
    if len(name) > 150:
        raise ArticleError("name", "Keep the name under 150 characters.")
    try:
        position = int(values.get("position") or 100)
    except (TypeError, ValueError):
        raise ArticleError("position", "The position is a whole number, e.g. 10.") from None
    clash = ArticleCategory.select(ArticleCategory.id).where(ArticleCategory.name == name)
    if exclude_id is not None:
        clash = clash.where(ArticleCategory.id != exclude_id)
    if await clash.first().run():
        raise ArticleError("name", "Another category already has this name.")
    slug = slugify(str(values.get("slug") or name), 160) or "category"
    clash = ArticleCategory.select(ArticleCategory.id).where(ArticleCategory.slug == slug)
    if exclude_id is not None:
        clash = clash.where(ArticleCategory.id != exclude_id)
    if await clash.first().run():
        raise ArticleError("slug", "Another category already uses this web address.")
    return {"name": name, "slug": slug, "position": position}


async def create_category(actor: Actor | None, values: dict[str, Any], *, ip: str = ""
                          ) -> dict[str, Any]:
    async with ArticleCategory._meta.db.transaction():
        clean = await _category_values(values, None)
        return await records.create(actor, ArticleCategory, clean, ip=ip)


async def update_category(actor: Actor | None, category_id: int, values: dict[str, Any], *,
                          ip: str = "") -> dict[str, Any]:
    async with ArticleCategory._meta.db.transaction():
        if not await ArticleCategory.exists().where(ArticleCategory.id == category_id).run():
            raise ArticleError("category", "This category no longer exists.")
        clean = await _category_values(values, category_id)
        return await records.update(actor, ArticleCategory, category_id, clean, ip=ip)


async def delete_category(actor: Actor | None, category_id: int, *, ip: str = "") -> None:
    """Delete a category; its articles stay, uncategorised (each change audited)."""
    async with ArticleCategory._meta.db.transaction():
        ids = [r["id"] for r in await Article.select(Article.id).where(
            Article.category == category_id).run()]
        for article_id in ids:
            await records.update(actor, Article, article_id, {"category": None}, ip=ip,
                                 summary="category deleted")
        await records.delete(actor, ArticleCategory, category_id, ip=ip)


# --- articles --------------------------------------------------------------------------------


async def _unique_slug(base: str, exclude_id: int | None) -> str:
    base = base or "article"
    taken_query = Article.select(Article.slug).where(
        (Article.slug == base) | Article.slug.like(f"{base}-%"))
    if exclude_id is not None:
        taken_query = taken_query.where(Article.id != exclude_id)
    taken = {r["slug"] for r in await taken_query.limit(1000).run()}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def _article_values(values: dict[str, Any], exclude_id: int | None,
                          current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate and normalise article fields; missing fields keep ``current``'s values."""
    current = current or {}

    def text(name: str, default: str = "") -> str:
        value = values.get(name, current.get(name, default))
        return str(value if value is not None else "").strip()

    clean: dict[str, Any] = {}
    clean["title"] = text("title")
    if not clean["title"]:
        raise ArticleError("title", "Give the article a title.")
    for name, limit in LIMITS.items():
        if name != "title":
            clean[name] = text(name)
        if len(clean[name]) > limit:
            raise ArticleError(name, f"Keep the {name} under {limit} characters.")
    clean["body"] = clean["body"].replace("\r\n", "\n")
    clean["keywords"] = ", ".join(dict.fromkeys(
        k.strip() for k in re.split(r"[,;\n]", clean["keywords"]) if k.strip()))
    clean["audience"] = text("audience", "internal")
    if clean["audience"] not in AUDIENCES:
        raise ArticleError("audience", "Choose internal (agents only) or public (customers).")
    clean["kind"] = text("kind", "faq")
    if clean["kind"] not in KINDS:
        raise ArticleError("kind", "Choose FAQ, how-to, manual or technical information.")
    category = values.get("category", current.get("category"))
    if category in ("", None):
        clean["category"] = None
    else:
        try:
            category = int(category)
        except (TypeError, ValueError):
            raise ArticleError("category", "Choose a category from the list.") from None
        if not await ArticleCategory.exists().where(ArticleCategory.id == category).run():
            raise ArticleError("category", "Choose a category from the list.")
        clean["category"] = category
    wanted = values.get("slug")
    if wanted not in (None, ""):
        slug = slugify(str(wanted), 320)
        if not slug:
            raise ArticleError("slug", "Use letters or digits in the web address.")
        clash = Article.select(Article.id).where(Article.slug == slug)
        if exclude_id is not None:
            clash = clash.where(Article.id != exclude_id)
        if await clash.first().run():
            raise ArticleError("slug", "Another article already uses this web address.")
        clean["slug"] = slug
    elif not current.get("slug"):
        clean["slug"] = await _unique_slug(slugify(clean["title"], 300), exclude_id)
    if "published" in values:
        clean["published"] = bool(values["published"])
    return clean


async def create_article(actor: Actor | None, values: dict[str, Any], *, ip: str = ""
                         ) -> dict[str, Any]:
    """Create an article (``published`` defaults to False: a draft) and audit it."""
    async with Article._meta.db.transaction():
        clean = await _article_values(values, None)
        clean.setdefault("published", False)
        clean["author"] = actor.id if actor is not None and actor.kind == "staff" else None
        return await records.create(actor, Article, clean, ip=ip)


async def update_article(actor: Actor | None, article_id: int, values: dict[str, Any], *,
                         ip: str = "") -> dict[str, Any]:
    async with Article._meta.db.transaction():
        current = await Article.select().where(Article.id == article_id).first().run()
        if current is None:
            raise ArticleError("article", "This article no longer exists.")
        clean = await _article_values(values, article_id, current)
        changed = {k: v for k, v in clean.items() if current.get(k) != v}
        if not changed:
            return current
        changed["updated_at"] = datetime.now(UTC)
        return await records.update(actor, Article, article_id, changed, ip=ip)


async def set_published(actor: Actor | None, article_id: int, published: bool, *,
                        ip: str = "") -> dict[str, Any]:
    async with Article._meta.db.transaction():
        current = await Article.select(Article.published).where(
            Article.id == article_id).first().run()
        if current is None:
            raise ArticleError("article", "This article no longer exists.")
        if current["published"] == published:
            return await get_article(article_id)
        return await records.update(actor, Article, article_id, {
            "published": published, "updated_at": datetime.now(UTC)}, ip=ip,
            summary="published" if published else "unpublished")


async def publish(actor: Actor | None, article_id: int, *, ip: str = "") -> dict[str, Any]:
    return await set_published(actor, article_id, True, ip=ip)


async def unpublish(actor: Actor | None, article_id: int, *, ip: str = "") -> dict[str, Any]:
    return await set_published(actor, article_id, False, ip=ip)


async def get_article(article_id: int, user: Actor | None = None, *,
                      audience: str | None = None) -> dict[str, Any] | None:
    """The article if ``user`` may read it (no user and no audience: any article)."""
    query = Article.select().where(Article.id == article_id)
    if user is not None or audience is not None:
        query = query.where(visibility(user, audience=audience))
    return await query.first().run()


async def public_article(slug: str) -> dict[str, Any] | None:
    """A public, published article by its web address (for the portal)."""
    return await Article.select().where(
        (Article.slug == slug) & visibility(None, audience="public")).first().run()


async def list_articles(user: Actor | None, *, audience: str | None = None,
                        category: int | None = None, kind: str = "", status: str = "",
                        after: int | None = None, limit: int = 50,
                        unhelpful_first: bool = False) -> list[dict[str, Any]]:
    """A keyset page of articles (newest first) ``user`` may read, optionally of one
    ``audience``; body left out. ``unhelpful_first``: the articles most readers said did not
    help come first (one bounded page, for editors looking for what to improve)."""
    query = Article.select(
        Article.id, Article.title, Article.slug, Article.audience, Article.kind,
        Article.product, Article.category, Article.published, Article.helpful_yes,
        Article.helpful_no, Article.updated_at,
    ).where(visibility(user))
    if audience in AUDIENCES:  # a filter, not a visibility rule: editors still see drafts
        query = query.where(Article.audience == audience)
    if category is not None:
        query = query.where(Article.category == category)
    if kind:
        query = query.where(Article.kind == kind)
    if status == "published":
        query = query.where(Article.published == True)  # noqa: E712
    elif status == "draft":
        query = query.where(Article.published == False)  # noqa: E712
    if unhelpful_first:
        return await query.where(Article.helpful_no > 0).order_by(
            Article.helpful_no, ascending=False).order_by(Article.helpful_yes).order_by(
            Article.id, ascending=False).limit(limit).run()
    if after is not None:
        query = query.where(Article.id < after)
    return await query.order_by(Article.id, ascending=False).limit(limit).run()


# --- search and suggestions -----------------------------------------------------------------


@dataclass
class Ranked:
    article: dict[str, Any]
    score: float


def _score(article: dict[str, Any], terms: list[str], phrase: str = "") -> float:
    title = set(words(article["title"]))
    keywords = set(words(article.get("keywords", "")))
    body = set(words(article.get("body", "")[:20_000]))
    product = set(words(article.get("product", "")))
    score = 0.0
    for term in terms:
        if term in title:
            score += 3
        elif any(term in w for w in title):
            score += 2
        if term in keywords:
            score += 2
        if term in product:
            score += 1.5
        if term in body:
            score += 1
        elif any(term in w for w in body):
            score += 0.5
    if phrase and phrase in article["title"].lower():
        score += 4
    return score


async def _candidates(terms: Iterable[str], where: Any, columns: tuple) -> list[dict[str, Any]]:
    clauses = []
    # SQLite's LIKE already ignores ASCII case (Piccolo warns on every ILIKE there).
    sqlite = Article._meta.db.engine_type == "sqlite"
    for term in terms:
        pattern = _like(term)
        for column in (Article.title, Article.keywords, Article.product, Article.body):
            clauses.append(column.like(pattern) if sqlite else column.ilike(pattern))
    if not clauses:
        return []
    condition = clauses[0]
    for clause in clauses[1:]:
        condition = Or(condition, clause)
    return await Article.select(*columns).where(where).where(condition).order_by(
        Article.id, ascending=False).limit(CANDIDATES).run()


_RANK_COLUMNS = (Article.id, Article.title, Article.slug, Article.keywords, Article.product,
                 Article.body, Article.audience, Article.kind, Article.category,
                 Article.published, Article.helpful_yes, Article.helpful_no)


async def rank(text: str, where: Any, limit: int, *, phrase: bool = False,
               minimum: float = 0.0) -> list[Ranked]:
    terms = words(text)[:MAX_TERMS]
    if not terms:
        return []
    rows = await _candidates(terms, where, _RANK_COLUMNS)
    whole = text.strip().lower() if phrase else ""
    ranked = [Ranked(row, _score(row, terms, whole)) for row in rows]
    # Ties: the article customers found helpful more often, then the newer one.
    ranked = [r for r in ranked if r.score > minimum]
    ranked.sort(key=lambda r: (-r.score, -(r.article["helpful_yes"] - r.article["helpful_no"]),
                               -r.article["id"]))
    return ranked[:limit]


def snippet(body: str, length: int = 160) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= length else flat[: length - 1].rsplit(" ", 1)[0] + "…"


async def search(user: Actor | None, query: str, *, audience: str | None = None,
                 limit: int = 20) -> list[Ranked]:
    """Articles matching ``query`` that ``user`` may read, best first."""
    return await rank(query, visibility(user, audience=audience), limit, phrase=True)


_SEARCH_COLUMNS = ["title", "keywords", "product", "body"]


async def search_articles(rapport, user, query, limit):
    """Global search provider: staff see internal and public articles, never drafts unless
    they may edit; anyone else only public published ones.

    Candidates come from the trigram index of ``core.search.text`` (the service migration
    that creates it) rather than ``LIKE '%term%'`` over every article body, then rank as
    :func:`search` does."""
    if user is None or not user.can("service.article.view") or not str(query).strip():
        return []
    from core.search.text import contains

    text = str(query)
    terms = words(text)[:MAX_TERMS]
    clauses = [c for c in (contains(Article, _SEARCH_COLUMNS, t) for t in terms) if c is not None]
    if not clauses:
        return []
    condition = clauses[0]
    for clause in clauses[1:]:
        condition = condition | clause
    rows = await Article.select(*_RANK_COLUMNS).where(visibility(user)).where(condition).order_by(
        Article.id, ascending=False).limit(CANDIDATES).run()
    whole = text.strip().lower()
    ranked = [Ranked(row, _score(row, terms, whole)) for row in rows]
    ranked.sort(key=lambda r: (-r.score, -(r.article["helpful_yes"] - r.article["helpful_no"]),
                               -r.article["id"]))
    return [SearchResult(
        title=r.article["title"], url=f"/service/kb/{r.article['id']}", kind="service.article",
        snippet=(("Internal · " if r.article["audience"] == "internal" else "")
                 + snippet(r.article["body"])),
        score=r.score) for r in ranked[:limit]]


async def suggest(text: str, *, audience: str = "public", limit: int = 5, user: Actor | None = None,
                  product: str = "") -> list[dict[str, Any]]:
    """Articles that may answer ``text`` (a request being written, a case being answered).

    ``audience="public"``: only public published articles (deflection in the portal);
    ``audience="internal"``: what the staff ``user`` may read, internal ones included.
    Each row gets ``score`` and ``snippet``.
    """
    # Drafts are never suggested, not even to their editors: they may be wrong or unfinished.
    where = visibility(user, audience="public" if audience == "public" else None) & (
        Article.published == True)  # noqa: E712
    found = await rank(f"{text} {product}", where, limit, minimum=1.0)
    return [{**r.article, "score": r.score, "snippet": snippet(r.article["body"])}
            for r in found]


# --- feedback --------------------------------------------------------------------------------


async def feedback(article_id: int, helpful: bool, *, customer_id: int | None = None,
                   user_id: int | None = None, comment: str = "", deflected: bool = False,
                   audience: str | None = None) -> dict[str, Any]:
    """Record "was this helpful?" and bump the article's counter in the same transaction.

    One answer per customer (or staff user) and article: answering again changes it (the
    counters move with it) rather than counting twice. A deflection ("this answered my
    question" while writing a request) always counts as a new helpful answer.
    Returns the article's counters after the change.
    """
    comment = comment.strip()[:2000]
    async with Article._meta.db.transaction():
        where = Article.id == article_id
        if audience == "public":
            where = where & visibility(None, audience="public")
        if not await Article.exists().where(where).run():
            raise ArticleError("article", "This article is not available.")
        previous = None
        if not deflected and (customer_id is not None or user_id is not None):
            who = (ArticleFeedback.customer == customer_id if customer_id is not None
                   else ArticleFeedback.user == user_id)
            previous = await ArticleFeedback.select(
                ArticleFeedback.id, ArticleFeedback.helpful).where(
                (ArticleFeedback.article == article_id) & who
                & (ArticleFeedback.deflected == False)).first().run()  # noqa: E712
        if previous is not None:
            if previous["helpful"] != helpful:
                old = Article.helpful_yes if previous["helpful"] else Article.helpful_no
                await Article.update({old: old - 1}).where(Article.id == article_id).run()
                new = Article.helpful_yes if helpful else Article.helpful_no
                await Article.update({new: new + 1}).where(Article.id == article_id).run()
            await ArticleFeedback.update({
                ArticleFeedback.helpful: helpful, ArticleFeedback.comment: comment,
                ArticleFeedback.created_at: datetime.now(UTC),
            }).where(ArticleFeedback.id == previous["id"]).run()
        else:
            # Atomic in SQL (col = col + 1): two customers answering at once both count.
            counter = Article.helpful_yes if helpful else Article.helpful_no
            await Article.update({counter: counter + 1}).where(Article.id == article_id).run()
            await ArticleFeedback.insert(ArticleFeedback(
                article=article_id, helpful=helpful, comment=comment, customer=customer_id,
                user=user_id, deflected=deflected)).run()
        return await Article.select(Article.id, Article.helpful_yes, Article.helpful_no).where(
            Article.id == article_id).first().run()


async def deflect(article_id: int, *, customer_id: int, text: str = "") -> dict[str, Any]:
    """A portal customer found their answer in a suggested article and did not ask."""
    return await feedback(article_id, True, customer_id=customer_id, comment=text[:2000],
                          deflected=True, audience="public")


async def helpfulness(article_ids: list[int]) -> dict[int, dict[str, int]]:
    """Deflections per article (one grouped query for a whole page of articles)."""
    if not article_ids:
        return {}
    rows = await ArticleFeedback.raw(
        "SELECT article, COUNT(*) AS n FROM service_kb_feedback WHERE deflected = {} AND "
        f"article IN ({', '.join(str(int(i)) for i in article_ids)}) GROUP BY article",
        True).run()
    return {r["article"]: {"deflections": r["n"]} for r in rows}


async def feedback_of(customer_id: int | None, article_id: int) -> dict[str, Any] | None:
    if customer_id is None:
        return None
    return await ArticleFeedback.select(ArticleFeedback.helpful).where(
        (ArticleFeedback.article == article_id) & (ArticleFeedback.customer == customer_id)
        & (ArticleFeedback.deflected == False)).first().run()  # noqa: E712


async def recent_comments(article_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """What readers wrote with their answer, newest first (for the article's editors)."""
    return await ArticleFeedback.select(
        ArticleFeedback.helpful, ArticleFeedback.comment, ArticleFeedback.deflected,
        ArticleFeedback.created_at, ArticleFeedback.customer,
        ArticleFeedback.user.name.as_alias("user_name"),
    ).where((ArticleFeedback.article == article_id) & (ArticleFeedback.comment != "")).order_by(
        ArticleFeedback.id, ascending=False).limit(limit).run()
