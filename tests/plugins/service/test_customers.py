"""Merging customers keeps every case; a privacy export holds the service history; an erasure
removes the personal text and files but keeps counts and dates (files only once committed)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from core import jobs
from core.jobs_tables import JobRow
from tests.conftest import connected
from tests.plugins.service.visits_helpers import new_case, new_customer, new_message


@pytest.fixture
async def rapport(service_rapport):
    async with connected(service_rapport):
        yield service_rapport


async def _attachment(rapport, case_id: int, name: str, *, customer=None, data=b"hello"):
    from plugins.service.tables import CaseAttachment

    relative = f"service/attachments/{case_id}-{name}"
    path = rapport.settings.data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rows = await CaseAttachment.insert(CaseAttachment(
        case=case_id, filename=name, content_type="text/plain", size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), path=relative,
        uploaded_by_customer=customer)).returning(CaseAttachment.id).run()
    return rows[0]["id"], path


async def _article() -> int:
    from plugins.service.tables import Article

    rows = await Article.insert(Article(title="Resetting the boiler", slug="reset-boiler",
                                        audience="public")).returning(Article.id).run()
    return rows[0]["id"]


async def test_merge_moves_every_case_message_file_and_feedback_to_the_survivor(rapport):
    from core.customers.merge import merge_customers
    from plugins.service.tables import ArticleFeedback, Case, CaseAttachment, CaseMessage

    survivor = await new_customer("Ada Lovelace")
    merged = await new_customer("A. Lovelace")
    kept = await new_case(survivor, subject="Printer jam")
    moved = [await new_case(merged, subject=f"Heater {i}") for i in range(3)]
    # The merged customer also wrote on the survivor's case and uploaded a file there.
    await new_message(kept["id"], "Same problem here", author_customer=merged)
    await _attachment(rapport, kept["id"], "photo.txt", customer=merged)
    await ArticleFeedback.insert(ArticleFeedback(article=await _article(), helpful=True,
                                                 customer=merged)).run()

    await merge_customers(rapport, None, survivor, merged)

    cases = await Case.select(Case.id).where(Case.customer == survivor).run()
    assert sorted(c["id"] for c in cases) == sorted([kept["id"]] + [c["id"] for c in moved])
    assert await Case.count().run() == 4
    assert await CaseMessage.count().where(CaseMessage.author_customer == survivor).run() == 1
    assert await CaseAttachment.count().where(
        CaseAttachment.uploaded_by_customer == survivor).run() == 1
    assert await ArticleFeedback.count().where(ArticleFeedback.customer == survivor).run() == 1


async def test_export_holds_cases_visible_messages_files_and_ratings_not_internal_notes(rapport):
    from core.privacy.service import export_customer
    from plugins.service.tables import Case

    customer = await new_customer("Grace Hopper")
    case = await new_case(customer, subject="Moth in the relay", status="resolved")
    await Case.update({Case.satisfaction: 4, Case.satisfaction_comment: "Quick fix"}).where(
        Case.id == case["id"]).run()
    await new_message(case["id"], "There is a moth", author_customer=customer)
    await new_message(case["id"], "We removed it", kind="reply")
    await new_message(case["id"], "Customer sounded annoyed", kind="note")
    await _attachment(rapport, case["id"], "moth.txt", customer=customer)

    data = await export_customer(rapport, customer)

    [exported] = data["sections"]["service_cases"]
    assert exported["subject"] == "Moth in the relay"
    bodies = [m["body"] for m in exported["messages"]]
    assert bodies == ["There is a moth", "We removed it"]
    assert "Customer sounded annoyed" not in str(data)
    assert [a["filename"] for a in exported["attachments"]] == ["moth.txt"]
    assert data["sections"]["service_ratings"] == [
        {"case": case["number"], "score": 4, "comment": "Quick fix",
         "rated_at": None}]


async def test_erasure_blanks_personal_text_deletes_files_after_commit_keeps_counts(rapport):
    from core.privacy.service import erase_customer
    from plugins.service import customers
    from plugins.service.tables import Case, CaseAttachment, CaseMessage

    customer = await new_customer("Alan Turing", email="alan@example.test")
    other = await new_customer("Someone Else")
    opened = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    cases = [await new_case(customer, subject=f"Enigma {i}", created_at=opened + timedelta(days=i))
             for i in range(2)]
    await new_message(cases[0]["id"], "My address is 1 Bletchley Park",
                      author_customer=customer, author_email="alan@example.test")
    await new_message(cases[0]["id"], "Noted, Alan", kind="reply")
    _, own_file = await _attachment(rapport, cases[0]["id"], "passport.txt", customer=customer)
    untouched = await new_case(other, subject="Unrelated")
    _, other_file = await _attachment(rapport, untouched["id"], "other.txt")

    await erase_customer(rapport, None, customer)
    assert own_file.exists()  # deleted by a job queued with the erasure, not in its transaction
    await jobs.run_pending(rapport)

    rows = await Case.select().where(Case.customer == customer).order_by(Case.id).run()
    assert len(rows) == 2  # counts stay
    assert [r["created_at"] for r in rows] == [c["created_at"] for c in cases]  # dates stay
    assert {r["subject"] for r in rows} == {customers.ERASED_SUBJECT}
    assert all(r["description"] == "" for r in rows)
    messages = await CaseMessage.select().where(CaseMessage.case == cases[0]["id"]).run()
    assert len(messages) == 2
    assert all(m["body"] == "" and m["author_email"] == "" for m in messages)
    files = await CaseAttachment.select().where(CaseAttachment.case == cases[0]["id"]).run()
    assert len(files) == 1 and files[0]["size"] == 5 and files[0]["path"] == ""
    assert not own_file.exists()
    assert other_file.exists()  # another customer's file is not touched
    assert (await Case.select(Case.subject).where(Case.id == untouched["id"]).first().run()
            )["subject"] == "Unrelated"


async def test_a_rolled_back_erasure_leaves_the_files_in_place(rapport):
    from plugins.service import customers
    from plugins.service.tables import Case, CaseAttachment

    customer = await new_customer("Barbara Liskov")
    case = await new_case(customer, subject="Substitution")
    _, path = await _attachment(rapport, case["id"], "contract.txt", customer=customer)

    with pytest.raises(RuntimeError):
        async with Case._meta.db.transaction():
            await customers.erase(rapport, customer)
            raise RuntimeError("a later step of the erasure failed")
    await jobs.run_pending(rapport)
    assert not await JobRow.exists().where(JobRow.name == customers.DELETE_ERASED_JOB).run()

    assert path.exists()
    row = await CaseAttachment.select().where(CaseAttachment.case == case["id"]).first().run()
    assert row["filename"] == "contract.txt" and row["path"]


async def test_orphan_sweep_removes_only_old_files_no_row_points_at(rapport):
    from plugins.service import customers

    customer = await new_customer("Edsger Dijkstra")
    case = await new_case(customer)
    _, kept = await _attachment(rapport, case["id"], "kept.txt")
    orphan = rapport.settings.data_dir / "service" / "attachments" / "orphan.txt"
    orphan.write_bytes(b"left behind")

    assert await customers.sweep_orphan_files(rapport, older_than_seconds=0) == 1
    assert kept.exists() and not orphan.exists()
