"""The fast import path keeps its promises on a file big enough to span several insert batches:
one bad row anywhere means nothing is written, a failure while writing leaves nothing behind
(and the search index keeps working afterwards), and a good file lands whole and searchable."""

from __future__ import annotations

import sqlite3

import pytest

from core.customers import importing
from core.customers.importing import import_csv
from core.customers.tables import Customer, CustomerEmail, CustomerPhone, CustomerTag
from core.identity.users import load_actor
from core.search.customers import find_customers
from tests.conftest import make_user

ROWS = 2500  # more than two insert batches (importing.BATCH is 1,000)


def big_file(bad_line: int | None = None) -> str:
    lines = ["First name,Last name,Email,Phone,Company,Tags"]
    for i in range(ROWS):
        email = "not-an-email" if bad_line == i + 2 else f"person{i}@example.test"
        lines.append(f"Person{i},Surname{i},{email},+44 20 7946 {i:04d},"
                     f"Company {i // 50},{'vip' if i % 3 == 0 else ''}")
    return "\n".join(lines) + "\n"


async def nothing_written() -> None:
    assert await Customer.count().run() == 0
    assert await CustomerEmail.count().run() == 0
    assert await CustomerPhone.count().run() == 0
    assert await CustomerTag.count().run() == 0


async def test_a_bad_row_in_the_middle_of_a_large_file_writes_nothing(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    report = await import_csv(rapport, actor, "contact", big_file(bad_line=1251),
                              dry_run=False)
    assert [(p.line, p.field) for p in report.errors] == [(1251, "email")]
    assert report.rows == ROWS and not report.committed
    await nothing_written()


async def test_a_failure_while_writing_rolls_everything_back(rapport, monkeypatch):
    actor = await load_actor(rapport, await make_user("admin@example.test"))

    async def broken_audit(*args, **kwargs):
        raise RuntimeError("disk full")

    # The audit entry is the last write of the import transaction: by then every customer,
    # email, phone, tag and search row has been inserted.
    monkeypatch.setattr(importing.audit, "record", broken_audit)
    with pytest.raises(RuntimeError, match="disk full"):
        await import_csv(rapport, actor, "contact", big_file(), dry_run=False)
    monkeypatch.undo()
    await nothing_written()
    # The search index still follows ordinary writes afterwards (its triggers are intact).
    await import_csv(rapport, actor, "contact", "name,email\nGrace Hopper,grace@navy.test\n",
                     dry_run=False)
    assert [h.name for h in await find_customers(rapport, actor, "hopper")] == ["Grace Hopper"]


async def test_a_large_good_file_lands_whole_and_searchable(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    seen = []
    report = await import_csv(rapport, actor, "contact", big_file(), dry_run=False,
                              progress=lambda phase, done, total: seen.append((phase, done)))
    assert report.committed and report.created == ROWS and not report.errors
    assert await Customer.count().where(Customer.kind == "contact").run() == ROWS
    assert await Customer.count().where(Customer.kind == "account").run() == ROWS // 50
    assert await CustomerPhone.count().run() == ROWS
    assert await CustomerTag.count().run() == len(range(0, ROWS, 3))
    # Checked and written a chunk at a time, in one transaction.
    assert seen == [("importing", 1000), ("importing", 2000), ("importing", ROWS)]
    row = await Customer.select().where(Customer.primary_email == "person1999@example.test"
                                        ).first().run()
    assert row["primary_phone"] == "+442079461999" and row["account"] is not None
    assert "Person1999 Surname1999" in [
        h.name for h in await find_customers(rapport, actor, "Surname1999")]
    # Importing the same file again flags every row as a likely duplicate, by email and phone.
    again = await import_csv(rapport, actor, "contact", big_file(), dry_run=True)
    assert len(again.warnings) == importing.MAX_REPORTED_WARNINGS
    assert "likely duplicate of customer #" in again.warnings[0].message
    if rapport.settings.database_url.startswith("sqlite"):
        path = rapport.settings.database_url[len("sqlite:///"):]
        with sqlite3.connect(path) as connection:
            triggers = {r[0] for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert "core_search_customer_ai" in triggers
