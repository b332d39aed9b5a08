"""Global search: ask every search provider (core's customers first, then plugins'), each with
the searcher, and group the answers by kind.

Providers run concurrently, each within a time budget (``PROVIDER_BUDGET``): the box shows what
arrived in time instead of waiting for the slowest plugin, and names the kinds that were late.
A provider applies its own row filter (it is called with the actor); one that fails is logged
and skipped, so a broken plugin never breaks the search box.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.permissions import Actor
from core.plugin import SearchProvider, SearchResult

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.search")

MAX_PER_KIND = 50
# Seconds every provider gets, all of them at once (they run concurrently). A provider still
# busy then is cancelled and reported as late; the others' answers are shown.
PROVIDER_BUDGET = 1.0


@dataclass
class SearchGroup:
    kind: str
    label: str
    results: list[SearchResult] = field(default_factory=list)


@dataclass
class SearchOutcome:
    groups: list[SearchGroup] = field(default_factory=list)
    # Labels of the providers that did not answer within PROVIDER_BUDGET.
    late: list[str] = field(default_factory=list)


def search_providers(rapport: Rapport, actor: Actor) -> list[SearchProvider]:
    """Providers ``actor`` may use, in display order."""
    providers = rapport.collect("register_search_providers", rapport=rapport)
    usable = [p for p in providers if p.permission is None or actor.can(p.permission)]
    return sorted(usable, key=lambda p: (p.order, p.label))


async def _ask(provider: SearchProvider, rapport: Rapport, actor: Actor, query: str,
               limit: int) -> list[SearchResult] | None:
    began = time.perf_counter()
    try:
        results = list(await provider.search(rapport, actor, query, limit))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("search provider %r failed for query %r", provider.kind, query)
        return None
    log.debug("search provider %r answered in %.1f ms", provider.kind,
              (time.perf_counter() - began) * 1000)
    return results


async def search_all(rapport: Rapport, actor: Actor, query: str, limit: int = 8,
                     kinds: set[str] | None = None,
                     budget: float | None = None) -> SearchOutcome:
    """Results for ``query`` grouped by provider in display order (empty groups left out),
    plus the providers that ran out of time."""
    query = " ".join((query or "").split())[:200]
    limit = max(1, min(limit, MAX_PER_KIND))
    outcome = SearchOutcome()
    if not query:
        return outcome
    providers = [p for p in search_providers(rapport, actor) if not kinds or p.kind in kinds]
    if not providers:
        return outcome
    tasks = [asyncio.create_task(_ask(p, rapport, actor, query, limit)) for p in providers]
    _, pending = await asyncio.wait(tasks, timeout=PROVIDER_BUDGET if budget is None else budget)
    for task in pending:
        task.cancel()
    if pending:
        # Let the cancelled ones unwind (close cursors, return pooled connections).
        await asyncio.gather(*pending, return_exceptions=True)
    for provider, task in zip(providers, tasks, strict=True):
        if task in pending:
            log.warning("search provider %r took longer than %.1f s for %r; left out",
                        provider.kind, PROVIDER_BUDGET if budget is None else budget, query)
            outcome.late.append(provider.label)
            continue
        results = task.result()
        if not results:
            continue
        results.sort(key=lambda r: -r.score)
        outcome.groups.append(SearchGroup(kind=provider.kind, label=provider.label,
                                          results=results[:limit]))
    return outcome


async def search_everything(rapport: Rapport, actor: Actor, query: str,
                            limit: int = 8, kinds: set[str] | None = None) -> list[SearchGroup]:
    """Results for ``query`` grouped by provider, best first; empty groups are left out."""
    return (await search_all(rapport, actor, query, limit, kinds)).groups
