"""Global search answers for cases: by number ("CS-000123", "cs-123", "#123", "123") or by
words of the subject, within the user's row scope.

The number is a primary-key lookup; the subject goes through the trigram index of
``core.search.text`` (three characters or more), never ``ILIKE '%q%'`` over every case."""

from __future__ import annotations

import re

from core.permissions import scoped
from core.plugin import SearchResult
from core.search.text import contains
from plugins.service.cases import LABELS
from plugins.service.tables import Case

_NUMBER = re.compile(r"^\s*(?:cs-?|#)?0*(\d{1,9})\s*$", re.IGNORECASE)


async def cases(rapport, user, query, limit):
    """Cases whose number is the query, then cases whose subject contains it (open ones
    first, newest first)."""
    if not user.can("service.case.view") or not query.strip():
        return []
    columns = (Case.id, Case.number, Case.subject, Case.status, Case.priority, Case.is_open,
               Case.customer.name.as_alias("customer_name"))
    found: list[dict] = []
    number = _NUMBER.match(query)
    if number:
        exact = Case.select(*columns).where(Case.id == int(number.group(1)))
        found += await scoped(exact, rapport, user, "service.case.view", Case).run()
    subject = contains(Case, ["subject"], query)
    if len(found) < limit and subject is not None:
        by_subject = Case.select(*columns).where(subject)
        if found:
            by_subject = by_subject.where(Case.id != found[0]["id"])
        found += await scoped(by_subject, rapport, user, "service.case.view", Case).order_by(
            Case.is_open, ascending=False).order_by(Case.id, ascending=False).limit(
            limit - len(found)).run()
    return [SearchResult(
        title=f"{r['number']} {r['subject']}", url=f"/service/cases/{r['id']}",
        kind="service.case",
        snippet=f"{r['customer_name'] or ''} · {LABELS['status'].get(r['status'], r['status'])}"
                f" · {LABELS['priority'].get(r['priority'], r['priority'])}")
        for r in found[:limit]]
