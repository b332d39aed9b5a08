"""What the service plugin does when core merges customers or handles a privacy request.

* ``repoint`` (merge): cases, the customer's own messages, the files they uploaded and their
  knowledge-base feedback move to the surviving customer. Runs inside the merge's transaction.
* ``export``: the customer's cases with the messages they could see (replies and their own
  messages; internal notes are the team's working papers and stay out), metadata of the files
  they could see (never the bytes), ratings, visits and knowledge-base feedback.
* ``erase``: personal text is blanked (subjects, descriptions, message bodies, e-mail
  addresses, comments, visit instructions) while every row, status, date, priority and count
  stays, so backlog and SLA figures keep adding up. Attachment files are deleted from disk,
  but only once the erasure has committed: a ``service.attachments.delete_erased`` job is
  queued in the erasure's transaction (see :func:`delete_files_after_commit`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core import audit
from plugins.service.tables import (
    ArticleFeedback,
    Case,
    CaseAttachment,
    CaseMessage,
    Visit,
)

log = logging.getLogger("rapport.service.privacy")

ERASED_SUBJECT = "[erased]"
ERASED_FILENAME = "erased"
DELETE_ERASED_JOB = "service.attachments.delete_erased"
SWEEP_ORPHANS_JOB = "service.attachments.sweep_orphans"


async def repoint(survivor_id: int, merged_id: int) -> None:
    """Everything of the merged customer's service history now belongs to the survivor."""
    await Case.update({Case.customer: survivor_id}).where(Case.customer == merged_id).run()
    await CaseMessage.update({CaseMessage.author_customer: survivor_id}).where(
        CaseMessage.author_customer == merged_id).run()
    await CaseAttachment.update({CaseAttachment.uploaded_by_customer: survivor_id}).where(
        CaseAttachment.uploaded_by_customer == merged_id).run()
    await ArticleFeedback.update({ArticleFeedback.customer: survivor_id}).where(
        ArticleFeedback.customer == merged_id).run()


def _case_ids_query(customer_id: int):
    return Case.select(Case.id).where(Case.customer == customer_id)


async def export(customer_id: int) -> dict[str, Any]:
    """The customer's service history, JSON-ready after core's ``jsonable``."""
    cases = await Case.select(
        Case.id, Case.number, Case.subject, Case.description, Case.case_type, Case.priority,
        Case.status, Case.channel, Case.product, Case.created_at, Case.updated_at,
        Case.first_responded_at, Case.resolved_at, Case.closed_at, Case.satisfaction,
        Case.satisfaction_comment, Case.rated_at, Case.reopened_count,
    ).where(Case.customer == customer_id).order_by(Case.id).run()
    ids = [c["id"] for c in cases]
    messages: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    if ids:
        messages = await CaseMessage.select(
            CaseMessage.id, CaseMessage.case, CaseMessage.kind, CaseMessage.body,
            CaseMessage.channel, CaseMessage.author_email, CaseMessage.created_at,
        ).where(CaseMessage.case.is_in(ids) & (CaseMessage.kind != "note")).order_by(
            CaseMessage.id).run()
        attachments = await CaseAttachment.select(
            CaseAttachment.id, CaseAttachment.case, CaseAttachment.message,
            CaseAttachment.filename, CaseAttachment.content_type, CaseAttachment.size,
            CaseAttachment.sha256, CaseAttachment.visible_to_customer, CaseAttachment.created_at,
        ).where(CaseAttachment.case.is_in(ids)
                & (CaseAttachment.visible_to_customer == True)  # noqa: E712
                ).order_by(CaseAttachment.id).run()
        visits = await Visit.select(
            Visit.id, Visit.case, Visit.starts_at, Visit.ends_at, Visit.status, Visit.notes,
        ).where(Visit.case.is_in(ids)).order_by(Visit.id).run()
    # Messages the customer wrote on cases that are not theirs (e.g. before a merge).
    elsewhere = await CaseMessage.select(
        CaseMessage.id, CaseMessage.case, CaseMessage.kind, CaseMessage.body,
        CaseMessage.created_at,
    ).where((CaseMessage.author_customer == customer_id)
            & CaseMessage.case.not_in(ids or [0])).order_by(CaseMessage.id).run()
    feedback = await ArticleFeedback.select(
        ArticleFeedback.id, ArticleFeedback.article, ArticleFeedback.article.title,
        ArticleFeedback.helpful, ArticleFeedback.comment, ArticleFeedback.deflected,
        ArticleFeedback.created_at,
    ).where(ArticleFeedback.customer == customer_id).order_by(ArticleFeedback.id).run()
    by_case: dict[int, dict[str, Any]] = {c["id"]: {**c, "messages": [], "attachments": [],
                                                     "visits": []} for c in cases}
    for row in messages:
        by_case[row.pop("case")]["messages"].append(row)
    for row in attachments:
        by_case[row.pop("case")]["attachments"].append(row)
    for row in visits:
        by_case[row.pop("case")]["visits"].append(row)
    return {
        "service_cases": list(by_case.values()),
        "service_messages_on_other_cases": elsewhere,
        "service_ratings": [{"case": c["number"], "score": c["satisfaction"],
                             "comment": c["satisfaction_comment"], "rated_at": c["rated_at"]}
                            for c in cases if c["satisfaction"] is not None],
        "service_kb_feedback": feedback,
    }


async def erase(rapport, customer_id: int) -> None:
    """Blank the personal text of the customer's cases; delete their attachment files after
    the erasure commits. Runs inside core's erasure transaction."""
    case_ids = [r["id"] for r in await _case_ids_query(customer_id).run()]
    files: list[tuple[int, str]] = []
    if case_ids:
        await Case.update({
            Case.subject: ERASED_SUBJECT, Case.description: "", Case.product: "",
            Case.satisfaction_comment: "", Case.thread_id: "",
        }).where(Case.id.is_in(case_ids)).run()
        await CaseMessage.update({CaseMessage.body: "", CaseMessage.author_email: "",
                                  CaseMessage.delivery_detail: ""}).where(
            CaseMessage.case.is_in(case_ids)).run()
        await Visit.update({Visit.notes: ""}).where(Visit.case.is_in(case_ids)).run()
        # Case events stay as they are: they hold statuses, priorities, ids and times only.
        files = [(r["id"], r["path"]) for r in await CaseAttachment.select(
            CaseAttachment.id, CaseAttachment.path).where(
            CaseAttachment.case.is_in(case_ids) & (CaseAttachment.path != "")).run()]
    # Files the customer uploaded to someone else's case (after a merge, say) go too.
    files += [(r["id"], r["path"]) for r in await CaseAttachment.select(
        CaseAttachment.id, CaseAttachment.path).where(
        (CaseAttachment.uploaded_by_customer == customer_id)
        & CaseAttachment.case.not_in(case_ids or [0]) & (CaseAttachment.path != "")).run()]
    if files:
        # The rows stay (counts and sizes still add up); the name, checksum and file go.
        await CaseAttachment.update({CaseAttachment.filename: ERASED_FILENAME,
                                     CaseAttachment.sha256: "", CaseAttachment.path: ""}).where(
            CaseAttachment.id.is_in([i for i, _ in files])).run()
    await CaseMessage.update({CaseMessage.body: "", CaseMessage.author_email: ""}).where(
        CaseMessage.author_customer == customer_id).run()
    await ArticleFeedback.update({ArticleFeedback.comment: ""}).where(
        ArticleFeedback.customer == customer_id).run()
    # The audit trail of these rows held the same words.
    if case_ids:
        await audit.redact(Case._meta.tablename, case_ids)
        message_ids = [r["id"] for r in await CaseMessage.select(CaseMessage.id).where(
            CaseMessage.case.is_in(case_ids)).run()]
        await audit.redact(CaseMessage._meta.tablename, message_ids)
        visit_ids = [r["id"] for r in await Visit.select(Visit.id).where(
            Visit.case.is_in(case_ids)).run()]
        await audit.redact(Visit._meta.tablename, visit_ids)
    if files:
        await audit.redact(CaseAttachment._meta.tablename, [i for i, _ in files])
        await delete_files_after_commit(rapport, files)


# --- deleting files only once the erasure has committed --------------------------------------


async def delete_files_after_commit(rapport, files: list[tuple[int, str]]) -> int:
    """Queue the deletion of attachment files, to happen once the erasure has committed.

    Deleting a file inside the transaction would lose it if the transaction then rolled back.
    The job joins the erasure's transaction, so it exists if and only if the erasure
    committed, and it survives a restart. Returns the job's id.
    """
    from core import jobs

    return await jobs.enqueue(rapport, DELETE_ERASED_JOB,
                              {"files": [[i, p] for i, p in files]})


async def delete_erased_files(rapport, job) -> None:
    """The ``service.attachments.delete_erased`` job. Idempotent: a file already gone is
    skipped, and a file a row points at again (never expected) is kept."""
    files = [(int(i), str(p)) for i, p in job.args.get("files", [])]
    if not files:
        return
    data_dir = Path(rapport.settings.data_dir)
    still = {r["path"] for r in await CaseAttachment.select(CaseAttachment.path).where(
        CaseAttachment.path.is_in([p for _, p in files])).run()}
    removed = sum(1 for _, p in files if p not in still and _unlink_inside(data_dir, p))
    if removed:
        log.info("deleted %d attachment files of an erased customer", removed)


def _unlink_inside(data_dir: Path, relative: str) -> bool:
    path = (data_dir / relative).resolve()
    if not path.is_relative_to(data_dir.resolve()):
        return False  # a path that escapes the data directory is never ours to delete
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


async def sweep_orphan_files(rapport, *, older_than_seconds: float = 3600) -> int:
    """Delete files under ``<data dir>/service/attachments`` that no attachment row points at
    and that are older than ``older_than_seconds`` (younger ones may belong to an upload whose
    row is still being written). Returns how many were deleted."""
    import time

    data_dir = Path(rapport.settings.data_dir)
    root = data_dir / "service" / "attachments"
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    candidates = [p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff]
    removed = 0
    for start in range(0, len(candidates), 500):
        chunk = candidates[start:start + 500]
        relative = [str(p.relative_to(data_dir)) for p in chunk]
        known = {r["path"] for r in await CaseAttachment.select(CaseAttachment.path).where(
            CaseAttachment.path.is_in(relative)).run()}
        for path, rel in zip(chunk, relative, strict=True):
            if rel not in known:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


async def sweep_orphans_job(rapport, job) -> None:
    """The daily ``service.attachments.sweep_orphans`` job: files no row points at (an upload
    that failed half-way, a crash) are deleted after an hour."""
    removed = await sweep_orphan_files(rapport)
    if removed:
        log.info("deleted %d attachment files no case points at", removed)
