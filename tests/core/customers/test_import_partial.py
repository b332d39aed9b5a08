"""Partial imports (issue 16, item 15): the good rows are imported, the bad ones listed by line
and downloadable as a CSV to fix, and rows that look like stored customers are skipped,
update them or are imported as new, as the user chooses after a check showing the counts."""

from __future__ import annotations

import asyncio
import csv
import io

from click.testing import CliRunner

from core.audit import AuditEntry
from core.customers.importing import import_csv
from core.customers.tables import Customer, CustomerEmail
from core.identity.users import load_actor
from tests.conftest import csrf_headers, make_user
from tests.core.customers.test_import_web import check, upload, wait_until_done

FILE = """first_name,last_name,email,company,job_title
Ada,Lovelace,ADA@example.org,,Countess
Bob,,bob-at-home,,
Grayce,Hopper,,Acme,Admiral
Cy,Young,cy@example.org,,
"""
MAPPING = {"map_0": "first_name", "map_1": "last_name", "map_2": "email", "map_3": "account",
           "map_4": "job_title"}


async def stored_customers(rapport) -> dict[str, int]:
    actor = await load_actor(rapport, await make_user("seed@example.test"))
    await import_csv(rapport, actor, "contact", "name,email,company\n"
                     "Ada Lovelace,ada@example.org,\nGrace Hopper,grace@navy.test,Acme\n",
                     dry_run=False)
    return {r["name"]: r["id"] for r in await Customer.select(Customer.id, Customer.name).run()}


async def test_the_good_rows_are_imported_the_bad_downloaded_and_duplicates_updated(
        admin_client):
    ids = await stored_customers(admin_client.rapport)
    token = (await upload(admin_client, FILE)).split("/")[3]
    report = await check(admin_client, token, MAPPING)
    # The preview, before anything is written: counts, the bad row and the choice.
    for count in ("<dt>Rows checked</dt><dd>4</dd>", "<dt>Good</dt><dd>3</dd>",
                  "<dt>Like a stored contact</dt><dd>2</dd>", "<dt>Bad (left out)</dt><dd>1</dd>"):
        assert count in report.text
    assert "<td>3</td><td>email</td><td>&#39;bob-at-home&#39; is not an email address</td>" \
        in report.text
    assert f"likely duplicate of customer #{ids['Ada Lovelace']} (same email ada@example.org)" \
        in report.text
    assert f"likely duplicate of contact #{ids['Grace Hopper']} (similar name at the same " \
        "account)" in report.text
    assert 'value="skip" checked' in report.text and "Skip them (1 new contacts)" in report.text
    assert await Customer.count().where(Customer.kind == "contact").run() == 2
    bad = await admin_client.get(f"/customers/import/{token}/bad-rows.csv")
    assert bad.status_code == 200 and bad.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(bad.text))) == [
        ["first_name", "last_name", "email", "company", "job_title", "Import problem"],
        ["Bob", "", "bob-at-home", "", "", "email: 'bob-at-home' is not an email address"]]

    started = await admin_client.post(f"/customers/import/{token}/commit",
                                      headers=await csrf_headers(admin_client),
                                      data={"on_duplicate": "update"})
    assert started.status_code == 200
    done = await wait_until_done(admin_client, token)
    assert "Imported 1 contact, updated 2, left out 1 bad row." in done
    assert f"/customers/import/{token}/bad-rows.csv" in done
    rows = {r["id"]: r for r in await Customer.select().run()}
    assert rows[ids["Ada Lovelace"]]["job_title"] == "Countess"
    assert rows[ids["Ada Lovelace"]]["name"] == "Ada Lovelace"
    assert rows[ids["Grace Hopper"]]["job_title"] == "Admiral"
    assert [r["name"] for r in rows.values() if r["primary_email"] == "cy@example.org"] == \
        ["Cy Young"]
    assert await CustomerEmail.count().where(CustomerEmail.email == "ada@example.org").run() <= 1
    entry = await AuditEntry.select().where(
        (AuditEntry.action == "update") & (AuditEntry.record_id == str(ids["Ada Lovelace"]))
    ).first().run()
    assert "Countess" in entry["changes"] and "people.csv" in entry["summary"]

    # The same file again, duplicates skipped: nothing new, nothing changed.
    token = (await upload(admin_client, FILE)).split("/")[3]
    report = await check(admin_client, token, MAPPING)
    assert "<dt>Like a stored contact</dt><dd>3</dd>" in report.text
    await admin_client.post(f"/customers/import/{token}/commit",
                            headers=await csrf_headers(admin_client),
                            data={"on_duplicate": "skip"})
    assert "Imported 0 contacts, skipped 3 duplicates, left out 1 bad row." in \
        await wait_until_done(admin_client, token)
    assert await Customer.count().where(Customer.kind == "contact").run() == 3


async def test_a_representative_cannot_update_customers_outside_their_scope(rapport):
    ids = await stored_customers(rapport)
    rep = await load_actor(rapport, await make_user("rep@example.test",
                                                    roles=["sales_representative"]))
    report = await import_csv(rapport, rep, "contact", "name,email,job_title\n"
                              "Ada Lovelace,ada@example.org,Spy\nNew Person,new@x.test,\n",
                              dry_run=False, partial=True, on_duplicate="update")
    assert report.committed and report.created == 1 and report.updated == 0
    assert [(p.line, p.message) for p in report.errors] == [
        (2, f"likely duplicate of customer #{ids['Ada Lovelace']} (same email "
            "ada@example.org), which you may not change")]
    ada = await Customer.select(Customer.job_title).where(
        Customer.id == ids["Ada Lovelace"]).first().run()
    assert ada["job_title"] == ""


async def test_an_update_giving_only_a_first_name_keeps_the_whole_name_whole(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    await import_csv(rapport, actor, "contact", "first_name,last_name,email\n"
                     "Ada,Lovelace,ada@parts.test\n", dry_run=False)
    report = await import_csv(rapport, actor, "contact", "first_name,email\n"
                              "Augusta,ada@parts.test\n", dry_run=False, on_duplicate="update")
    assert report.updated == 1 and report.created == 0
    ada = await Customer.select().where(Customer.primary_email == "ada@parts.test").first().run()
    assert (ada["first_name"], ada["last_name"], ada["name"]) == (
        "Augusta", "Lovelace", "Augusta Lovelace")


async def test_command_line_imports_the_good_rows_and_writes_the_bad_ones(rapport, tmp_path):
    from core.app import Rapport
    from core.cli import cli

    await stored_customers(rapport)
    path, bad_path = tmp_path / "people.csv", tmp_path / "bad.csv"
    path.write_text(FILE)
    cli_rapport = Rapport(rapport.settings, plugins=[])
    cli_rapport.pm.hook.register_commands(cli=cli)

    def invoke(*args):
        return CliRunner().invoke(cli, ["import", "contacts", str(path), *args],
                                  obj={"rapport": cli_rapport})

    try:
        result = await asyncio.to_thread(invoke)
        assert result.exit_code == 1
        assert "1 of 4 rows are bad; nothing was imported (--skip-bad-rows" in result.output
        result = await asyncio.to_thread(invoke, "--skip-bad-rows", "--bad-rows",
                                         str(bad_path), "--duplicates", "skip")
        assert result.exit_code == 0, result.output
        assert "Imported 1 contacts, skipped 2 duplicates, left out 1 bad rows." in \
            result.output
    finally:
        rapport.activate()
    assert "bob-at-home" in bad_path.read_text()
    assert await Customer.count().where(Customer.kind == "contact").run() == 3
