"""Likely duplicates: the same email, the same phone number (normalised), or a close name at
the same account. Checked when a customer is created (form and API) and on import, and listed
on the "likely duplicates" page so they can be merged.

A match outside the actor's scope is still reported (so nobody creates a second record of a
customer a colleague already has) but without its name or a link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piccolo.querystring import QueryString
from rapidfuzz import fuzz

from core.customers.service import normalise_email, normalise_phone
from core.customers.tables import Customer, CustomerEmail, CustomerPhone
from core.permissions import Actor, row_filter, scoped

if TYPE_CHECKING:
    from core.app import Rapport

# token_sort_ratio: "Lovelace, Ada" and "Ada Lovelace" are the same name.
NAME_THRESHOLD = 90.0
MAX_SAME_ACCOUNT = 5000
HIDDEN_NAME = "a customer outside your scope"


@dataclass(frozen=True)
class Duplicate:
    """A customer that looks like the one being entered. ``customer_id`` is ``None`` (and
    ``name`` a placeholder) when the match is outside the actor's scope."""

    customer_id: int | None
    name: str
    reason: str
    kind: str = ""

    @property
    def visible(self) -> bool:
        return self.customer_id is not None


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace(";", ",").replace("\n", ",").split(",")
                if v.strip()]
    items = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get("email") or item.get("phone") or ""
        if str(item).strip():
            items.append(str(item).strip())
    return items


def wanted_emails(values: Mapping[str, Any]) -> list[str]:
    found = []
    for raw in _listed(values.get("emails")) + _listed(values.get("primary_email")) + \
            _listed(values.get("email")):
        try:
            found.append(normalise_email(raw))
        except ValueError:
            continue  # invalid input is the form's business, not a duplicate
    return list(dict.fromkeys(found))


def wanted_phones(values: Mapping[str, Any]) -> list[str]:
    found = []
    region = values.get("region") or None
    for raw in _listed(values.get("phones")) + _listed(values.get("primary_phone")) + \
            _listed(values.get("phone")):
        try:
            found.append(normalise_phone(raw, region))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def wanted_name(values: Mapping[str, Any]) -> str:
    name = " ".join(str(values.get(k) or "").strip() for k in ("first_name", "last_name"))
    return " ".join((name.strip() or str(values.get("name") or "")).split())


def close_names(a: str, b: str) -> bool:
    return bool(a and b) and fuzz.token_sort_ratio(a.lower(), b.lower()) >= NAME_THRESHOLD


async def _ids_with(values: list[str], primary, table, column) -> dict[int, str]:
    """Customers holding one of ``values`` as their primary value or in a sub-record
    (``table.column``), mapped to the value matched; bounded like every duplicate check."""
    found: dict[int, str] = {}
    if not values:
        return found
    rows = await Customer.select(Customer.id, primary).where(primary.is_in(values)).limit(50).run()
    found.update((r["id"], r[primary._meta.name]) for r in rows)
    rows = await table.select(table.customer, column).where(column.is_in(values)).limit(50).run()
    for r in rows:
        found.setdefault(r["customer"], r[column._meta.name])
    return found


async def _ids_with_emails(emails: list[str]) -> dict[int, str]:
    return await _ids_with(emails, Customer.primary_email, CustomerEmail, CustomerEmail.email)


async def _ids_with_phones(phones: list[str]) -> dict[int, str]:
    return await _ids_with(phones, Customer.primary_phone, CustomerPhone, CustomerPhone.phone)


async def _close_names(name: str, kind: str, account: int | None) -> list[int]:
    """Contacts of the same account with a close name; for accounts, accounts with a close
    name (candidates from the search index, so this stays fast at a million rows)."""
    if not name:
        return []
    if kind == "contact" and account:
        rows = await Customer.select(Customer.id, Customer.name).where(
            (Customer.account == account) & (Customer.kind == "contact")
        ).limit(MAX_SAME_ACCOUNT).run()
        return [r["id"] for r in rows if close_names(name, r["name"])]
    if kind == "account":
        from core.search.customers import name_candidates

        rows = await name_candidates(name, kind="account", limit=50)
        return [r["id"] for r in rows if close_names(name, r["name"])]
    return []


async def likely_duplicates(rapport: Rapport, actor: Actor | None, values: Mapping[str, Any],
                            *, exclude_id: int | None = None, limit: int = 10
                            ) -> list[Duplicate]:
    """Customers that look like ``values`` (the same keys as ``create_customer`` takes:
    kind, name or first_name/last_name, account, emails, phones). Best reasons first."""
    reasons: dict[int, list[str]] = {}
    for cid, email in (await _ids_with_emails(wanted_emails(values))).items():
        reasons.setdefault(cid, []).append(f"same email {email}")
    for cid, phone in (await _ids_with_phones(wanted_phones(values))).items():
        reasons.setdefault(cid, []).append(f"same phone {phone}")
    kind = str(values.get("kind") or ("contact" if values.get("first_name") else "account"))
    # The form's account field holds "Name (#id)" when picked from its suggestions.
    match = re.search(r"(\d+)\)?$", str(values.get("account") or "").strip())
    account = int(match.group(1)) if match else None
    name = wanted_name(values)
    for cid in await _close_names(name, kind, account):
        reasons.setdefault(cid, []).append(
            "similar name at the same account" if kind == "contact" else "similar name")
    reasons.pop(exclude_id, None)
    if not reasons:
        return []
    ids = sorted(reasons, key=lambda i: (-len(reasons[i]), i))[:limit]
    query = Customer.select(Customer.id, Customer.name, Customer.kind).where(
        Customer.id.is_in(ids) & Customer.erased_at.is_null())
    everything = {r["id"]: r for r in await query.run()}
    visible = set(everything)
    if actor is not None and actor.kind != "anonymous":
        visible = {r["id"] for r in await scoped(
            Customer.select(Customer.id).where(Customer.id.is_in(ids)),
            rapport, actor, "core.customer.view", Customer).run()}
    found = []
    for cid in ids:
        if cid not in everything:
            continue
        reason = "; ".join(reasons[cid])
        if cid in visible:
            found.append(Duplicate(cid, everything[cid]["name"], reason, everything[cid]["kind"]))
        else:
            found.append(Duplicate(None, HIDDEN_NAME, reason, everything[cid]["kind"]))
    return found


# --- the "likely duplicates" page ------------------------------------------------------------


@dataclass
class DuplicateGroup:
    reason: str
    customers: list[dict[str, Any]]


def _where(rapport: Rapport, actor: Actor) -> QueryString:
    where = row_filter(rapport, actor, "core.customer.view", Customer)
    return QueryString("1 = 1") if where is None else where.querystring


async def _grouped(rapport: Rapport, actor: Actor, key_sql: str, not_empty: str, limit: int
                   ) -> list[tuple[Any, ...]]:
    rows = await Customer.raw(
        f"SELECT {key_sql} AS k1 FROM core_customer WHERE {not_empty} "
        "AND core_customer.erased_at IS NULL AND ({}) "
        f"GROUP BY {key_sql} HAVING count(*) > 1 LIMIT {{}}",
        _where(rapport, actor), limit,
    ).run()
    return [r["k1"] for r in rows]


async def duplicate_groups(rapport: Rapport, actor: Actor, limit: int = 50
                           ) -> list[DuplicateGroup]:
    """Groups of customers ``actor`` may see that share an email, a phone number, or a name
    at the same account. Bounded: at most ``limit`` groups of each sort, no full count."""
    groups: list[DuplicateGroup] = []
    specs = [
        ("Same email", "core_customer.primary_email", "core_customer.primary_email <> ''",
         Customer.primary_email, None),
        ("Same phone", "core_customer.primary_phone", "core_customer.primary_phone <> ''",
         Customer.primary_phone, None),
    ]
    for label, key_sql, not_empty, column, _ in specs:
        keys = await _grouped(rapport, actor, key_sql, not_empty, limit)
        if not keys:
            continue
        query = Customer.select(Customer.id, Customer.name, Customer.kind, column).where(
            column.is_in(keys) & Customer.erased_at.is_null()).order_by(Customer.id).limit(
            limit * 10)
        rows = await scoped(query, rapport, actor, "core.customer.view", Customer).run()
        by_key: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            by_key.setdefault(row[column._meta.name], []).append(row)
        for key in keys:
            members = by_key.get(key, [])
            if len(members) > 1:
                groups.append(DuplicateGroup(f"{label}: {key}", members))
    # Exact names (ignoring case) at the same account; near names are caught on create.
    rows = await Customer.raw(
        "SELECT core_customer.account AS account, lower(core_customer.name) AS lname "
        "FROM core_customer WHERE core_customer.account IS NOT NULL "
        "AND core_customer.erased_at IS NULL AND ({}) "
        "GROUP BY core_customer.account, lower(core_customer.name) HAVING count(*) > 1 LIMIT {}",
        _where(rapport, actor), limit,
    ).run()
    if rows:
        accounts = sorted({r["account"] for r in rows})
        query = Customer.select(Customer.id, Customer.name, Customer.kind, Customer.account).where(
            Customer.account.is_in(accounts) & Customer.erased_at.is_null()).order_by(
            Customer.id).limit(MAX_SAME_ACCOUNT)
        members = await scoped(query, rapport, actor, "core.customer.view", Customer).run()
        wanted = {(r["account"], r["lname"]) for r in rows}
        by_key = {}
        for row in members:
            key = (row["account"], row["name"].lower())
            if key in wanted:
                by_key.setdefault(key, []).append(row)
        for found in sorted(by_key.values(), key=lambda members: members[0]["id"]):
            if len(found) > 1:
                groups.append(DuplicateGroup(f"Same name at the same account: {found[0]['name']}",
                                             found))
    return groups


def pairs(groups: Iterable[DuplicateGroup]) -> list[tuple[int, int]]:
    """(survivor, merged) suggestions: the oldest record of each group survives."""
    return [(g.customers[0]["id"], c["id"]) for g in groups for c in g.customers[1:]]
