"""Core's own search provider: customers by name, email, phone or account name.

Candidates come from the database's trigram index (SQLite FTS5 or PostgreSQL pg_trgm), already
limited by the searcher's row filter, then rapidfuzz re-ranks them in Python. Two passes keep it
fast: an exact substring pass, and only if that finds too little, a typo-tolerant pass (any
trigram of each word). Every query is bounded; nothing counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw
from piccolo.querystring import QueryString
from rapidfuzz import fuzz

from core.customers import finding
from core.customers.service import display_phone
from core.customers.tables import Customer
from core.permissions import Actor, row_filter
from core.plugin import SearchResult
from core.search.fold import fold

if TYPE_CHECKING:
    from core.app import Rapport

MAX_CANDIDATES = 200
# Below this rapidfuzz score a typo-tolerant candidate is noise, not a match.
FUZZY_FLOOR = 70.0
_SPACES = re.compile(r"\s+")
_NON_DIGITS = re.compile(r"\D")
_WORD_BREAK = re.compile(r"[\s@.,\-]+")

CANDIDATE_COLUMNS = (
    "core_customer.id AS id, core_customer.kind AS kind, core_customer.name AS name, "
    "core_customer.primary_email AS primary_email, core_customer.primary_phone AS primary_phone, "
    "core_customer.account AS account_id, core_customer.lifecycle_stage AS lifecycle_stage, "
    "core_search_acct.name AS account_name"
)


@dataclass(frozen=True)
class CustomerHit:
    id: int
    kind: str
    name: str
    email: str
    phone: str
    account_id: int | None
    account_name: str
    lifecycle_stage: str
    score: float
    # False: found through ``core.customer.find`` only (show the minimal view, not the record).
    openable: bool = True
    city: str = ""


def normalise_query(query: str) -> str:
    return _SPACES.sub(" ", query or "").strip()[:200]


def phone_digits(query: str) -> str:
    """Digits a phone query must contain: ``030 1234-56`` finds ``+49301234 56``.

    A leading trunk zero is dropped because stored numbers are E.164 (country code, no zero).
    Returns "" when the query is not phone-like (letters, or fewer than 4 digits).
    """
    if re.search(r"[^\d\s()+\-./]", query):
        return ""
    digits = _NON_DIGITS.sub("", query).lstrip("0")
    return digits if len(digits) >= 4 else ""


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def typo_clause(word: str) -> str | None:
    """An FTS5 expression matching any text that holds ``word`` with at most one typo (a
    letter wrong, missing, extra, or two swapped), built only from pieces of three letters or
    more so that it stays selective; ``None`` when the word is too short for that.

    ``grenir`` gives ``"renir" OR ... OR ("gre" AND "nir") OR ...``: the second finds
    *Grenier* (a missing letter). A bare OR of every trigram (the first version) matched most
    of the table and made bm25 rank it all: 40-80 ms at 100,000 customers, ~10x at 1,000,000.
    """
    n = len(word)
    clauses: list[str] = [_fts_phrase(word)] if n >= 3 else []
    for i in range(n):
        if n - 1 >= 3:
            clauses.append(_fts_phrase(word[:i] + word[i + 1:]))  # extra letter
        if i + 1 < n and n >= 3:
            clauses.append(_fts_phrase(word[:i] + word[i + 1] + word[i] + word[i + 2:]))
        for left, right in ((word[:i], word[i + 1:]), (word[:i], word[i:])):
            # wrong letter at i; letter missing before i
            if len(left) >= 3 and len(right) >= 3:
                clauses.append(f"({_fts_phrase(left)} AND {_fts_phrase(right)})")
        if n <= 5:
            # A short word leaves one side of the typo under three letters, which the trigram
            # index cannot look up: ``hoper`` has ``hop`` + ``er`` around Hopper's missing
            # "p". The longer side alone still finds it (short words are rare and ranked after).
            for left, right in ((word[:i], word[i + 1:]), (word[:i], word[i:])):
                longer, shorter = sorted((left, right), key=len, reverse=True)
                if len(longer) >= 3 and len(shorter) < 3:
                    clauses.append(_fts_phrase(longer))
    clauses = list(dict.fromkeys(clauses))
    return "(" + " OR ".join(clauses) + ")" if clauses else None


def fts_queries(query: str, *, every_word: bool = True) -> tuple[str | None, str | None]:
    """(substring query, typo-tolerant query) in FTS5 syntax; ``None`` when not applicable.

    The typo-tolerant one needs every word of the query (within one typo) unless
    ``every_word`` is false, then any of them. The index holds folded text (accents and case
    removed, :mod:`core.search.fold`), so the query is folded too."""
    text = fold(query)
    digits = phone_digits(query)
    parts = []
    if len(text) >= 3 and not digits:
        parts.append("{name emails account} : " + _fts_phrase(text))
    if digits:
        parts.append("{phones} : " + _fts_phrase(digits))
    exact = " OR ".join(f"({p})" for p in parts) or None
    words = [w for w in re.split(r"[\s@.,;:()\-]+", text) if len(w) >= 3]
    fuzzy = None
    if words and not digits:
        clauses = [c for c in (typo_clause(w) for w in words[:6]) if c]
        if clauses:
            joined = (" AND " if every_word else " OR ").join(clauses)
            fuzzy = "{name emails account} : (" + joined + ")"
    return exact, fuzzy


def _filter_sql(rapport: Rapport, actor: Actor, findable: bool = False) -> Any:
    where = (finding.find_filter(rapport, actor) if findable
             else row_filter(rapport, actor, "core.customer.view", Customer))
    return QueryString("1 = 1") if where is None else where.querystring


def _like(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _is_postgres() -> bool:
    return Customer._meta.db.engine_type in ("postgres", "cockroach")


async def _sqlite_candidates(match: str, where: Any, limit: int) -> list[dict[str, Any]]:
    return await Customer.raw(
        f"SELECT {CANDIDATE_COLUMNS} FROM core_search_customer "
        "JOIN core_customer ON core_customer.id = core_search_customer.rowid "
        "LEFT JOIN core_customer AS core_search_acct "
        "ON core_search_acct.id = core_customer.account "
        "WHERE core_search_customer MATCH {} AND core_customer.erased_at IS NULL AND ({}) "
        # No ORDER BY rank: bm25 over every match cost more than the rest of the search
        # together; rapidfuzz ranks the (bounded) candidates instead.
        "LIMIT {}",
        match, where, limit,
    ).run()


async def _postgres_candidates(query: str, where: Any, limit: int, fuzzy: bool
                               ) -> list[dict[str, Any]]:
    """Ids matching any way (name, emails, phones, account) collected by a UNION of
    separate index lookups, then filtered, ranked and limited. One WHERE with ``OR id IN
    (subquery)`` made PostgreSQL scan the whole customer table (hashed subplans cannot use
    the trigram indexes): 180 ms at 100,000 customers, linear in the table.

    Names are compared folded (``core_search_fold(name)``, indexed), so ``muller`` finds
    *Müller*; emails and phones as they are stored."""
    like = _like(query)
    folded = fold(query)
    folded_like = _like(folded)
    digits = phone_digits(query)
    if digits:
        phone_like = f"%{digits}%"
        ids = QueryString(
            "SELECT id FROM core_customer WHERE primary_phone LIKE {} "
            "UNION SELECT customer FROM core_customer_phone WHERE phone LIKE {}",
            phone_like, phone_like,
        )
    else:
        name_similar = (
            QueryString("UNION SELECT id FROM core_customer WHERE core_search_fold(name) % {} "
                        "UNION SELECT id FROM core_customer "
                        "WHERE core_search_fold(name) %> {}", folded, folded)
            if fuzzy else QueryString("")
        )
        # Names are matched once (MATERIALIZED), and accounts picked among those: filtering
        # 20,000 accounts by kind first and then by name took ~100 ms at 100,000 customers.
        ids = QueryString(
            "WITH named AS MATERIALIZED (SELECT id FROM core_customer "
            "WHERE core_search_fold(name) ILIKE {} {}) "
            "SELECT id FROM named "
            "UNION SELECT id FROM core_customer WHERE primary_email ILIKE {} "
            "UNION SELECT customer FROM core_customer_email WHERE email ILIKE {} "
            "UNION SELECT id FROM core_customer WHERE account IN (SELECT a.id FROM named "
            "JOIN core_customer a ON a.id = named.id WHERE a.kind = 'account' LIMIT 50)",
            folded_like, name_similar, like, like,
        )
    # The ids as an array probed through the primary key: joined as a subquery, their
    # estimated count (~2% of the table for any ILIKE) made PostgreSQL hash-join a scan of
    # every customer, ~0.5 s of each search at 1,000,000 customers.
    return await Customer.raw(
        f"SELECT {CANDIDATE_COLUMNS} FROM core_customer "
        "LEFT JOIN core_customer AS core_search_acct "
        "ON core_search_acct.id = core_customer.account "
        "WHERE core_customer.id = ANY(ARRAY({})) "
        "AND core_customer.erased_at IS NULL AND ({}) "
        "ORDER BY greatest(word_similarity({}, core_search_fold(core_customer.name)), "
        "similarity({}, core_customer.primary_email)) DESC, core_customer.id LIMIT {}",
        ids, where, folded, query, limit,
    ).run()


# (similarity, word similarity) thresholds of the PostgreSQL typo pass, strict first: pg_trgm's
# defaults are selective, the loose ones catch two typos in a short name but match a name
# sharing two trigrams with the query (31,000 of 1,000,000 for "Grenir", each re-read and
# compared: ~0.4 s), so they are tried only when the strict ones find too little.
FUZZY_THRESHOLDS = ((0.3, 0.6), (0.2, 0.4))


async def _postgres_fuzzy_candidates(query: str, where: Any, limit: int,
                                     thresholds: tuple[float, float] = FUZZY_THRESHOLDS[-1]
                                     ) -> list[dict[str, Any]]:
    """The typo pass with these (similarity, word similarity) thresholds, for this one query
    (SET LOCAL lasts until the end of the transaction)."""
    similarity, word_similarity = thresholds
    async with Customer._meta.db.transaction():
        await Customer.raw(f"SET LOCAL pg_trgm.similarity_threshold = {float(similarity)}").run()
        await Customer.raw(
            f"SET LOCAL pg_trgm.word_similarity_threshold = {float(word_similarity)}").run()
        # With low thresholds the planner expects ~1% of names to match and prefers a
        # sequential scan of the customers (370 ms at 100,000) over the trigram index (18 ms).
        await Customer.raw("SET LOCAL enable_seqscan = off").run()
        return await _postgres_candidates(query, where, limit, fuzzy=True)


async def _short_candidates(query: str, where: Any, limit: int) -> list[dict[str, Any]]:
    """One or two characters: too short for trigrams, so names starting with them."""
    prefix = query.replace("\\", "").replace("%", "").replace("_", "") + "%"
    operator = "ILIKE" if _is_postgres() else "LIKE"  # SQLite's LIKE ignores ASCII case
    return await Customer.raw(
        f"SELECT {CANDIDATE_COLUMNS} FROM core_customer "
        "LEFT JOIN core_customer AS core_search_acct "
        "ON core_search_acct.id = core_customer.account "
        f"WHERE core_customer.name {operator} {{}} AND core_customer.erased_at IS NULL "
        "AND ({}) LIMIT {}",
        prefix, where, limit,
    ).run()


def _text_score(query: str, text: str) -> float:
    """0-100: containment wins; otherwise each query word against its closest word of text
    (typos), or the whole strings with words in any order."""
    if not text:
        return 0.0
    if query in text:
        return 100.0 if text.startswith(query) else 95.0
    text_words = [w for w in _WORD_BREAK.split(text) if w] or [text]
    query_words = query.split()
    per_word = sum(max(fuzz.ratio(w, t) for t in text_words) for w in query_words)
    return max(per_word / len(query_words), fuzz.token_sort_ratio(query, text))


def score(query: str, row: dict[str, Any]) -> float:
    """How well ``row`` answers ``query`` (0-100): the best of name, email, account, phone."""
    q = fold(query)
    digits = phone_digits(query)
    if digits and digits in (row.get("primary_phone") or "").replace("+", ""):
        return 100.0
    best = _text_score(q, fold(row.get("name") or ""))
    best = max(best, _text_score(q, fold(row.get("primary_email") or "")) * 0.95)
    # A contact found through its account ranks below the account itself.
    best = max(best, _text_score(q, fold(row.get("account_name") or "")) * 0.85)
    return float(best)


def _good_matches(query: str, rows: dict[int, dict[str, Any]], fuzzy_ids: set[int]) -> int:
    """How many of ``rows`` would be shown: every exact match, typo matches above the floor."""
    return sum(1 for row_id, row in rows.items()
               if row_id not in fuzzy_ids or score(query, row) >= FUZZY_FLOOR)


async def find_customers(rapport: Rapport, actor: Actor, query: str, limit: int = 10, *,
                         findable: bool = False) -> list[CustomerHit]:
    """Customers ``actor`` may see that match ``query``, best first (at most ``limit``).

    ``findable``: also those ``actor`` may only find (``core.customer.find``), marked
    ``openable=False``; every hit then carries its city (the picker's minimal view)."""
    query = normalise_query(query)
    limit = max(1, min(limit, 100))
    if not query:
        return []
    where = _filter_sql(rapport, actor, findable)
    wanted = min(MAX_CANDIDATES, limit * 4)
    rows: dict[int, dict[str, Any]] = {}
    fuzzy_ids: set[int] = set()
    if len(query) < 3 and not phone_digits(query):
        found = await _short_candidates(query, where, wanted)
        rows.update((r["id"], r) for r in found)
    elif _is_postgres():
        for row in await _postgres_candidates(query, where, wanted, fuzzy=False):
            rows[row["id"]] = row
        # Typos: strict thresholds first, the loose ones only if too few good matches yet.
        for thresholds in FUZZY_THRESHOLDS:
            if phone_digits(query) or _good_matches(query, rows, fuzzy_ids) >= limit:
                break
            for row in await _postgres_fuzzy_candidates(query, where, wanted, thresholds):
                if row["id"] not in rows:
                    rows[row["id"]] = row
                    fuzzy_ids.add(row["id"])
    else:
        exact, fuzzy = fts_queries(query)
        if exact:
            rows.update((r["id"], r)
                        for r in await _sqlite_candidates(exact, where, MAX_CANDIDATES))
        # Typos: first every word within one typo, then (a name typed half wrong) any word.
        for every_word in (True, False):
            fuzzy = fts_queries(query, every_word=every_word)[1]
            if not fuzzy or len(rows) >= limit:
                break
            for row in await _sqlite_candidates(fuzzy, where, MAX_CANDIDATES):
                if row["id"] not in rows:
                    rows[row["id"]] = row
                    fuzzy_ids.add(row["id"])
    hits = []
    for row in rows.values():
        value = score(query, row)
        if row["id"] in fuzzy_ids and value < FUZZY_FLOOR:
            continue
        hits.append(CustomerHit(
            id=row["id"], kind=row["kind"], name=row["name"], email=row["primary_email"] or "",
            phone=row["primary_phone"] or "", account_id=row["account_id"],
            account_name=row["account_name"] or "", lifecycle_stage=row["lifecycle_stage"] or "",
            score=value,
        ))
    hits.sort(key=lambda h: (-h.score, h.name.lower(), h.id))
    hits = hits[:limit]
    if findable and hits:
        ids = [h.id for h in hits]
        openable = await finding.openable_ids(rapport, actor, ids)
        city = await finding.cities(ids)
        hits = [replace(h, openable=h.id in openable, city=city.get(h.id, "")) for h in hits]
    return hits


def _snippet(hit: CustomerHit) -> str:
    parts = ["Account" if hit.kind == "account" else "Contact"]
    if hit.openable:
        parts += [p for p in (hit.account_name, hit.email, display_phone(hit.phone)) if p]
    else:
        # Found through core.customer.find: the minimal view only, and say why it is short.
        parts += [p for p in (hit.email, display_phone(hit.phone), hit.city) if p]
        parts.append("not one of your customers")
    return " · ".join(parts)


async def search_customers(rapport: Rapport, user: Actor, query: str, limit: int
                           ) -> list[SearchResult]:
    """The :class:`core.plugin.SearchProvider` callable for customers. Customers the user may
    only find link to their card (``/customers/{id}/card``), not to the 360° view."""
    return [
        SearchResult(title=h.name, kind="customer", snippet=_snippet(h), score=h.score,
                     url=f"/customers/{h.id}" if h.openable else f"/customers/{h.id}/card")
        for h in await find_customers(rapport, user, query, limit, findable=True)
    ]



async def name_candidates(name: str, *, kind: str | None = None, limit: int = 50
                          ) -> list[dict[str, Any]]:
    """Customers whose name resembles ``name``, whoever may see them (for duplicate checks,
    which report hidden matches without revealing them). Not for showing to users."""
    query = normalise_query(name)
    if len(query) < 3:
        return []
    where = QueryString("core_customer.kind = {}", kind) if kind else QueryString("1 = 1")
    if _is_postgres():
        rows = await _postgres_candidates(query, where, limit, fuzzy=False)
        return rows + await _postgres_fuzzy_candidates(query, where, limit)
    exact, fuzzy = fts_queries(query)
    rows = await _sqlite_candidates(exact, where, limit) if exact else []
    if fuzzy:
        rows += await _sqlite_candidates(fuzzy, where, limit)
    return rows


# A list filter with at most this many matches (SQLite) reads them by id and sorts them; with
# more it is left to walk the list's (kind, name) index, where matches are dense enough.
FEW_MATCHES = 2000


@dataclass(frozen=True)
class ListFilter:
    where: WhereRaw
    # True: few matches, given as ids: the caller should keep SQLite from walking an index in
    # list order to find them (``+core_customer.kind``), which would read every row for a
    # rare name.
    few: bool = False


async def list_filter(query: str) -> ListFilter | None:
    """The customer lists' text filter: customers whose name, email, phone or account (the
    company of a contact) *contains* ``query``, accents and case ignored (``mith`` and
    ``smíth`` find *Smith*), answered from the search index so that it stays indexed at a
    million customers. ``None`` when the query is too short for the trigram index (fewer than
    three letters and not a phone number): the caller then matches the start of names.

    SQLite: the customers' FTS5 documents (every email, every phone, the account's name), at
    most :data:`FEW_MATCHES` + 1 looked up first: SQLite's planner cannot tell how many match
    and walked the (kind, lower(name)) index checking each row against them, a scan of every
    contact for a rare name; up to :data:`FEW_MATCHES` are then given as ids (``few``).
    PostgreSQL: a bitmap OR of trigram index lookups: folded name, main email, main phone, the
    contacts of up to 50 matching accounts and up to 200 customers with a matching other
    email (both as arrays, so the planner keeps to the indexes instead of a hashed subplan
    over every row)."""
    query = normalise_query(query)
    digits = phone_digits(query)
    folded = fold(query)
    if len(folded) < 3 and not digits:
        return None
    if not _is_postgres():
        match = ("{phones} : " + _fts_phrase(digits) if digits
                 else "{name emails account} : " + _fts_phrase(folded))
        ids = [r["rowid"] for r in await Customer.raw(
            "SELECT rowid FROM core_search_customer WHERE core_search_customer MATCH {} "
            f"LIMIT {FEW_MATCHES + 1}", match).run()]
        if len(ids) <= FEW_MATCHES:
            listed = ", ".join(str(int(i)) for i in ids) or "NULL"
            return ListFilter(WhereRaw(f"core_customer.id IN ({listed})"), few=True)
        return ListFilter(WhereRaw("core_customer.id IN (SELECT rowid FROM core_search_customer "
                                   "WHERE core_search_customer MATCH {})", match))
    if digits:
        phone_like = f"%{digits}%"
        return ListFilter(WhereRaw(
            "(core_customer.primary_phone LIKE {} OR core_customer.id = ANY(ARRAY("
            "SELECT customer FROM core_customer_phone WHERE phone LIKE {} LIMIT 200)))",
            phone_like, phone_like))
    like, folded_like = _like(query), _like(folded)
    return ListFilter(WhereRaw(
        "(core_search_fold(core_customer.name) ILIKE {} "
        "OR core_customer.primary_email ILIKE {} "
        "OR core_customer.account = ANY(ARRAY(SELECT a.id FROM core_customer a "
        "WHERE a.kind = 'account' AND core_search_fold(a.name) ILIKE {} LIMIT 50)) "
        "OR core_customer.id = ANY(ARRAY(SELECT e.customer FROM core_customer_email e "
        "WHERE e.email ILIKE {} LIMIT 200)))",
        folded_like, like, folded_like, like))
