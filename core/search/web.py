"""The search page, the top bar's live suggestions and the JSON search API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from core.permissions import current_actor
from core.search.service import search_all

SUGGESTIONS = 5


@get("/search", name="search", opt={"permission": "authenticated"})
async def search_page(request: Request, q: Annotated[str, QueryParameter(description="What to look for")] = "") -> Template:
    """Full results grouped by kind. An htmx request (the page's own box) gets only the
    results, so typing refreshes them without reloading the page."""
    rapport = request.app.state.rapport
    outcome = await search_all(rapport, current_actor(request), q, limit=20)
    context = {"q": q.strip(), "groups": outcome.groups, "late": outcome.late}
    if getattr(request, "htmx", None) and request.headers.get("hx-target") == "search-results":
        return Template("search/results.html", context=context)
    return Template("search/page.html", context=context)


@get("/search/suggest", name="search-suggest", opt={"permission": "authenticated"},
     include_in_schema=False)
async def search_suggestions(request: Request, q: Annotated[str, QueryParameter(description="What to look for")] = "") -> Template:
    """The top bar's drop-down: a few results per kind, as links."""
    rapport = request.app.state.rapport
    outcome = await search_all(rapport, current_actor(request), q, limit=SUGGESTIONS)
    return Template("search/suggestions.html", context={"q": q.strip(), "groups": outcome.groups,
                                                         "late": outcome.late})


@get("/api/v1/search", name="api-search", opt={"permission": "authenticated"})
async def search_api(
    request: Request,
    q: Annotated[str, QueryParameter(description="What to look for")] = "",
    limit: Annotated[int, QueryParameter(ge=1, le=50)] = 10,
    kind: Annotated[str | None, QueryParameter(description="Only these kinds, comma-separated")] = None,
) -> dict[str, Any]:
    """Search customers and every plugin's records the caller may see, grouped by kind."""
    rapport = request.app.state.rapport
    kinds = {k for k in (kind or "").split(",") if k} or None
    outcome = await search_all(rapport, current_actor(request), q, limit=limit, kinds=kinds)
    return {
        "query": q.strip(),
        "groups": [
            {"kind": g.kind, "label": g.label, "results": [asdict(r) for r in g.results]}
            for g in outcome.groups
        ],
        # Providers that did not answer within the time budget: their kinds may be missing.
        "late": outcome.late,
    }
