"""Importing from the browser: upload, mapping (guessed), dry-run report, commit, progress."""

from __future__ import annotations

import asyncio
import re

from core.customers.tables import Customer
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
    for _ in range(200):
        status = await client.get(f"/customers/import/{token}/progress")
        if "hx-trigger" not in status.text:
            return status.text
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def test_upload_map_check_and_import(admin_client):
    location = await upload(admin_client, CSV)
    token = re.match(r"/customers/import/([^/]+)/mapping", location).group(1)
    mapping = await admin_client.get(location)
    assert mapping.status_code == 200
    assert '<option value="email" selected>' in mapping.text  # "E-mail" was recognised
    assert "ada@example.org" in mapping.text  # examples from the file
    headers = await csrf_headers(admin_client)
    report = await admin_client.post(f"/customers/import/{token}/check", headers=headers, data={
        "map_0": "first_name", "map_1": "last_name", "map_2": "email", "map_3": "lifecycle_stage"})
    assert report.status_code == 200
    assert "2 good" in report.text and "Import 2 contacts" in report.text
    assert await Customer.count().run() == 0  # a dry run writes nothing
    started = await admin_client.post(f"/customers/import/{token}/commit", headers=headers)
    assert started.status_code == 200 and "Writing customers" in started.text or \
        "Checking rows" in started.text or "Imported" in started.text
    assert "Imported 2 contacts" in await wait_until_done(admin_client, token)
    names = sorted(r["name"] for r in await Customer.select(Customer.name).run())
    assert names == ["Ada Lovelace", "Alan Turing"]


async def test_bad_rows_are_listed_and_cannot_be_imported(admin_client):
    location = await upload(admin_client, "name,email\nAda,ada@example.org\nBob,bob-at-home\n")
    token = location.split("/")[3]
    report = await admin_client.post(f"/customers/import/{token}/check",
                                     headers=await csrf_headers(admin_client),
                                     data={"map_0": "name", "map_1": "email"})
    assert "<td>3</td><td>email</td><td>&#39;bob-at-home&#39; is not an email address</td>" \
        in report.text
    assert "Import 1 contact" not in report.text
    started = await admin_client.post(f"/customers/import/{token}/commit",
                                      headers=await csrf_headers(admin_client))
    assert started.status_code == 200
    assert "nothing was imported" in await wait_until_done(admin_client, token)
    assert await Customer.count().run() == 0


async def test_someone_elses_import_is_not_found(admin_client):
    from tests.conftest import make_user, sign_in

    location = await upload(admin_client, CSV)
    await make_user("other@example.test")
    await sign_in(admin_client, "other@example.test")
    assert (await admin_client.get(location)).status_code == 404
    assert (await admin_client.get("/customers/import/..%2F..%2Fetc/mapping")).status_code == 404
