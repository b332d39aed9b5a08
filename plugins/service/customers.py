"""What the service plugin does when core merges customers or handles a privacy request.

* ``repoint`` (merge): cases, the customer's own messages, the files they uploaded and their
  knowledge-base feedback move to the surviving customer. Runs inside the merge's transaction.
* ``export``: the customer's cases with the messages they could see (replies and their own
  messages; internal notes are the team's working papers and stay out), metadata of the files
  they could see (never the bytes), ratings, visits and knowledge-base feedback.
* ``erase``: personal text is blanked (subjects, descriptions, message bodies, e-mail
  addresses, comments, visit instructions) while every row, status, date, priority and count
  stays, so backlog and SLA figures keep adding up. Attachment files are deleted from disk,
  but only once the erasure has committed (see :func:`delete_files_after_commit`).
"""

from __future__ import annotations

import asyncio
import contextvars
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
# How long the after-commit file deletion waits for the erasure's transaction to finish
# before giving up (the files then stay: a rollback must never lose them). The orphan sweep
# (``sweep_orphan_files``) removes whatever a give-up or a crash left behind.
COMMIT_WAIT_SECONDS = 120.0
_pending: set[asyncio.Task] = set()


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
        delete_files_after_commit(rapport, files)


# --- deleting files only once the erasure has committed --------------------------------------


def delete_files_after_commit(rapport, files: list[tuple[int, str]]) -> asyncio.Task:
    """Delete attachment files once the rows that pointed at them are committed as blanked.

    Core has no after-commit hook, and deleting a file inside the transaction would lose it
    if the transaction then rolled back. So a background task, started in an empty context
    (outside the erasure's transaction: it sees only committed data), waits until no row of
    ``service_attachment`` points at these paths any more, then deletes the files. If the
    rows still point at them after ``COMMIT_WAIT_SECONDS`` (the erasure rolled back, or is
    very slow), the files are kept; ``sweep_orphan_files`` removes any file no row points at.
    """
    data_dir = Path(rapport.settings.data_dir)
    task = asyncio.get_running_loop().create_task(
        _delete_when_committed(data_dir, files), context=contextvars.Context())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


async def _delete_when_committed(data_dir: Path, files: list[tuple[int, str]]) -> int:
    ids = [i for i, _ in files]
    paths = [p for _, p in files]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + COMMIT_WAIT_SECONDS
    delay = 0.02
    while True:
        try:
            still = await CaseAttachment.exists().where(
                CaseAttachment.id.is_in(ids) & CaseAttachment.path.is_in(paths)).run()
        except Exception:  # the database went away (shutdown): keep the files, sweep later
            log.warning("could not confirm the erasure of %d attachment files", len(files))
            return 0
        if not still:
            break
        if loop.time() > deadline:
            log.warning("erasure not committed after %ss; %d attachment files kept for the "
                        "orphan sweep", COMMIT_WAIT_SECONDS, len(files))
            return 0
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    removed = 0
    for relative in paths:
        if _unlink_inside(data_dir, relative):
            removed += 1
    return removed


def _unlink_inside(data_dir: Path, relative: str) -> bool:
    path = (data_dir / relative).resolve()
    if not path.is_relative_to(data_dir.resolve()):
        return False  # a path that escapes the data directory is never ours to delete
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


async def wait_for_pending_deletions() -> None:
    """Wait for the after-commit deletions started so far (tests, shutdown)."""
    if _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


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
