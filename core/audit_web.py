"""The audit log pages: administrators filter the log, page through it and export it as CSV.

The log can hold millions of entries, so pages use keyset pagination on the id (newest
first) and every filter is an indexed column; nothing counts the whole table.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.response import Stream, Template

from core import audit, audit_words
from core.audit import AuditEntry, client_ip
from core.local_time import zone_of
from core.permissions import current_actor
from core.plugin import NavItem, hookimpl
from core.spreadsheet import csv_text

PAGE_SIZE = 50
EXPORT_BATCH = 1000
FILTER_FIELDS = ("actor", "action", "record_type", "record_id", "date_from", "date_to")
CSV_COLUMNS = ("id", "occurred_at", "actor_kind", "actor_id", "actor_label", "action",
               "record_type", "record_id", "ip", "summary", "changes", "redacted_at")


@dataclass
class AuditFilter:
    """The filters of the audit page, as typed in; ``errors`` names the fields to fix."""

    values: dict[str, str]
    errors: dict[str, str]
    # Days begin and end at midnight in the reader's zone (core.local_time).
    zone: Any = UTC

    @classmethod
    def from_query(cls, query: Any, zone: Any = UTC) -> AuditFilter:
        values = {name: (query.get(name) or "").strip() for name in FILTER_FIELDS}
        errors: dict[str, str] = {}
        for name in ("date_from", "date_to"):
            if values[name]:
                try:
                    date.fromisoformat(values[name])
                except ValueError:
                    errors[name] = "Use a date like 2026-01-31."
        return cls(values, errors, zone)

    def where(self) -> list[Any]:
        v = self.values
        clauses: list[Any] = []
        if v["actor"]:
            # A number is an actor id; anything else is the email or name shown in the log.
            if v["actor"].isdigit():
                clauses.append(AuditEntry.actor_id == int(v["actor"]))
            else:
                clauses.append(AuditEntry.actor_label == v["actor"].lower())
        if v["action"]:
            clauses.append(AuditEntry.action == v["action"])
        if v["record_type"]:
            clauses.append(AuditEntry.record_type == v["record_type"])
        if v["record_id"]:
            clauses.append(AuditEntry.record_id == v["record_id"])
        if v["date_from"] and "date_from" not in self.errors:
            start = datetime.combine(date.fromisoformat(v["date_from"]), time(), tzinfo=self.zone)
            clauses.append(AuditEntry.occurred_at >= start.astimezone(UTC))
        if v["date_to"] and "date_to" not in self.errors:
            after = date.fromisoformat(v["date_to"]) + timedelta(days=1)
            end = datetime.combine(after, time(), tzinfo=self.zone)
            clauses.append(AuditEntry.occurred_at < end.astimezone(UTC))
        return clauses

    def query_string(self, **extra: Any) -> str:
        params = {k: v for k, v in self.values.items() if v}
        params.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(params)

    def describe(self) -> str:
        used = {k: v for k, v in self.values.items() if v}
        return json.dumps(used, sort_keys=True) if used else "no filter"


def _apply(query: Any, clauses: list[Any]) -> Any:
    for clause in clauses:
        query = query.where(clause)
    return query



@get("/admin/audit", name="audit-log", opt={"permission": "core.audit.manage"})
async def audit_log(request: Request) -> Template:
    return await _list_page(request)


async def _list_page(request: Request) -> Template:
    filters = AuditFilter.from_query(request.query_params,
                                       zone_of(current_actor(request)))
    before = request.query_params.get("before", "")
    query = AuditEntry.select().order_by(AuditEntry.id, ascending=False).limit(PAGE_SIZE + 1)
    clauses = filters.where()
    if before.isdigit():
        clauses.append(AuditEntry.id < int(before))
    rows = await _apply(query, clauses).run() if not filters.errors else []
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    for row in rows:
        try:
            row["changes_parsed"] = json.loads(row["changes"] or "{}")
        except ValueError:
            row["changes_parsed"] = {}
    next_url = (f"/admin/audit?{filters.query_string(before=rows[-1]['id'])}"
                if more and rows else None)
    return Template("audit/list.html", status_code=400 if filters.errors else 200, context={
        "entries": rows,
        "filters": filters.values,
        "errors": filters.errors,
        "next_url": next_url,
        "export_url": f"/admin/audit/export.csv?{filters.query_string()}",
        "first_page": not before,
        "newest_url": f"/admin/audit?{filters.query_string()}",
        "record_label": audit_words.record_type_label,
        "action_label": audit_words.action_label,
        "record_types": audit_words.record_type_choices(),
        "actions": audit_words.action_choices(),
    })


async def _csv_lines(clauses: list[Any], up_to: int) -> AsyncIterator[str]:
    yield csv_text([CSV_COLUMNS])
    last: int | None = None
    while True:
        page = list(clauses) + [AuditEntry.id <= up_to]
        if last is not None:
            page.append(AuditEntry.id < last)
        rows = await _apply(
            AuditEntry.select().order_by(AuditEntry.id, ascending=False).limit(EXPORT_BATCH),
            page,
        ).run()
        if not rows:
            return
        yield csv_text([row[c] for c in CSV_COLUMNS] for row in rows)
        last = rows[-1]["id"]
        if len(rows) < EXPORT_BATCH:
            return


@get("/admin/audit/export.csv", name="audit-export", opt={"permission": "core.audit.manage"})
async def audit_export(request: Request) -> Stream | Template:
    filters = AuditFilter.from_query(request.query_params,
                                       zone_of(current_actor(request)))
    if filters.errors:
        return await _list_page(request)
    newest = await AuditEntry.select(AuditEntry.id).order_by(
        AuditEntry.id, ascending=False).first().run()
    up_to = newest["id"] if newest else 0
    # Exporting the log is itself audited (after fixing what the export covers, so the
    # file does not contain its own entry).
    await audit.record(current_actor(request), "export", "core_audit_entry", "",
                       summary=f"audit log exported: {filters.describe()}", ip=client_ip(request))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Stream(
        _csv_lines(filters.where(), up_to),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


@hookimpl
def register_routes():
    return [audit_log, audit_export]


@hookimpl
def register_nav_items():
    return [NavItem(label="Audit log", href="/admin/audit", permission="core.audit.manage",
                    order=900)]
