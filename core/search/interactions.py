"""Core's search provider for interactions: subject and notes, accents and case ignored.

Answered from the interactions' own trigram index (core_search migration of 2026-12-07:
SQLite FTS5 table ``core_search_interaction`` over the folded text, PostgreSQL GIN indexes
over ``core_search_fold(subject)`` and ``core_search_fold(notes)``), within the searcher's
interaction scope, newest first. Bounded like every search: on SQLite the newest
:data:`MAX_MATCHES` matches are considered; nothing counts.

Global search reads the interactions in id windows, newest first (:data:`WINDOW`, doubling),
and stops when it has enough or after :data:`BUDGET` seconds: a phrase whose trigrams are all
common ("touch point 100000" among 200,000 "Touch point N" subjects) made the index check
every interaction holding them, ~80 ms at 200,000 and in proportion beyond; a window bounds
that to the newest ones first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw

from core.interactions.tables import Interaction
from core.local_time import format_local, zone_of
from core.permissions import Actor, scoped
from core.plugin import SearchResult
from core.search.customers import _fts_phrase, _is_postgres, _like, normalise_query
from core.search.fold import fold

if TYPE_CHECKING:
    from core.app import Rapport

MAX_MATCHES = 5000
SNIPPET = 90
WINDOW = 50_000
BUDGET = 0.5


def text_filter(query: str, ids: tuple[int, int] | None = None) -> WhereRaw | None:
    """Interactions whose subject or notes contain ``query`` (folded), with an id in
    ``ids`` (from, to: a half-open range) when given; ``None`` when the query has fewer than
    three letters (no trigram to look up)."""
    folded = fold(normalise_query(query))
    if len(folded) < 3:
        return None
    low, high = (int(ids[0]), int(ids[1])) if ids else (None, None)
    if _is_postgres():
        like = _like(folded)
        within = (f" AND core_interaction.id >= {low} AND core_interaction.id < {high}"
                  if ids else "")
        return WhereRaw("((core_search_fold(core_interaction.subject) ILIKE {} "
                        f"OR core_search_fold(core_interaction.notes) ILIKE {{}}){within})",
                        like, like)
    within = f"AND rowid >= {low} AND rowid < {high} " if ids else ""
    return WhereRaw(
        "core_interaction.id IN (SELECT rowid FROM core_search_interaction "
        f"WHERE core_search_interaction MATCH {{}} {within}ORDER BY rowid DESC "
        f"LIMIT {MAX_MATCHES})", "{subject notes} : " + _fts_phrase(folded))


def _excerpt(text: str, query: str) -> str:
    """About :data:`SNIPPET` characters of ``text`` around the first match of ``query``."""
    text = " ".join((text or "").split())
    at = fold(text).find(fold(query))
    if len(text) <= SNIPPET:
        return text
    start = max(0, at - SNIPPET // 3) if at >= 0 else 0
    piece = text[start:start + SNIPPET]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET < len(text) else "")


def _result(row: dict[str, Any], query: str, actor: Actor) -> SearchResult:
    subject = row["subject"] or "(no subject)"
    in_subject = fold(query) in fold(row["subject"] or "")
    when = format_local(row["occurred_at"], zone_of(actor), "%d %b %Y")
    parts = [row["channel"].replace("_", " ").capitalize(), when,
             row["customer.name"] or ""]
    notes = _excerpt(row["notes"], query) if row["notes"] else ""
    if notes and not in_subject:
        parts.append(notes)
    return SearchResult(title=subject, url=f"/interactions/{row['id']}", kind="interaction",
                        snippet=" · ".join(p for p in parts if p),
                        score=100.0 if in_subject else 90.0)


async def search_interactions(rapport: Rapport, user: Actor, query: str, limit: int
                              ) -> list[SearchResult]:
    """The :class:`core.plugin.SearchProvider` callable for interactions."""
    if text_filter(query) is None:
        return []
    top = (await Interaction.raw("SELECT max(id) AS top FROM core_interaction").run())[0]["top"]
    high, window = (top or 0) + 1, WINDOW
    deadline = time.monotonic() + BUDGET
    rows: list[dict[str, Any]] = []
    while high > 0 and len(rows) < limit and time.monotonic() < deadline:
        low = max(0, high - window)
        rows += await scoped(
            Interaction.select(Interaction.id, Interaction.subject, Interaction.notes,
                               Interaction.channel, Interaction.occurred_at,
                               Interaction.customer.name).where(
                text_filter(query, (low, high))),
            rapport, user, "core.interaction.view", Interaction,
        ).order_by(Interaction.occurred_at, ascending=False).order_by(
            Interaction.id, ascending=False).limit(limit - len(rows)).run()
        high, window = low, window * 2
    query = normalise_query(query)
    return [_result(row, query, user) for row in rows]
