"""Staff pages (and API endpoints) for bringing customer data in and keeping it clean:
likely duplicates, merging, CSV and vCard import, vCard export."""

from __future__ import annotations

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
from litestar.response import Redirect, Stream, Template

from core.audit import client_ip
from core.customers import custom_fields, duplicates, importing, merge
from core.customers.service import CustomerNotFound
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

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
IMPORT_JOB = "core.customers.import"
MAX_UPLOAD = 100 * 1024 * 1024


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
    data = await upload.read() if hasattr(upload, "read") else b""
    if not data.strip():
        return Template("customers/import.html", status_code=400,
                        context={"error": "Choose a CSV or vCard (.vcf) file to import."})
    filename = Path(getattr(upload, "filename", "") or "upload.csv").name
    try:
        text = importing.decode(data)
    except importing.ImportFileError as exc:
        return Template("customers/import.html", status_code=400,
                        context={"error": f"This file cannot be imported: {exc}."})
    is_vcard = filename.lower().endswith((".vcf", ".vcard")) or \
        text.lstrip().upper().startswith("BEGIN:VCARD")
    token = secrets.token_urlsafe(24)
    (_imports_dir(request) / f"{token}.data").write_text(text)
    _save_meta(request, token, {
        "user_id": current_actor(request).id, "filename": filename,
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
        header, rows = importing.read_csv(path.read_text())
    except importing.ImportFileError as exc:
        return Template("customers/import.html", status_code=400, context={"error": str(exc)})
    samples = [cells for _, cells in itertools.islice(rows, 3)]
    defs = await custom_fields.field_definitions(kind)
    guessed = meta.get("mapping") or importing.guess_mapping(header, kind, defs)
    fields = {k: v for k, v in importing.FIELDS.items()
              if kind == "contact" or k not in importing.CONTACT_ONLY}
    fields.update({d.form_name: f"{d.label} (custom)" for d in defs})
    columns = [{"index": i, "header": h, "field": guessed.get(h, ""),
                "samples": [s[i] for s in samples if i < len(s)]} for i, h in enumerate(header)]
    return Template("customers/import_mapping.html", context={
        "token": token, "meta": meta, "columns": columns, "fields": fields, "error": None})


async def _dry_run(request: Request, path: Path, meta: dict[str, Any]) -> importing.ImportReport:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    text = path.read_text()
    if meta["format"] == "vcard":
        from core.customers.vcard import import_vcard

        return await import_vcard(rapport, actor, text, dry_run=True, source=meta["filename"])
    return await importing.import_csv(rapport, actor, meta["kind"], text, meta["mapping"],
                                      dry_run=True, source=meta["filename"])


def _report_page(token: str, meta: dict[str, Any], report: Any, error: str | None = None,
                 status_code: int = 200) -> Template:
    return Template("customers/import_report.html", status_code=status_code, context={
        "token": token, "meta": meta, "report": report, "error": error})


@post("/customers/import/{token:str}/check", opt={"permission": "core.customer.create"},
      status_code=200)
async def import_check(request: Request, token: FromPath[str]) -> Template:
    """Step 3 (CSV): save the mapping and dry-run every row."""
    path, meta = _job(request, token)
    form = await request.form()
    header, _ = importing.read_csv(path.read_text())
    meta["mapping"] = {h: str(form.get(f"map_{i}") or "") for i, h in enumerate(header)}
    _save_meta(request, token, meta)
    try:
        report = await _dry_run(request, path, meta)
    except importing.ImportFileError as exc:
        return _report_page(token, meta, None, str(exc), status_code=400)
    return _report_page(token, meta, report)


@get("/customers/import/{token:str}/check", opt={"permission": "core.customer.create"})
async def import_check_again(request: Request, token: FromPath[str]) -> Template:
    """Step 3 (vCard, or checking again): dry-run every row."""
    path, meta = _job(request, token)
    try:
        report = await _dry_run(request, path, meta)
    except importing.ImportFileError as exc:
        return _report_page(token, meta, None, str(exc), status_code=400)
    return _report_page(token, meta, report)


@post("/customers/import/{token:str}/commit", opt={"permission": "core.customer.create"},
      status_code=202)
async def import_commit(request: Request, token: FromPath[str]) -> Template:
    """Step 4: queue the import as a job (one transaction) and show its progress."""
    from core import jobs

    path, meta = _job(request, token)
    if meta["state"] in ("running", "done"):
        return _progress_page(request, token, meta)
    rapport = request.app.state.rapport
    meta.update(state="running", done=0, total=0, phase="waiting", created=0, message="",
                started_at=datetime.now(UTC).isoformat())
    _save_meta(request, token, meta)  # before the job exists: a worker elsewhere may start it
    job_id = await jobs.enqueue(rapport, IMPORT_JOB, {"token": token})
    _, meta = _job(request, token)  # as the job may have left it by now
    meta["job_id"] = job_id
    _save_meta(request, token, meta)
    return _progress_page(request, token, meta)


async def _committed_before(meta: dict[str, Any]) -> int | None:
    """How many customers an earlier attempt of this import wrote, None if it wrote nothing.

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
    rows = json.loads(row["changes"] or "{}").get("rows") or [None, 0]
    return int(rows[1] or 0)


async def run_import(rapport: Any, job: Any) -> None:
    """The ``core.customers.import`` job: import an uploaded file in one transaction and keep
    its state file (what the progress page shows) true. Run again after a crash, it imports
    only if the earlier attempt did not commit."""
    from core.identity.users import load_actor

    token = str(job.args.get("token", ""))
    if not _TOKEN.match(token):
        return
    directory = _imports_dir_of(rapport)
    meta_path, path = directory / f"{token}.json", directory / f"{token}.data"
    if not meta_path.exists():
        return  # deleted meanwhile: nothing to do
    meta = json.loads(meta_path.read_text())
    if meta.get("state") != "running":
        return  # finished before (this is a repeat)
    created = await _committed_before(meta)
    if created is not None:
        meta.update(state="done", created=created, done=created, total=created)
        _write_meta(rapport, token, meta)
        path.unlink(missing_ok=True)
        return
    actor = await load_actor(rapport, int(meta["user_id"]))
    if actor is None:
        meta.update(state="failed", message="The import was not run: the account that started "
                                            "it is no longer active. Nothing was written.")
        _write_meta(rapport, token, meta)
        return
    last = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.25 or done == total:
            last[0] = now
            meta.update(phase=phase, done=done, total=total)
            _write_meta(rapport, token, meta)

    try:
        text = path.read_text()
        if meta["format"] == "vcard":
            from core.customers.vcard import import_vcard

            report = await import_vcard(rapport, actor, text, dry_run=False,
                                        source=meta["filename"], progress=progress)
        else:
            report = await importing.import_csv(
                rapport, actor, meta["kind"], text, meta["mapping"], dry_run=False,
                source=meta["filename"], progress=progress)
    except (importing.ImportFileError, FileNotFoundError) as exc:
        # Trying again cannot help: say so now (the transaction rolled back).
        meta.update(state="failed", message=f"The import failed and nothing was written: {exc}")
        _write_meta(rapport, token, meta)
        return
    except Exception as exc:
        log.exception("import %s failed (attempt %s of %s)", token, job.attempt,
                      job.max_attempts)
        if job.attempt >= job.max_attempts:
            meta.update(state="failed", message=f"The import failed and nothing was "
                                                f"written: {exc}")
            _write_meta(rapport, token, meta)
        raise
    if report.committed:
        meta.update(state="done", created=report.created, done=report.rows, total=report.rows)
    else:
        meta.update(state="failed", message=f"{len(report.errors)} problems found; "
                                            "nothing was imported.")
    _write_meta(rapport, token, meta)
    if meta["state"] == "done":
        path.unlink(missing_ok=True)


async def _truthful(rapport: Any, token: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The state file says "running" until the job writes otherwise; if the job itself ended
    without writing (it failed for good, was cancelled by an administrator, or its worker
    stopped for good), say so instead of a progress bar that never moves."""
    if meta.get("state") != "running" or not meta.get("job_id"):
        return meta
    from core.jobs_tables import CANCELLED, DONE, FAILED, JobRow

    row = await JobRow.select(JobRow.status, JobRow.locked_until, JobRow.attempts).where(
        JobRow.id == meta["job_id"]).first().run()
    if row is not None and row["status"] == DONE:
        # The job ended but its last word was lost (a race with the page): ask the database.
        created = await _committed_before(meta)
        if created is None:
            meta.update(state="failed", message="The import stopped; nothing was written.")
        else:
            meta.update(state="done", created=created, done=created, total=created)
        _write_meta(rapport, token, meta)
    elif row is None or row["status"] in (FAILED, CANCELLED):
        why = ("it was cancelled" if row is not None and row["status"] == CANCELLED
               else "it failed")
        meta.update(state="failed", message=f"The import stopped ({why}); nothing was written.")
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
    return Template("customers/import_status.html", context={"token": token, "meta": meta})


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
          import_check_again, import_commit, import_progress]
