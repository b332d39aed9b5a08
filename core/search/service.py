"""Global search: ask every search provider (core's customers first, then plugins'), each with
the searcher, and group the answers by kind.

A provider applies its own row filter (it is called with the actor); one that fails is logged
and skipped, so a broken plugin never breaks the search box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.permissions import Actor
from core.plugin import SearchProvider, SearchResult

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.search")

MAX_PER_KIND = 50


@dataclass
class SearchGroup:
    kind: str
    label: str
    results: list[SearchResult] = field(default_factory=list)


def search_providers(rapport: Rapport, actor: Actor) -> list[SearchProvider]:
    """Providers ``actor`` may use, in display order."""
    providers = rapport.collect("register_search_providers", rapport=rapport)
    usable = [p for p in providers if p.permission is None or actor.can(p.permission)]
    return sorted(usable, key=lambda p: (p.order, p.label))


async def search_everything(rapport: Rapport, actor: Actor, query: str,
                            limit: int = 8, kinds: set[str] | None = None) -> list[SearchGroup]:
    """Results for ``query`` grouped by provider, best first; empty groups are left out."""
    query = " ".join((query or "").split())[:200]
    limit = max(1, min(limit, MAX_PER_KIND))
    groups: list[SearchGroup] = []
    if not query:
        return groups
    for provider in search_providers(rapport, actor):
        if kinds and provider.kind not in kinds:
            continue
        try:
            results = list(await provider.search(rapport, actor, query, limit))
        except Exception:
            log.exception("search provider %r failed for query %r", provider.kind, query)
            continue
        results.sort(key=lambda r: -r.score)
        if results:
            groups.append(SearchGroup(kind=provider.kind, label=provider.label,
                                      results=results[:limit]))
    return groups
