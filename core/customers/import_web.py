"""Staff pages (and API endpoints) for bringing customer data in and keeping it clean:
likely duplicates, merging, CSV and vCard import, vCard export."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import File, Redirect, Stream, Template

from core.api_schemas import ID, accepts, array, obj, text
from core.audit import client_ip
from core.customers import custom_fields, duplicates, importing, merge
from core.customers.service import CustomerNotFound
from core.input_limits import IMPORT_KEEP_HOURS, IMPORT_MAX_UPLOAD_BYTES
from core.permissions import current_actor

log = logging.getLogger("rapport.import")


# --- likely duplicates -----------------------------------------------------------------------


def _values_from(params: Any) -> dict[str, Any]:
    keys = ("kind", "name", "first_name", "last_name", "account", "emails", "phones", "email",
            "phone")
    return {k: params.get(k) for k in keys if params.get(k)}


@get("/customers/duplicates", name="customer-duplicates",
     opt={"permission": "core.customer.view"})
async def duplicates_page(request: Request) -> Template:
    """Groups of customers that share an email, a phone or a name at the same account."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    groups = await duplicates.duplicate_groups(rapport, actor)
    return Template("customers/merge_candidates.html", context={
        "groups": groups, "may_merge": actor.can("core.customer.edit")})


@get("/customers/duplicates/check", opt={"permission": "core.customer.create"},
     include_in_schema=False)
async def duplicates_check(request: Request) -> Template:
    """The warning a new-customer form shows (htmx) while its fields are filled in."""
    rapport = request.app.state.rapport
    values = _values_from(request.query_params)
    exclude = request.query_params.get("exclude")
    found = await duplicates.likely_duplicates(
        rapport, current_actor(request), values,
        exclude_id=int(exclude) if exclude and exclude.isdigit() else None)
    return Template("customers/merge_warning.html", context={"duplicates": found})


@get("/api/v1/customers/duplicates", opt={"permission": "core.customer.create"})
async def duplicates_api(
    request: Request,
    kind: Annotated[str | None, QueryParameter(description="account or contact")] = None,
    name: Annotated[str | None, QueryParameter()] = None,
    first_name: Annotated[str | None, QueryParameter()] = None,
    last_name: Annotated[str | None, QueryParameter()] = None,
    account: Annotated[int | None, QueryParameter(description="the contact's account id")] = None,
    email: Annotated[list[str] | None, QueryParameter()] = None,
    phone: Annotated[list[str] | None, QueryParameter()] = None,
) -> dict[str, Any]:
    """Likely duplicates of a customer about to be created: the same email, the same phone
    (normalised) or a close name at the same account. Matches outside the caller's scope
    have ``customer_id: null``."""
    values = {"kind": kind, "name": name, "first_name": first_name, "last_name": last_name,
              "account": account, "emails": email or [], "phones": phone or []}
    found = await duplicates.likely_duplicates(request.app.state.rapport,
                                               current_actor(request), values)
    return {"duplicates": [asdict(d) for d in found]}


# --- merging ---------------------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationException(f"{name} must be a customer id") from None


@get("/customers/merge", name="customer-merge", opt={"permission": "core.customer.edit"})
async def merge_preview_page(request: Request) -> Template:
    """Both records side by side; pick which value of each field survives."""
    rapport = request.app.state.rapport
    survivor = _int(request.query_params.get("survivor"), "survivor")
    merged = _int(request.query_params.get("merged"), "merged")
    try:
        preview = await merge.preview_merge(rapport, current_actor(request), survivor, merged)
    except CustomerNotFound:
        raise NotFoundException("no such customer") from None
    except merge.MergeError as exc:
        return Template("customers/merge_error.html", context={"message": exc.message},
                        status_code=400)
    return Template("customers/merge.html", context={"preview": preview})


@post("/customers/merge", opt={"permission": "core.customer.edit"}, status_code=303)
async def merge_execute(request: Request) -> Redirect | Template:
    rapport = request.app.state.rapport
    form = await request.form()
    survivor = _int(form.get("survivor"), "survivor")
    merged = _int(form.get("merged"), "merged")
    take = {name for name in merge.MERGEABLE_FIELDS if form.get(f"take_{name}") == "merged"}
    try:
        await merge.merge_customers(rapport, current_actor(request), survivor, merged,
                                    take_from_merged=take, ip=client_ip(request))
    except CustomerNotFound:
        raise NotFoundException("no such customer") from None
    except merge.MergeError as exc:
        return Template("customers/merge_error.html", context={"message": exc.message},
                        status_code=400)
    return Redirect(f"/customers/{survivor}?merged={merged}", status_code=303)


@accepts(obj({"merged_id": ID, "take_from_merged": array(text(64), max_items=100)},
             required=["merged_id"], closed=True))
@post("/api/v1/customers/{survivor_id:int}/merge", opt={"permission": "core.customer.edit"},
      status_code=200)
async def merge_api(request: Request, survivor_id: FromPath[int],
                    data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Merge ``merged_id`` into this customer. Body: ``{"merged_id": 12, "take_from_merged":
    ["job_title"]}``. Needs core.customer.edit on both (404 otherwise)."""
    try:
        merged_id = int(data.get("merged_id"))
    except (TypeError, ValueError):
        raise ValidationException("merged_id must be a customer id",
                                  extra=[{"key": "merged_id", "message": "required"}]) from None
    try:
        row = await merge.merge_customers(
            request.app.state.rapport, current_actor(request), survivor_id, merged_id,
            take_from_merged=set(data.get("take_from_merged") or ()), ip=client_ip(request))
    except CustomerNotFound:
        raise NotFoundException("no such customer") from None
    except merge.MergeError as exc:
        raise ValidationException(exc.message, extra=[{"key": exc.field,
                                                       "message": exc.message}]) from None
    return {"id": row["id"], "name": row["name"], "merged_id": merged_id}


# --- import ----------------------------------------------------------------------------------
# An upload is a set of files in the data directory's imports/ folder, named by a random token:
# <token>.data (the file as uploaded), <token>.json (its state: what the pages show),
# <token>.report.json (the last check's or import's report), <token>.bad.csv (its bad rows).
# Checking and importing run as jobs (core.customers.import), never in a request: a worker
# reads the file a chunk at a time, off the event loop. Uploads left unimported are deleted by
# core.customers.import_cleanup after IMPORT_KEEP_HOURS.

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
IMPORT_JOB = "core.customers.import"
CLEANUP_JOB = "core.customers.import_cleanup"
MAX_UPLOAD = IMPORT_MAX_UPLOAD_BYTES
HEAD_BYTES = 64 * 1024  # what the mapping page reads: the header and a few example rows
BUSY = ("checking", "running")


def _imports_dir(request: Request) -> Path:
    return _imports_dir_of(request.app.state.rapport)


def _imports_dir_of(rapport: Any) -> Path:
    directory = Path(rapport.settings.data_dir) / "imports"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


def _job(request: Request, token: str) -> tuple[Path, dict[str, Any]]:
    """The uploaded file and its state; someone else's upload is "not found"."""
    if not _TOKEN.match(token):
        raise NotFoundException("no such import")
    meta_path = _imports_dir(request) / f"{token}.json"
    if not meta_path.exists():
        raise NotFoundException("no such import")
    meta = json.loads(meta_path.read_text())
    if meta.get("user_id") != current_actor(request).id:
        raise NotFoundException("no such import")
    return _imports_dir(request) / f"{token}.data", meta


def _progress_page(request: Request, token: str, meta: dict[str, Any]) -> Template:
    name = "import_status" if request.headers.get("hx-request") else "import_progress"
    return Template(f"customers/{name}.html", context={"token": token, "meta": meta})


def _save_meta(request: Request, token: str, meta: dict[str, Any]) -> None:
    _write_meta(request.app.state.rapport, token, meta)


def _write_meta(rapport: Any, token: str, meta: dict[str, Any]) -> None:
    path = _imports_dir_of(rapport) / f"{token}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(meta))
    temporary.replace(path)  # atomic: a progress poll never reads half a file


def _write_report(rapport: Any, token: str, report: dict[str, Any]) -> None:
    path = _imports_dir_of(rapport) / f"{token}.report.json"
    temporary = path.with_suffix(".rtmp")
    temporary.write_text(json.dumps(report))
    temporary.replace(path)


def _read_report(rapport: Any, token: str) -> dict[str, Any] | None:
    path = _imports_dir_of(rapport) / f"{token}.report.json"
    return json.loads(path.read_text()) if path.exists() else None


def _head_text(path: Path) -> str:
    """The first lines of an uploaded CSV file as text (for the mapping page): UTF-8, else
    Windows-1252; the whole file's encoding is checked by the check job."""
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        if stream.read(1):
            head = head[:head.rfind(b"\n") + 1] or head
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return head.decode("cp1252", errors="replace")


def _save_upload(upload: Any, target: Path) -> tuple[int, bytes]:
    """Copy the uploaded file to ``target`` a megabyte at a time (run in a thread); returns
    its size and first bytes."""
    source = upload.file
    source.seek(0)
    size, head = 0, b""
    with target.open("wb") as out:
        while chunk := source.read(1024 * 1024):
            if not head:
                head = chunk[:4096]
            out.write(chunk)
            size += len(chunk)
    return size, head


@get("/customers/import", name="customer-import", opt={"permission": "core.customer.create"})
async def import_page(request: Request) -> Template:
    return Template("customers/import.html", context={"error": None})


@post("/customers/import", opt={"permission": "core.customer.create"}, status_code=303,
      request_max_body_size=MAX_UPLOAD)
async def import_upload(request: Request) -> Redirect | Template:
    """Step 1: keep the uploaded file (in the data directory) and go on to the mapping."""
    form = await request.form()
    upload = form.get("file")
    kind = form.get("kind") if form.get("kind") in ("contact", "account") else "contact"
    token = secrets.token_urlsafe(24)
    target = _imports_dir(request) / f"{token}.data"
    size, head = (await asyncio.to_thread(_save_upload, upload, target)
                  if hasattr(upload, "file") else (0, b""))
    if not head.strip():
        target.unlink(missing_ok=True)
        return Template("customers/import.html", status_code=400,
                        context={"error": "Choose a CSV or vCard (.vcf) file to import."})
    filename = Path(getattr(upload, "filename", "") or "upload.csv").name
    is_vcard = filename.lower().endswith((".vcf", ".vcard")) or \
        head.lstrip(b"\xef\xbb\xbf \r\n\t").upper().startswith(b"BEGIN:VCARD")
    _save_meta(request, token, {
        "user_id": current_actor(request).id, "filename": filename, "size": size,
        "format": "vcard" if is_vcard else "csv", "kind": "contact" if is_vcard else kind,
        "mapping": None, "state": "uploaded"})
    if is_vcard:
        return Redirect(f"/customers/import/{token}/check", status_code=303)
    return Redirect(f"/customers/import/{token}/mapping", status_code=303)


@get("/customers/import/{token:str}/mapping", opt={"permission": "core.customer.create"})
async def import_mapping_page(request: Request, token: FromPath[str]) -> Template:
    """Step 2: which column goes into which field (guessed from the headers)."""
    path, meta = _job(request, token)
    kind = meta["kind"]
    try:
        header, rows = importing.read_csv(await asyncio.to_thread(_head_text, path))
    except importing.ImportFileError as exc:
        return Template("customers/import.html", status_code=400,
                        context={"error": f"This file cannot be imported: {exc}."})
    samples = [cells for _, cells in itertools.islice(rows, 3)
               if not isinstance(cells, importing.BrokenRow)]
    defs = await custom_fields.field_definitions(kind)
    guessed = meta.get("mapping") or importing.guess_mapping(header, kind, defs)
    fields = {k: v for k, v in importing.FIELDS.items()
              if kind == "contact" or k not in importing.CONTACT_ONLY}
    fields.update({d.form_name: f"{d.label} (custom)" for d in defs})
    columns = [{"index": i, "header": h, "field": guessed.get(h, ""),
                "samples": [s[i][:80] for s in samples if i < len(s)]}
               for i, h in enumerate(header)]
    return Template("customers/import_mapping.html", context={
        "token": token, "meta": meta, "columns": columns, "fields": fields, "error": None})


async def _start(request: Request, token: str, meta: dict[str, Any], step: str) -> None:
    """Queue the check or the import of an upload as a job; the pages follow its state."""
    from core import jobs

    rapport = request.app.state.rapport
    state = "checking" if step == "check" else "running"
    meta.update(state=state, done=0, total=0, phase="waiting", message="",
                started_at=datetime.now(UTC).isoformat())
    _save_meta(request, token, meta)  # before the job exists: a worker elsewhere may start it
    job_id = await jobs.enqueue(rapport, IMPORT_JOB, {"token": token, "step": step})
    _, meta = _job(request, token)  # as the job may have left it by now
    meta["check_job_id" if step == "check" else "job_id"] = job_id
    _save_meta(request, token, meta)


@post("/customers/import/{token:str}/check", opt={"permission": "core.customer.create"},
      status_code=303)
async def import_check(request: Request, token: FromPath[str]) -> Redirect:
    """Step 3 (CSV): save the mapping and check every row (a job); the check page follows."""
    path, meta = _job(request, token)
    if meta["state"] not in BUSY + ("done",):
        form = await request.form()
        header, _ = importing.read_csv(await asyncio.to_thread(_head_text, path))
        meta["mapping"] = {h: str(form.get(f"map_{i}") or "") for i, h in enumerate(header)}
        await _start(request, token, meta, "check")
    return Redirect(f"/customers/import/{token}/check", status_code=303)


@get("/customers/import/{token:str}/check", opt={"permission": "core.customer.create"})
async def import_check_page(request: Request, token: FromPath[str]) -> Template:
    """Step 3: the check's progress, then its report: how many rows are good, bad and
    duplicates, with the choice of what duplicates do, before anything is written."""
    _, meta = _job(request, token)
    rapport = request.app.state.rapport
    if meta["state"] == "uploaded":
        await _start(request, token, meta, "check")  # a vCard file goes straight to the check
        _, meta = _job(request, token)
    meta = await _truthful(rapport, token, meta)
    if meta["state"] != "checked":
        return _progress_page(request, token, meta)
    report = _read_report(rapport, token) or {}
    return Template("customers/import_report.html", status_code=400 if report.get("error")
                    else 200, context={"token": token, "meta": meta, "report": report,
                                       "error": report.get("error")})


@post("/customers/import/{token:str}/commit", opt={"permission": "core.customer.create"},
      status_code=202)
async def import_commit(request: Request, token: FromPath[str]) -> Template:
    """Step 4: queue the import of the good rows as a job (one transaction) and show its
    progress. ``on_duplicate``: skip, update or new (what rows matching a customer do)."""
    _, meta = _job(request, token)
    if meta["state"] in BUSY + ("done",):
        return _progress_page(request, token, meta)
    if meta["state"] != "checked":
        raise ValidationException("check the file before importing it")
    form = await request.form()
    choice = str(form.get("on_duplicate") or "skip")
    if choice not in importing.DUPLICATE_CHOICES:
        raise ValidationException("on_duplicate: choose skip, update or new",
                                  extra=[{"key": "on_duplicate", "message": "unknown choice"}])
    meta["on_duplicate"] = choice
    await _start(request, token, meta, "import")
    _, meta = _job(request, token)
    return _progress_page(request, token, meta)


@get("/customers/import/{token:str}/bad-rows.csv", opt={"permission": "core.customer.create"},
     include_in_schema=False)
async def import_bad_rows(request: Request, token: FromPath[str]) -> File:
    """The bad rows of the last check or import, as the file had them plus a column saying
    what is wrong: fix them there and import that file."""
    _, meta = _job(request, token)
    path = _imports_dir(request) / f"{token}.bad.csv"
    if not path.exists():
        raise NotFoundException("no bad rows")
    name = Path(meta["filename"]).stem + "-bad-rows.csv"
    return File(path=path, filename=name, media_type="text/csv; charset=utf-8")


async def _committed_before(meta: dict[str, Any]) -> dict[str, int] | None:
    """What an earlier attempt of this import wrote ({created, updated, skipped, bad}), None
    if it wrote nothing.

    The import's audit entry is written in the import's own transaction, so it exists if and
    only if that attempt committed: a worker that died after the commit but before saving the
    state leaves this to tell the next attempt not to import the file twice."""
    from core.audit import AuditEntry

    since = datetime.fromisoformat(meta["started_at"])
    row = await AuditEntry.select(AuditEntry.changes).where(
        (AuditEntry.action == "import") & (AuditEntry.record_type == "core_customer")
        & (AuditEntry.actor_id == meta["user_id"]) & (AuditEntry.occurred_at >= since)
        & AuditEntry.summary.like(f"%from {meta['filename']}")).first().run()
    if row is None:
        return None
    changes = json.loads(row["changes"] or "{}")

    def count(key: str) -> int:
        return int((changes.get(key) or [None, 0])[1] or 0)

    return {"created": count("rows"), "updated": count("updated"),
            "skipped": count("skipped"), "bad": count("bad")}


def _outcome(report: importing.ImportReport) -> dict[str, Any]:
    return {"created": report.created, "updated": report.updated, "skipped": report.skipped,
            "bad": report.bad}


async def run_import(rapport: Any, job: Any) -> None:
    """The ``core.customers.import`` job: check an uploaded file (``step: check``) or import
    its good rows in one transaction (``step: import``), keeping its state file (what the
    pages show) true. Run again after a crash, it imports only if the earlier attempt did not
    commit."""
    token = str(job.args.get("token", ""))
    step = str(job.args.get("step", "import"))
    if not _TOKEN.match(token):
        return
    directory = _imports_dir_of(rapport)
    meta_path = directory / f"{token}.json"
    if not meta_path.exists():
        return  # deleted meanwhile: nothing to do
    meta = json.loads(meta_path.read_text())
    if meta.get("state") != ("checking" if step == "check" else "running"):
        return  # finished before (this is a repeat)
    if job.attempt > job.max_attempts:
        # Its worker died on every attempt (killed, or out of memory): stop trying.
        meta.update(state="failed", message=f"The {'check' if step == 'check' else 'import'} "
                    f"was interrupted {job.attempt - 1} times before it could finish; nothing "
                    "was written.")
        _write_meta(rapport, token, meta)
        return
    if step == "import":
        before = await _committed_before(meta)
        if before is not None:
            meta.update(state="done", **before)
            _write_meta(rapport, token, meta)
            (directory / f"{token}.data").unlink(missing_ok=True)
            return
    from core.identity.users import load_actor

    actor = await load_actor(rapport, int(meta["user_id"]))
    if actor is None:
        meta.update(state="failed", message="The import was not run: the account that started "
                                            "it is no longer active. Nothing was written.")
        _write_meta(rapport, token, meta)
        return
    try:
        report = await _run_step(rapport, actor, token, meta, step)
    except (importing.ImportFileError, FileNotFoundError) as exc:
        # Trying again cannot help: say so now (nothing was written).
        if step == "check":
            _write_report(rapport, token, {"error": f"This file cannot be imported: {exc}."})
            meta.update(state="checked")
        else:
            meta.update(state="failed", message=f"The import failed and nothing was "
                                                f"written: {exc}")
        _write_meta(rapport, token, meta)
        return
    except Exception as exc:
        log.exception("import %s (%s) failed (attempt %s of %s)", token, step, job.attempt,
                      job.max_attempts)
        if job.attempt >= job.max_attempts:
            meta.update(state="failed", message=f"The {'check' if step == 'check' else 'import'}"
                                                f" failed and nothing was written: {exc}")
            _write_meta(rapport, token, meta)
        raise
    _write_report(rapport, token, report.as_dict())
    if step == "check":
        meta.update(state="checked", done=report.rows, total=report.rows)
    elif report.committed:
        meta.update(state="done", done=report.rows, total=report.rows, **_outcome(report))
        (directory / f"{token}.data").unlink(missing_ok=True)
    else:
        meta.update(state="failed", message="No row could be imported; nothing was written.",
                    **_outcome(report))
    _write_meta(rapport, token, meta)


async def _run_step(rapport: Any, actor: Any, token: str, meta: dict[str, Any], step: str
                    ) -> importing.ImportReport:
    """One check or import, reading the file as it goes; the bad rows land in
    <token>.bad.csv and the progress in the state file (a few times a second at most)."""
    directory = _imports_dir_of(rapport)
    path, bad_path = directory / f"{token}.data", directory / f"{token}.bad.csv"
    dry_run = step == "check"
    on_duplicate = "new" if dry_run else meta.get("on_duplicate", "skip")
    last = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.25:
            last[0] = now
            meta.update(phase=phase, done=done, total=0)
            _write_meta(rapport, token, meta)

    if meta["format"] == "vcard":
        from core.customers.vcard import import_vcard

        text = importing.decode(await asyncio.to_thread(path.read_bytes))
        return await import_vcard(rapport, actor, text, dry_run=dry_run, partial=True,
                                  on_duplicate=on_duplicate, source=meta["filename"],
                                  progress=progress)
    stream = await asyncio.to_thread(importing.open_csv, path)
    temporary = bad_path.with_suffix(".tmp")
    try:
        with stream, temporary.open("w", newline="", encoding="utf-8") as bad:
            report = await importing.import_csv(
                rapport, actor, meta["kind"], stream, meta["mapping"], dry_run=dry_run,
                partial=True, on_duplicate=on_duplicate, source=meta["filename"],
                progress=progress, bad_rows=bad)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if report.bad:
        temporary.replace(bad_path)
    else:
        temporary.unlink(missing_ok=True)
        bad_path.unlink(missing_ok=True)
    return report


async def _truthful(rapport: Any, token: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The state file says "checking" or "running" until the job writes otherwise; if the job
    itself ended without writing (it failed for good, was cancelled by an administrator, or
    its worker stopped for good), say so instead of a progress bar that never moves."""
    state = meta.get("state")
    job_id = meta.get("check_job_id" if state == "checking" else "job_id")
    if state not in BUSY or not job_id:
        return meta
    from core.jobs_tables import CANCELLED, DONE, FAILED, JobRow

    what = "check" if state == "checking" else "import"
    row = await JobRow.select(JobRow.status, JobRow.locked_until, JobRow.attempts).where(
        JobRow.id == job_id).first().run()
    if row is not None and row["status"] == DONE:
        # The job ended but its last word was lost (a race with the page): ask the database.
        before = await _committed_before(meta) if state == "running" else None
        if before is None:
            meta.update(state="failed", message=f"The {what} stopped; nothing was written.")
        else:
            meta.update(state="done", **before)
        _write_meta(rapport, token, meta)
    elif row is None or row["status"] in (FAILED, CANCELLED):
        why = ("it was cancelled" if row is not None and row["status"] == CANCELLED
               else "it failed")
        meta.update(state="failed", message=f"The {what} stopped ({why}); nothing was written.")
        _write_meta(rapport, token, meta)
    elif row["status"] == "running" and row["locked_until"] is not None and \
            row["locked_until"] < datetime.now(UTC):
        meta = {**meta, "phase": "resuming"}  # its worker stopped; another takes it over
    elif row["status"] == "queued" and row["attempts"]:
        meta = {**meta, "phase": "resuming"}
    return meta


@get("/customers/import/{token:str}/progress", opt={"permission": "core.customer.create"},
     include_in_schema=False)
async def import_progress(request: Request, token: FromPath[str]) -> Template:
    _, meta = _job(request, token)
    meta = await _truthful(request.app.state.rapport, token, meta)
    headers = {"HX-Refresh": "true"} if meta["state"] == "checked" else {}
    return Template("customers/import_status.html", context={"token": token, "meta": meta},
                    headers=headers)


async def cleanup_imports(rapport: Any, job: Any) -> None:
    """The ``core.customers.import_cleanup`` job (hourly): delete uploads nobody touched for
    IMPORT_KEEP_HOURS (abandoned at the mapping or the check, or imported and done), and
    stray temporary files; a check or import whose job is still queued or running stays."""
    from core.jobs_tables import JobRow

    directory = _imports_dir_of(rapport)
    cutoff = time.time() - IMPORT_KEEP_HOURS * 3600
    files: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        files.setdefault(path.name.split(".", 1)[0], []).append(path)
    busy_jobs: set[int] = set()
    candidates = []
    for token, paths in files.items():
        try:
            newest = max(p.stat().st_mtime for p in paths)
        except FileNotFoundError:
            continue
        if newest >= cutoff:
            continue
        meta_path = directory / f"{token}.json"
        meta = {}
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except ValueError:
                meta = {}
        job_id = meta.get("check_job_id" if meta.get("state") == "checking" else "job_id")
        if meta.get("state") in BUSY and job_id:
            busy_jobs.add(int(job_id))
        candidates.append((token, paths, meta, job_id))
    alive = set()
    if busy_jobs:
        alive = {r["id"] for r in await JobRow.select(JobRow.id).where(
            JobRow.id.is_in(sorted(busy_jobs)) & JobRow.status.is_in(["queued", "running"])
        ).run()}
    removed = 0
    for _, paths, meta, job_id in candidates:
        if meta.get("state") in BUSY and job_id and int(job_id) in alive:
            continue
        for path in paths:
            path.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("deleted %s abandoned import upload(s)", removed)


# --- vCard export ----------------------------------------------------------------------------


def _version(request: Request) -> str:
    version = request.query_params.get("version") or "3.0"
    if version not in ("3.0", "4.0"):
        raise ValidationException("version must be 3.0 or 4.0")
    return version


@get("/contacts/{customer_id:int}/vcard", opt={"permission": "core.customer.view"},
     include_in_schema=False)
async def contact_vcard(request: Request, customer_id: FromPath[int]) -> Response:
    """One contact as a vCard (``?version=4.0`` for vCard 4.0), for a phone's address book."""
    from core.customers.vcard import one_contact

    try:
        card, filename = await one_contact(request.app.state.rapport, current_actor(request),
                                           customer_id, _version(request))
    except CustomerNotFound:
        raise NotFoundException("no such contact") from None
    return Response(card, media_type="text/vcard; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


@get("/contacts/export.vcf", opt={"permission": "core.customer.export"},
     include_in_schema=False)
async def contacts_vcard_export(request: Request) -> Stream:
    """The contacts list's filtered set (same query parameters as /contacts) as one .vcf."""
    from core.customers import listing
    from core.customers.service import CustomerError
    from core.customers.vcard import export_cards

    rapport = request.app.state.rapport
    actor = current_actor(request)
    version = _version(request)
    try:
        filters = listing.parse_filters(request.query_params, kind="contact")
        await listing.where_clauses(rapport, actor, filters)
    except CustomerError as exc:
        raise ValidationException(f"{exc.field}: {exc.message}") from None
    return Stream(export_cards(rapport, actor, filters, version, ip=client_ip(request)),
                  media_type="text/vcard; charset=utf-8",
                  headers={"content-disposition": 'attachment; filename="contacts.vcf"'})


ROUTES = [contact_vcard, contacts_vcard_export, duplicates_page, duplicates_check, duplicates_api, merge_preview_page, merge_execute,
          merge_api, import_page, import_upload, import_mapping_page, import_check,
          import_check_page, import_commit, import_bad_rows, import_progress]
