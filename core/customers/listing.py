"""Customer lists: filters, sorting and keyset pages, the same for the web, the API and CSV.

Every query here goes through :func:`core.permissions.scoped`, pages by keyset on
(sort key, id) so page 10,000 costs what page 1 costs, and never counts every row: the total
shown is counted up to :data:`COUNT_BOUND` (then "10,000+"). Related names
(account, owner, team, tags) are fetched for a whole page at once, never per row.

    filters = parse_filters(request.query_params, kind="contact")
    page = await list_page(rapport, actor, filters, after=cursor, limit=50)
    page.rows, page.next_cursor
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw
from piccolo.query.mixins import OrderByRaw

from core.customers import custom_fields
from core.customers.service import CustomerError, display_phone
from core.customers.tables import KINDS, LIFECYCLE_STAGES, Customer, CustomerTag
from core.identity.middleware import on_write
from core.identity.tables import Team, User
from core.permissions import Actor, scoped

if TYPE_CHECKING:
    from core.app import Rapport

MAX_LIMIT = 200
# Lists say how many rows match, counted up to this bound and shown as "10,000+" beyond it:
# an exact count of a million filtered rows reads them all, a bounded one at most this many
# index entries.
COUNT_BOUND = 10_000
# sort name -> (SQL expression of the key, ascending?)
SORTS: dict[str, tuple[str, bool]] = {
    "name": ("lower(core_customer.name)", True),
    "updated": ("core_customer.updated_at", False),
    "created": ("core_customer.created_at", False),
}
SORT_LABELS = {"name": "Name (A–Z)", "updated": "Recently updated", "created": "Newest"}
LIST_COLUMNS = (
    Customer.id, Customer.kind, Customer.name, Customer.first_name, Customer.last_name,
    Customer.job_title, Customer.account, Customer.owner, Customer.team,
    Customer.lifecycle_stage, Customer.source, Customer.primary_email, Customer.primary_phone,
    Customer.website, Customer.industry, Customer.created_at, Customer.updated_at,
)


@dataclass
class CustomerFilters:
    """What a list shows. Empty values mean "no filter"."""

    kind: str | None = None
    q: str = ""
    stage: str = ""
    owner: int | None = None
    team: int | None = None
    tag: str = ""
    source: str = ""
    account: int | None = None
    custom: dict[str, str] = field(default_factory=dict)
    sort: str = "name"

    def query_items(self) -> list[tuple[str, str]]:
        """The filters as query parameters (for "Next" links and the export link)."""
        items = [("q", self.q), ("stage", self.stage),
                 ("owner", "" if self.owner is None else str(self.owner)),
                 ("team", "" if self.team is None else str(self.team)),
                 ("tag", self.tag), ("source", self.source),
                 ("account", "" if self.account is None else str(self.account))]
        items += [(f"cf_{k}", v) for k, v in self.custom.items()]
        if self.sort != "name":
            items.append(("sort", self.sort))
        return [(k, v) for k, v in items if v]


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    previous_cursor: str | None = None


def _int_or_error(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CustomerError(name, "must be an id (a whole number)") from None


def parse_filters(params: Mapping[str, Any], kind: str | None = None) -> CustomerFilters:
    """Read filters from query parameters; raise :class:`CustomerError` naming a bad one."""
    wanted_kind = kind or (params.get("kind") or None)
    if wanted_kind is not None and wanted_kind not in KINDS:
        raise CustomerError("kind", "must be account or contact")
    stage = str(params.get("stage") or params.get("lifecycle_stage") or "")
    if stage and stage not in LIFECYCLE_STAGES:
        raise CustomerError("stage", f"must be one of {', '.join(LIFECYCLE_STAGES)}")
    sort = str(params.get("sort") or "name")
    if sort not in SORTS:
        raise CustomerError("sort", f"must be one of {', '.join(SORTS)}")
    custom = {k[3:]: str(v) for k, v in params.items() if k.startswith("cf_") and v not in
              (None, "")}
    return CustomerFilters(
        kind=wanted_kind, q=str(params.get("q") or "").strip()[:200],
        stage=stage, owner=_int_or_error(params.get("owner"), "owner"),
        team=_int_or_error(params.get("team"), "team"),
        tag=str(params.get("tag") or "").strip().lower()[:64],
        source=str(params.get("source") or "").strip()[:100],
        account=_int_or_error(params.get("account"), "account"), custom=custom, sort=sort,
    )


def encode_cursor(sort: str, row: Mapping[str, Any]) -> str:
    key = {"name": (row["name"] or "").lower(), "updated": row["updated_at"],
           "created": row["created_at"]}[sort]
    if isinstance(key, datetime):
        key = key.isoformat()
    raw = json.dumps({"s": sort, "k": key, "i": row["id"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if data["s"] != sort:
            raise ValueError("cursor made for another sort order")
        key = data["k"]
        if sort != "name":
            key = datetime.fromisoformat(key)
        return key, int(data["i"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CustomerError("after", "is not a cursor from this list (start again from the "
                                     "first page)") from None


async def where_clauses(rapport: Rapport, actor: Actor | None, filters: CustomerFilters,
                        permission: str = "core.customer.view") -> list[Any]:
    """The where-clauses for ``filters`` (row-level security is added by the callers)."""
    clauses: list[Any] = []
    contains = None
    if filters.q:
        from core.search.customers import list_filter

        # Name, email, phone or account containing q, accents ignored, from the search index
        # (core.search); a query too short for trigrams matches the start of names and emails.
        contains = await list_filter(filters.q)
    if filters.kind:
        if contains is not None and contains.few:
            # A few matches by id: "+" keeps SQLite from walking the (kind, name) index.
            clauses.append(WhereRaw("+core_customer.kind = {}", filters.kind))
        else:
            clauses.append(Customer.kind == filters.kind)
    if filters.q:
        q = filters.q.lower()
        if contains is not None:
            clauses.append(contains.where)
        else:
            # Ranges rather than LIKE: they use the (kind, lower(name), id) and email indexes on
            # both databases whatever the collation.
            clauses.append(WhereRaw(
                "((lower(core_customer.name) >= {} AND lower(core_customer.name) < {}) OR "
                "(core_customer.primary_email >= {} AND core_customer.primary_email < {}))",
                q, q + "\uffff", q, q + "\uffff"))
    if filters.stage:
        clauses.append(Customer.lifecycle_stage == filters.stage)
    if filters.owner is not None:
        clauses.append(Customer.owner == filters.owner)
    if filters.team is not None:
        clauses.append(Customer.team == filters.team)
    if filters.source:
        clauses.append(Customer.source == filters.source)
    if filters.account is not None:
        clauses.append(Customer.account == filters.account)
    if filters.tag:
        clauses.append(Customer.id.is_in(
            CustomerTag.select(CustomerTag.customer).where(CustomerTag.tag == filters.tag)))
    if filters.custom:
        defs = {d.key: d for d in await custom_fields.field_definitions()}
        for key, raw in filters.custom.items():
            definition = defs.get(key)
            if definition is None:
                raise CustomerError(f"cf_{key}", "is not a custom field")
            try:
                clauses.append(custom_fields.filter_clause(definition, raw))
            except custom_fields.CustomFieldError as exc:
                raise CustomerError(exc.field, exc.message) from None
    return clauses


def _keyset(sort: str, key: Any, last_id: int, backwards: bool = False) -> WhereRaw:
    expression, ascending = SORTS[sort]
    operator = ">" if ascending != backwards else "<"
    # Row values use the composite indexes on SQLite and PostgreSQL alike.
    return WhereRaw(f"({expression}, core_customer.id) {operator} ({{}}, {{}})", key, last_id)


def _order(query, sort: str, backwards: bool = False):
    expression, ascending = SORTS[sort]
    ascending = ascending != backwards
    return query.order_by(OrderByRaw(expression), ascending=ascending).order_by(
        Customer.id, ascending=ascending)


async def _filtered(rapport: Rapport, actor: Actor | None, filters: CustomerFilters,
                    permission: str, columns):
    query = Customer.select(*columns)
    for clause in await where_clauses(rapport, actor, filters, permission):
        query = query.where(clause)
    if actor is not None and actor.kind != "anonymous":
        query = scoped(query, rapport, actor, permission, Customer)
    return query


async def count_upto(rapport: Rapport, actor: Actor | None, filters: CustomerFilters, *,
                     bound: int = COUNT_BOUND, permission: str = "core.customer.view") -> int:
    """How many customers match ``filters`` for ``actor``, counted up to ``bound + 1`` (more
    than ``bound`` means "bound+"): the same scoped, indexed query as the page, limited."""
    query = (await _filtered(rapport, actor, filters, permission, (Customer.id,))).limit(
        bound + 1)
    rows = await Customer.raw("SELECT count(*) AS n FROM ({}) AS bounded",
                              query.querystrings[0]).run()
    return int(rows[0]["n"])


def total_text(count: int, one: str, many: str, bound: int = COUNT_BOUND) -> str:
    """"1 account", "1,234 accounts", or "10,000+ accounts" past the bound."""
    if count > bound:
        return f"{bound:,}+ {many}"
    return f"{count:,} {one if count == 1 else many}"


async def _select(rapport: Rapport, actor: Actor | None, filters: CustomerFilters,
                  permission: str, columns, after: str | None, limit: int,
                  before: str | None = None):
    query = await _filtered(rapport, actor, filters, permission, columns)
    if after:
        key, last_id = decode_cursor(after, filters.sort)
        query = query.where(_keyset(filters.sort, key, last_id))
    elif before:
        key, first_id = decode_cursor(before, filters.sort)
        query = query.where(_keyset(filters.sort, key, first_id, backwards=True))
    return await _order(query, filters.sort, backwards=bool(before and not after)).limit(
        limit).run()


async def list_page(rapport: Rapport, actor: Actor | None, filters: CustomerFilters, *,
                    after: str | None = None, before: str | None = None, limit: int = 50,
                    permission: str = "core.customer.view", columns=LIST_COLUMNS) -> Page:
    """One page of customers ``actor`` may see, the cursor of the next page (if any) and of
    the previous one (``None`` on the first page). ``before`` pages backwards: the same
    keyset read in the opposite order, so going back costs what going forward costs."""
    if not 1 <= limit <= MAX_LIMIT:
        raise CustomerError("limit", f"must be between 1 and {MAX_LIMIT}")
    if before and not after:
        rows = await _select(rapport, actor, filters, permission, columns, None, limit + 1,
                             before=before)
        if len(rows) > limit:
            rows = rows[:limit][::-1]
            return Page(rows=rows, next_cursor=encode_cursor(filters.sort, rows[-1]),
                        previous_cursor=encode_cursor(filters.sort, rows[0]))
        # Fewer than a page before it: that is the first page (rows may have gone since).
        after = None
    rows = await _select(rapport, actor, filters, permission, columns, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_cursor=encode_cursor(filters.sort, rows[-1]) if more else None,
                previous_cursor=encode_cursor(filters.sort, rows[0]) if after and rows
                else None)


async def iter_batches(rapport: Rapport, actor: Actor | None, filters: CustomerFilters, *,
                       permission: str = "core.customer.export", batch: int = 1000,
                       columns=None) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching customer, in keyset batches (for streaming exports)."""
    columns = columns or Customer._meta.columns
    after = None
    while True:
        rows = await _select(rapport, actor, filters, permission, columns, after, batch)
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = encode_cursor(filters.sort, rows[-1])


# Formatting a number for people parses it again (~70 us each, 50 per page): the same pages
# are shown over and over, so formatted numbers are remembered (bounded, pure function).
_display_phone = functools.lru_cache(maxsize=50_000)(display_phone)


def _in_list(values: list[Any]) -> tuple[str, list[Any]]:
    """``IN (...)`` for a raw query: one array parameter on PostgreSQL, one per value on
    SQLite."""
    if Customer._meta.db.engine_type in ("postgres", "cockroach"):
        return "= ANY({})", [list(values)]
    return "IN (" + ", ".join("{}" for _ in values) + ")", list(values)


async def decorate(rows: list[dict[str, Any]], *, with_tags: bool = True) -> list[dict[str, Any]]:
    """Add ``account_name``, ``owner_name``, ``team_name``, ``tags`` and ``phone_display`` to
    a page of rows, with ONE query for all of them (a UNION of the account, owner, team and
    tag lookups for the page: a list page used to spend four round trips here)."""
    if not rows:
        return rows
    wanted = (
        ("a", "SELECT id AS ref, name AS value, id AS ord FROM core_customer WHERE id ",
         sorted({r["account"] for r in rows if r.get("account")})),
        ("u", f"SELECT id AS ref, name AS value, id AS ord FROM {User._meta.tablename} "
              "WHERE id ", sorted({r["owner"] for r in rows if r.get("owner")})),
        ("t", f"SELECT id AS ref, name AS value, id AS ord FROM {Team._meta.tablename} "
              "WHERE id ", sorted({r["team"] for r in rows if r.get("team")})),
        ("g", "SELECT customer AS ref, tag AS value, id AS ord FROM core_customer_tag "
              "WHERE customer ", sorted({r["id"] for r in rows}) if with_tags else []),
    )
    parts: list[str] = []
    args: list[Any] = []
    for what, select, ids in wanted:
        if ids:
            condition, values = _in_list(ids)
            parts.append(f"SELECT '{what}' AS what, ref, value, ord FROM ({select}{condition}) "
                         f"AS {what}_rows")
            args += values
    found: dict[str, dict[int, Any]] = {"a": {}, "u": {}, "t": {}}
    tags: dict[int, list[str]] = {}
    if parts:
        for r in await Customer.raw(" UNION ALL ".join(parts) + " ORDER BY what, ord",
                                    *args).run():
            if r["what"] == "g":
                tags.setdefault(r["ref"], []).append(r["value"])
            else:
                found[r["what"]][r["ref"]] = r["value"]
    accounts, owners, teams = found["a"], found["u"], found["t"]
    for row in rows:
        row["account_name"] = accounts.get(row.get("account"), "")
        row["owner_name"] = owners.get(row.get("owner"), "")
        row["team_name"] = teams.get(row.get("team"), "")
        row["tags"] = tags.get(row["id"], [])
        row["phone_display"] = _display_phone(row["primary_phone"]) \
            if row.get("primary_phone") else ""
    return rows


# Owners and teams offered in filters change rarely and every list page shows them: they are
# kept per database for CHOICES_SECONDS, and dropped at once when this worker answers any
# write request (core.identity.middleware calls forget_cached), so a user or team added through
# the web shows up on the next page; one added elsewhere within CHOICES_SECONDS.
CHOICES_SECONDS = 5.0
# By database engine, so one process serving several databases (tests) never mixes them up.
_choices: dict[int, tuple[Any, float, dict[str, Any]]] = {}


def forget_cached() -> None:
    _choices.clear()


async def choices_for_filters() -> dict[str, Any]:
    """Owners, teams and custom fields offered in list filters and forms."""
    import time

    engine = User._meta.db
    cached = _choices.get(id(engine))
    if cached is not None and cached[0] is engine and cached[1] > time.monotonic():
        return {k: list(v) if isinstance(v, list) else v for k, v in cached[2].items()}
    users = await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(500).run()
    teams = await Team.select(Team.id, Team.name).order_by(Team.name).limit(500).run()
    choices = {"users": users, "teams": teams, "stages": LIFECYCLE_STAGES,
               "sorts": SORT_LABELS}
    if len(_choices) >= 16:
        _choices.clear()  # engines of finished tests
    _choices[id(engine)] = (engine, time.monotonic() + CHOICES_SECONDS, choices)
    return dict(choices)


on_write(forget_cached)
