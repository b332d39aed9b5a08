"""What the benchmark drives. One small function per scenario; later issues append theirs to
``SCENARIOS``.

A scenario function receives the seeded facts and returns a :class:`Request` to repeat (or a
list of them, cycled through), or ``None`` when it does not apply. Before loading, the harness
sends the first request once: a scenario whose route does not answer 2xx is printed as
"skipped: not available", so scenarios can be listed before their routes exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from bench.seed import Seeded


@dataclass(frozen=True)
class Request:
    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True  # send the seeded user's API token


HTML = {"accept": "text/html"}


def bare_json(seeded: Seeded) -> Request:
    """The ceiling: a bare Litestar JSON endpoint in the same app (only with RAPPORT_BENCH=1)."""
    return Request("/bench/json", auth=False)


def indexed_select(seeded: Seeded) -> Request:
    """50 customers by an indexed column through Piccolo, behind a bare handler (bench only):
    isolates the database engine's per-query cost."""
    return Request("/bench/customers", auth=False)


def contacts_list(seeded: Seeded) -> Request:
    """The first page of the contacts list, as a browser asks for it."""
    return Request("/contacts", headers=HTML)


def filtered_list(seeded: Seeded) -> Request:
    """Contacts in one lifecycle stage, sorted by name."""
    return Request("/contacts?stage=customer&sort=name", headers=HTML)


def customer_360(seeded: Seeded) -> Request:
    """The 360° view of the customer with 1,000 interactions."""
    return Request(f"/customers/{seeded.hot_customer_id}", headers=HTML)


def customer_360_typical(seeded: Seeded) -> Request:
    """The 360° view of an ordinary customer (about as many interactions as the average; the
    hot one's 1,000 can hide a plan that scans for customers with few)."""
    return Request(f"/customers/{seeded.customer_ids[len(seeded.customer_ids) // 2]}",
                   headers=HTML)


def global_search(seeded: Seeded) -> list[Request]:
    """Global search for a name that exists, and for a misspelt one."""
    term = seeded.search_term
    misspelt = term[:-2] + term[-1:] if len(term) > 4 else term
    return [Request(f"/search?q={quote(t)}", headers=HTML) for t in (term, misspelt)]


def list_search(seeded: Seeded) -> list[Request]:
    """The contacts list filtered by part of a seeded last name (inside the word, upper
    case: the folded trigram index, core.search)."""
    term = seeded.search_term
    inner = term[1:] if len(term) > 4 else term
    return [Request(f"/contacts?q={quote(t)}", headers=HTML) for t in (inner, inner.upper())]


def interaction_search(seeded: Seeded) -> list[Request]:
    """Global search in interactions' subjects and notes (API, interactions only): a rare
    subject and one that every interaction's notes contain."""
    return [Request(f"/api/v1/search?q={quote(q)}&kind=interaction",
                    headers={"accept": "application/json"})
            for q in (f"Touch point {seeded.interactions // 2}", "next order")]


def interaction_create(seeded: Seeded) -> list[Request]:
    """Log a call against a customer through the JSON API."""
    return [
        Request("/api/v1/interactions", method="POST",
                headers={"content-type": "application/json", "accept": "application/json"},
                body=json.dumps({"customer_id": customer, "channel": "call", "direction": "outbound",
                                 "subject": "Benchmark call"}))
        for customer in seeded.customer_ids[1:51]
    ]


# (name, function, SQLite engines to run it on). "stock" is Piccolo's own SQLite engine (a new
# connection per query), run for the list scenario only to show the overhead Rapport removes.
SCENARIOS = [
    ("bare JSON (ceiling)", bare_json, ("kept", "stock")),
    ("50-row indexed select", indexed_select, ("kept", "stock")),
    ("contacts list", contacts_list, ("kept", "stock")),
    ("filtered list", filtered_list, ("kept",)),
    ("360 view (1,000 interactions)", customer_360, ("kept",)),
    ("360 view (typical customer)", customer_360_typical, ("kept",)),
    ("global search", global_search, ("kept",)),
    ("list search (inside names)", list_search, ("kept",)),
    ("interaction search", interaction_search, ("kept",)),
    ("interaction create", interaction_create, ("kept",)),
]
