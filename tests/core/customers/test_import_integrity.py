"""What a CSV file must not do to the data silently (issue 17, items 11 and 12): mixed text
encodings, a column named twice, a quote left open, a value too long to hold. Each is refused
or reported naming the line, in the library, the command line and the browser."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from core.customers.importing import ImportFileError, decode, import_csv, read_csv
from core.customers.tables import Customer
from core.identity.users import load_actor
from core.input_limits import IMPORT_MAX_CELL_CHARS
from tests.conftest import make_user


def test_a_file_mixing_utf8_and_windows_1252_is_refused_naming_both_lines():
    mixed = ("name,city\nAda,München\n".encode() + "Bob,Köln\n".encode("cp1252"))
    with pytest.raises(ImportFileError, match="line 3 is not UTF-8 but line 2 is"):
        decode(mixed)
    # Either encoding alone is read as it was written.
    assert decode("name\nMüller\n".encode("cp1252")) == "name\nMüller\n"
    assert decode("\ufeffname\nMüller\n".encode()) == "name\nMüller\n"
    with pytest.raises(ImportFileError, match="line 2 holds bytes that are neither"):
        decode(b"name\nA\x81b\n")


def test_a_header_naming_a_column_twice_is_refused():
    with pytest.raises(ImportFileError, match="line 1: columns 2 and 4 are both named 'email'"):
        read_csv("name,Email,phone,email\nAda,a@x.test,,b@x.test\n")


async def test_an_unclosed_quote_is_reported_on_its_line_instead_of_swallowing_rows(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    text = ('first_name,last_name,email\nAda,Lovelace,ada@x.test\nBob,"Open,bob@x.test\n'
            'Cy,Young,cy@x.test\nDee,Dee,dee@x.test\n')
    report = await import_csv(rapport, actor, "contact", text, dry_run=True)
    assert [(p.line, p.message) for p in report.errors] == [
        (3, "a quote opened on this line is not closed before line 5, so lines 4-5 were read "
            "as part of this row: close the quote")]
    # A genuine value over several lines is still one value.
    notes = 'first_name,notes\nAda,"first line\nsecond line"\nBob,\n'
    report = await import_csv(rapport, actor, "contact", notes, dry_run=True)
    assert report.errors == [] and report.valid == 2


async def test_a_cell_too_long_is_a_bad_row_not_a_traceback(rapport, tmp_path):
    from core.app import Rapport
    from core.cli import cli

    long = "x" * (1024 * 1024)
    path = tmp_path / "long.csv"
    path.write_text(f"first_name,notes\nAda,short\nBob,{long}\nCy,\"{long}\"\nDee,ok\n")
    cli_rapport = Rapport(rapport.settings, plugins=[])
    cli_rapport.pm.hook.register_commands(cli=cli)
    try:
        result = await asyncio.to_thread(
            lambda: CliRunner().invoke(cli, ["import", "contacts", str(path)],
                                       obj={"rapport": cli_rapport}))
    finally:
        rapport.activate()
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit, result.output
    too_long = f"a value is longer than {IMPORT_MAX_CELL_CHARS:,} characters"
    assert f"line 3: {too_long}" in result.output
    assert f"line 4: {too_long}" in result.output
    assert "2 of 4 rows are bad" in result.output
    assert await Customer.count().run() == 0


def _people(path, rows: int) -> None:
    with path.open("w") as out:
        out.write("first_name,last_name,email,notes\n")
        for i in range(rows):
            out.write(f"Person{i},Surname{i},p{i}@example.test,{'n' * 300}\n")


async def test_a_big_file_is_checked_off_the_event_loop_in_bounded_memory(rapport, tmp_path,
                                                                         monkeypatch):
    import threading
    import tracemalloc

    from core.customers import importing

    actor = await load_actor(rapport, await make_user("admin@example.test"))
    threads = set()
    validate = importing.validate_row

    def recording(*args, **kwargs):
        threads.add(threading.get_ident())
        return validate(*args, **kwargs)

    monkeypatch.setattr(importing, "validate_row", recording)
    peaks = {}
    for rows in (500, 4000):
        path = tmp_path / f"{rows}.csv"
        _people(path, rows)
        tracemalloc.start()
        try:
            with importing.open_csv(path) as stream:
                report = await import_csv(rapport, actor, "contact", stream, dry_run=True)
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.valid == rows and report.rows == rows
    # Rows are read and checked in a worker thread, never on the event loop's.
    assert threads and threading.get_ident() not in threads
    # The file is read a chunk at a time: what stays per row is its email and phone (for
    # duplicates within the file), not the row (whole rows held cost ~3 KB each here).
    assert (peaks[4000] - peaks[500]) / 3500 < 1000, peaks


async def test_abandoned_uploads_are_deleted_by_a_recurring_job(admin_client):
    import os
    import time

    from core import jobs
    from core.customers.import_web import CLEANUP_JOB, cleanup_imports
    from tests.conftest import csrf_headers
    from tests.core.customers.test_import_web import CSV, upload

    rapport = admin_client.rapport
    assert jobs.job_types(rapport)[CLEANUP_JOB].schedule  # runs by itself, every hour
    folder = rapport.settings.data_dir / "imports"
    abandoned, checking, fresh = [(await upload(admin_client, CSV)).split("/")[3]
                                  for _ in range(3)]
    await admin_client.post(f"/customers/import/{checking}/check", data={"map_0": "first_name"},
                            headers=await csrf_headers(admin_client))  # its job waits

    def age(token: str) -> None:
        two_days_ago = time.time() - 2 * 86400
        for path in folder.glob(f"{token}.*"):
            os.utime(path, (two_days_ago, two_days_ago))

    age(abandoned)
    age(checking)
    await cleanup_imports(rapport, None)
    assert not list(folder.glob(f"{abandoned}.*"))
    assert (await admin_client.get(f"/customers/import/{abandoned}/mapping")).status_code == 404
    assert (folder / f"{checking}.data").exists()  # its check is still to run
    assert (folder / f"{fresh}.data").exists()
    # Once its job is gone (cancelled here), a stale upload goes too.
    job = await jobs.JobRow.select(jobs.JobRow.id).where(
        jobs.JobRow.name == "core.customers.import").first().run()
    await jobs.cancel(job["id"])
    await cleanup_imports(rapport, None)
    assert not list(folder.glob(f"{checking}.*")) and (folder / f"{fresh}.data").exists()


async def test_an_import_whose_worker_died_is_retried_and_after_the_last_attempt_failed(
        admin_client):
    from datetime import UTC, datetime, timedelta

    from core import jobs
    from core.jobs_tables import JobRow
    from tests.conftest import csrf_headers
    from tests.core.customers.test_import_web import _checked_import

    async def commit_and_die(attempts: int) -> str:
        token = await _checked_import(admin_client)
        await admin_client.post(f"/customers/import/{token}/commit",
                                headers=await csrf_headers(admin_client))
        job = await JobRow.select(JobRow.id).where(JobRow.name == "core.customers.import"
                                                   ).order_by(JobRow.id, ascending=False
                                                              ).first().run()
        # A worker took it and was killed mid-commit: the job stays "running" until its lease
        # runs out (the transaction rolled back with the dead connection).
        await JobRow.update({JobRow.status: "running", JobRow.attempts: attempts,
                             JobRow.worker: "dead-worker",
                             JobRow.locked_until: datetime.now(UTC) - timedelta(seconds=1)}
                            ).where(JobRow.id == job["id"]).run()
        return token

    token = await commit_and_die(attempts=1)
    status = await admin_client.get(f"/customers/import/{token}/progress")
    assert "Starting again after an interruption" in status.text
    await jobs.run_pending(admin_client.rapport)
    status = await admin_client.get(f"/customers/import/{token}/progress")
    assert "Imported 2 contacts" in status.text and "hx-trigger" not in status.text
    assert await Customer.count().run() == 2

    token = await commit_and_die(attempts=3)  # killed on every attempt (out of memory ...)
    await jobs.run_pending(admin_client.rapport)
    status = await admin_client.get(f"/customers/import/{token}/progress")
    assert "hx-trigger" not in status.text
    assert "The import was interrupted 3 times before it could finish; nothing was written." \
        in status.text
    assert await Customer.count().run() == 2


async def test_the_import_pages_name_the_line_instead_of_storing_garbage_or_failing(
        admin_client):
    from tests.conftest import csrf_headers
    from tests.core.customers.test_import_web import check

    async def upload_bytes(data: bytes) -> str:
        response = await admin_client.post(
            "/customers/import", data={"kind": "contact"},
            files={"file": ("people.csv", data, "text/csv")},
            headers=await csrf_headers(admin_client), follow_redirects=False)
        assert response.status_code == 303
        return response.headers["location"].split("/")[3]

    token = await upload_bytes(b"name,Email,email\nAda,a@x.test,b@x.test\n")
    mapping = await admin_client.get(f"/customers/import/{token}/mapping")
    assert mapping.status_code == 400
    assert "columns 2 and 3 are both named &#39;email&#39;" in mapping.text

    token = await upload_bytes("name,city\nAda,München\n".encode() + "Bob,Köln\n".encode("cp1252"))
    report = await check(admin_client, token, {"map_0": "name", "map_1": "city"})
    assert report.status_code == 400
    assert "line 3 is not UTF-8 but line 2 is" in report.text
    assert await Customer.count().run() == 0

    token = await upload_bytes(f"name,notes\nAda,short\nBob,{'x' * 1024 * 1024}\n".encode())
    report = await check(admin_client, token, {"map_0": "name", "map_1": "notes"})
    assert report.status_code == 200
    assert f"a value is longer than {IMPORT_MAX_CELL_CHARS:,} characters" in report.text
    assert "<dt>Good</dt><dd>1</dd>" in report.text
