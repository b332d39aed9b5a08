"""The queue views stay index-backed as closed cases pile up: "All cases" pages through open
and closed cases alike in queue order, and its query (first page and later pages) reads an
index in order instead of sorting every case; a status filter is served by an index too."""

from __future__ import annotations

import re

import pytest

from core.permissions import Actor
from plugins.service.cases_web import list_query
from plugins.service.tables import OPEN_STATUSES, PRIORITY_RANK, Case
from tests.plugins.service.conftest import new_customer

SUPERVISOR = Actor(kind="staff", id=None, name="supervisor",
                   grants={"service.case.view": "all"})
AGENT = Actor(kind="staff", id=7, name="agent", grants={"service.case.view": "own"})
STATUS_CYCLE = ("closed", "open", "closed", "resolved", "waiting", "closed", "new")


async def _cases(count: int) -> list[dict]:
    customer = await new_customer()
    priorities = ["low", "urgent", "normal", "high"]
    rows = []
    for i in range(count):
        status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
        priority = priorities[i % 4]
        rows.append(Case(number=f"CS-A{i:04d}", subject=f"Case {i}", customer=customer,
                         priority=priority, priority_rank=PRIORITY_RANK[priority],
                         status=status, is_open=status in OPEN_STATUSES))
    await Case.insert(*rows).run()
    return await Case.select(Case.id, Case.number, Case.priority_rank, Case.status).run()


async def test_all_cases_pages_through_open_and_closed_cases_without_repeats(service_client):
    cases = await _cases(110)  # 47 closed: one page of them
    seen: list[str] = []
    url, pages = "/service/cases?view=all", 0
    while url:
        page = await service_client.get(url)
        assert page.status_code == 200
        seen += re.findall(r">(CS-A\d{4})</a>", page.text)
        found = re.search(r'href="(/service/cases\?[^"]*after=[^"]+)"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
    assert pages == 3
    expected = [c["number"] for c in sorted(cases, key=lambda c: (c["priority_rank"],
                                                                  c["id"]))]
    assert seen == expected  # every case once, urgent first, oldest first within a priority

    closed = (await service_client.get("/service/cases?view=all&status=closed")).text
    assert set(re.findall(r">(CS-A\d{4})</a>", closed)) == {
        c["number"] for c in cases if c["status"] == "closed"}
    # A closed status in a view of open cases: the status is what was asked for.
    resolved = (await service_client.get("/service/cases?view=open&status=resolved")).text
    assert set(re.findall(r">(CS-A\d{4})</a>", resolved)) == {
        c["number"] for c in cases if c["status"] == "resolved"}


async def _plan(sql: str) -> list[str]:
    """The query plan's lines: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with
    sequential scans and sorts priced out, as the tables here are too small for an index to
    pay off: a plan still sorts only when no index can give the view's order."""
    engine = Case._meta.db
    if engine.engine_type == "sqlite":
        return [r["detail"] for r in await Case.raw(f"EXPLAIN QUERY PLAN {sql}").run()]
    async with engine.transaction():
        await Case.raw("SET LOCAL enable_seqscan = off").run()
        await Case.raw("SET LOCAL enable_sort = off").run()
        return [r["QUERY PLAN"] for r in await Case.raw(f"EXPLAIN {sql}").run()]


@pytest.mark.parametrize("after", [None, (2, 40)], ids=["first page", "later page"])
async def test_all_cases_view_reads_its_index_in_order(service_client, after):
    await _cases(60)
    sql = str(list_query(service_client.rapport, SUPERVISOR, view="all", after=after,
                         limit=51))
    plan = await _plan(sql)
    text = "\n".join(plan)
    assert "service_case_all_view_idx" in text, text
    if Case._meta.db.engine_type == "sqlite":
        assert "TEMP B-TREE" not in text, text
        # Cases come from the index; names are looked up by primary key, nothing scanned.
        assert not [line for line in plan if line.startswith("SCAN")
                    and "USING INDEX service_case_all_view_idx" not in line
                    and "USING COVERING INDEX service_case_all_view_idx" not in line], text
    else:
        assert not re.search(r"\bSort\b", text), text


@pytest.mark.parametrize("status", ["closed", "new"])
async def test_a_status_filter_reads_the_open_or_closed_part_of_an_index(service_client,
                                                                         status):
    await _cases(60)
    sql = str(list_query(service_client.rapport, SUPERVISOR, view="all", status=status,
                         limit=51))
    text = "\n".join(await _plan(sql))
    assert "service_case_open_view_idx" in text, text
    if Case._meta.db.engine_type == "sqlite":
        assert "TEMP B-TREE" not in text, text
    else:
        assert not re.search(r"\bSort\b", text), text


async def test_all_cases_of_an_agent_who_sees_their_own_come_from_an_index_in_order(
        service_client):
    """An agent whose scope is "own" sees "All cases" as owner = them, in any status."""
    await _cases(60)
    sql = str(list_query(service_client.rapport, AGENT, view="all", after=(1, 10), limit=51))
    assert '"service_case"."owner" = 7' in sql
    text = "\n".join(await _plan(sql))
    assert "service_case_owner_all_idx" in text, text
    if Case._meta.db.engine_type == "sqlite":
        assert "TEMP B-TREE" not in text, text
    else:
        assert not re.search(r"\bSort\b", text), text
