"""Importing from the browser: upload, mapping (guessed), dry-run report, commit, progress."""

from __future__ import annotations

import json
import re

from core import jobs
from core.customers.tables import Customer
from core.jobs_tables import JobRow
from tests.conftest import csrf_headers

CSV = "Vorname,Nachname,E-mail,Stage\nAda,Lovelace,ada@example.org,customer\n" \
      "Alan,Turing,alan@example.org,lead\n"


async def upload(client, text: str, name: str = "people.csv", kind: str = "contact"):
    response = await client.post(
        "/customers/import", data={"kind": kind}, files={"file": (name, text.encode(), "text/csv")},
        headers=await csrf_headers(client), follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def wait_until_done(client, token: str) -> str:
    """Run the queued import job (test apps run no job worker), then read the progress."""
    await jobs.run_pending(client.rapport)
    status = await client.get(f"/customers/import/{token}/progress")
    assert "hx-trigger" not in status.text, "the import did not finish"
    return status.text


async def check(client, token: str, mapping: dict[str, str]):
    """Post the mapping, run the check job, and read the check page."""
    posted = await client.post(f"/customers/import/{token}/check", data=mapping,
                               headers=await csrf_headers(client), follow_redirects=False)
    assert posted.status_code == 303
    waiting = await client.get(f"/customers/import/{token}/check")
    assert "Waiting to start" in waiting.text  # checked by a job, not in the request
    await jobs.run_pending(client.rapport)
    return await client.get(f"/customers/import/{token}/check")


async def _checked_import(client) -> str:
    location = await upload(client, CSV)
    token = location.split("/")[3]
    await check(client, token, {"map_0": "first_name", "map_1": "last_name", "map_2": "email"})
    return token


async def test_upload_map_check_and_import(admin_client):
    location = await upload(admin_client, CSV)
    token = re.match(r"/customers/import/([^/]+)/mapping", location).group(1)
    mapping = await admin_client.get(location)
    assert mapping.status_code == 200
    assert '<option value="email" selected>' in mapping.text  # "E-mail" was recognised
    assert "ada@example.org" in mapping.text  # examples from the file
    headers = await csrf_headers(admin_client)
    report = await check(admin_client, token, {
        "map_0": "first_name", "map_1": "last_name", "map_2": "email", "map_3": "lifecycle_stage"})
    assert report.status_code == 200
    assert "<dt>Good</dt><dd>2</dd>" in report.text
    assert "Import the 2 good rows" in report.text
    assert await Customer.count().run() == 0  # a dry run writes nothing
    started = await admin_client.post(f"/customers/import/{token}/commit", headers=headers)
    assert started.status_code == 200 and "Waiting to start" in started.text
    assert "Imported 2 contacts" in await wait_until_done(admin_client, token)
    names = sorted(r["name"] for r in await Customer.select(Customer.name).run())
    assert names == ["Ada Lovelace", "Alan Turing"]


async def test_only_bad_rows_cannot_be_imported(admin_client):
    location = await upload(admin_client, "name,email\nBob,bob-at-home\n")
    token = location.split("/")[3]
    report = await check(admin_client, token, {"map_0": "name", "map_1": "email"})
    assert "<td>2</td><td>email</td><td>&#39;bob-at-home&#39; is not an email address</td>" \
        in report.text
    assert "Import the" not in report.text
    assert await Customer.count().run() == 0


async def test_someone_elses_import_is_not_found(admin_client):
    from tests.conftest import make_user, sign_in

    location = await upload(admin_client, CSV)
    await make_user("other@example.test")
    await sign_in(admin_client, "other@example.test")
    assert (await admin_client.get(location)).status_code == 404
    assert (await admin_client.get("/customers/import/..%2F..%2Fetc/mapping")).status_code == 404


async def test_an_import_queued_before_a_restart_is_run_by_the_next_worker(admin_client):
    from core.app import Rapport

    token = await _checked_import(admin_client)
    await admin_client.post(f"/customers/import/{token}/commit",
                            headers=await csrf_headers(admin_client))
    # The server stops before any worker ran it; another process's worker finds the job.
    other = Rapport(admin_client.rapport.settings)
    await jobs.run_pending(other)
    admin_client.rapport.activate()
    assert await Customer.count().run() == 2
    status = await admin_client.get(f"/customers/import/{token}/progress")
    assert "Imported 2 contacts" in status.text


async def test_an_import_run_again_after_a_crash_past_its_commit_imports_once(admin_client):
    token = await _checked_import(admin_client)
    await admin_client.post(f"/customers/import/{token}/commit",
                            headers=await csrf_headers(admin_client))
    await jobs.run_pending(admin_client.rapport)
    assert await Customer.count().run() == 2
    # As if the worker died after the commit, before writing the state: the job runs again.
    state = admin_client.rapport.settings.data_dir / "imports" / f"{token}.json"
    meta = json.loads(state.read_text())
    state.write_text(json.dumps({**meta, "state": "running"}))
    assert await jobs.retry(admin_client.rapport, meta["job_id"])
    await jobs.run_pending(admin_client.rapport)
    assert await Customer.count().run() == 2
    status = await admin_client.get(f"/customers/import/{token}/progress")
    assert "Imported 2 contacts" in status.text


async def test_an_import_that_can_never_run_says_so_instead_of_spinning(admin_client):
    token = await _checked_import(admin_client)
    await admin_client.post(f"/customers/import/{token}/commit",
                            headers=await csrf_headers(admin_client))
    waiting = await admin_client.get(f"/customers/import/{token}/progress")
    assert "hx-trigger" in waiting.text and "Waiting to start" in waiting.text
    job = await JobRow.select(JobRow.id).where(JobRow.name == "core.customers.import").order_by(
        JobRow.id, ascending=False).first().run()  # the import (the check ran before)
    assert await jobs.cancel(job["id"]) == "cancelled"  # an administrator stopped it
    status = await admin_client.get(f"/customers/import/{token}/progress")
    assert "hx-trigger" not in status.text
    assert "The import stopped (it was cancelled); nothing was written." in status.text
    assert await Customer.count().run() == 0
