"""Shared helpers for the visits, customers and demo tests: cases written straight to the
tables (these tests are about what happens around a case, not about opening one)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from tests.plugins.service.conftest import new_customer

_numbers = count(1)


async def new_case(customer_id: int, *, subject: str = "Boiler leaks", case_type: str = "maintenance",
                   status: str = "open", owner=None, team=None, resolution_due=None,
                   created_at: datetime | None = None) -> dict:
    from plugins.service.tables import OPEN_STATUSES, Case

    now = created_at or datetime.now(UTC)
    number = f"CS-T{next(_numbers):05d}-{customer_id}"
    rows = await Case.insert(Case(
        number=number, subject=subject, description=f"{subject}, please help.",
        case_type=case_type, status=status, is_open=status in OPEN_STATUSES,
        customer=customer_id, owner=owner, team=team, resolution_due=resolution_due,
        created_at=now, updated_at=now,
    )).returning(*Case._meta.columns).run()
    return rows[0]


async def new_message(case_id: int, body: str, *, kind: str = "inbound", author_customer=None,
                      author_email: str = "") -> dict:
    from plugins.service.tables import CaseMessage

    rows = await CaseMessage.insert(CaseMessage(
        case=case_id, kind=kind, body=body, author_customer=author_customer,
        author_email=author_email, created_at=datetime.now(UTC),
    )).returning(*CaseMessage._meta.columns).run()
    return rows[0]


__all__ = ["new_case", "new_message", "new_customer"]
