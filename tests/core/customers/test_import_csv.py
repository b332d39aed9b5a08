"""CSV import: column mapping, a dry run naming every bad row, all-or-nothing commit, CLI."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from click.testing import CliRunner

from core.audit import AuditEntry
from core.customers.importing import guess_mapping, import_csv
from core.customers.tables import Customer, CustomerEmail, CustomerPhone, CustomerTag
from core.identity.users import load_actor
from tests.conftest import make_user

GOOD = '''First name,Last name,E-mail,Phone,Company,Stage,Tags,City,Country
Ada,Lovelace,ada@example.org,020 7123 4567,Analytical Engines,customer,vip;maths,London,gb
Grace,Hopper,grace@navy.example,+1 202 555 0143,US Navy,prospect,,Arlington,US
"Charles ""Babbage""",,,,Analytical Engines,,,,
'''

BAD = """first_name,last_name,email,phone,stage
Ada,Lovelace,ada@example.org,020 7123 4567,customer
Bad,Email,not-an-email,,lead
Bad,Phone,,12,lead
Bad,Stage,,,hot
,,nobody@example.org,,lead
Good,Row,good@example.org,,
"""


async def test_headers_are_guessed_into_fields():
    mapping = guess_mapping(["First name", "Surname", "E-mail", "Mobile", "Company", "Zip",
                             "Whatever"], "contact")
    assert mapping == {"First name": "first_name", "Surname": "last_name", "E-mail": "email",
                       "Mobile": "phone", "Company": "account", "Zip": "postcode",
                       "Whatever": ""}
    assert guess_mapping(["Company"], "account") == {"Company": "name"}


async def test_import_creates_contacts_with_details_and_their_accounts(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    report = await import_csv(rapport, actor, "contact", GOOD, dry_run=False,
                              source="people.csv")
    assert report.errors == [] and report.created == 3
    assert report.new_accounts == ["Analytical Engines", "US Navy"]
    ada = await Customer.select().where(Customer.name == "Ada Lovelace").first().run()
    assert ada["primary_email"] == "ada@example.org"
    assert ada["primary_phone"] == "+442071234567" and ada["lifecycle_stage"] == "customer"
    assert ada["owner"] == actor.id
    babbage = await Customer.select().where(Customer.first_name == 'Charles "Babbage"').first(
        ).run()
    assert babbage["account"] == ada["account"]  # one account, created once
    account = await Customer.select().where(Customer.id == ada["account"]).first().run()
    assert account["kind"] == "account" and account["name"] == "Analytical Engines"
    tags = await CustomerTag.select(CustomerTag.tag).where(CustomerTag.customer == ada["id"]).run()
    assert sorted(t["tag"] for t in tags) == ["maths", "vip"]
    assert await CustomerPhone.count().where(CustomerPhone.customer == ada["id"]).run() == 1
    entry = await AuditEntry.select().where(AuditEntry.action == "import").first().run()
    assert "Imported 3 contacts from people.csv" in entry["summary"]
    # The search index follows imports too.
    from core.search.customers import find_customers

    assert [h.name for h in await find_customers(rapport, actor, "hoper")][0] == "Grace Hopper"


async def test_dry_run_reports_every_bad_row_and_nothing_is_written(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    for dry_run in (True, False):
        report = await import_csv(rapport, actor, "contact", BAD, dry_run=dry_run)
        found = [(p.line, p.field) for p in report.errors]
        assert found == [(3, "email"), (4, "phone"), (5, "lifecycle_stage"), (6, "name")]
        assert "'hot' is not a stage" in report.errors[2].message
        assert report.rows == 6 and report.valid == 2 and not report.committed
    assert await Customer.count().run() == 0
    assert await CustomerEmail.count().run() == 0


async def test_import_warns_about_likely_duplicates(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test"))
    await import_csv(rapport, actor, "contact", "name,email\nAda,ada@example.org\n",
                     dry_run=False)
    report = await import_csv(rapport, actor, "contact",
                              "name,email\nAda L.,ADA@example.org\nX,x@example.org\n"
                              "Y,x@example.org\n", dry_run=True)
    messages = [str(w) for w in report.warnings]
    assert messages[0].startswith("line 2 (email): likely duplicate of customer #")
    assert messages[1] == "line 4 (email): same email as line 3"


async def test_accounts_import_with_owner_team_and_an_explicit_mapping(rapport):
    actor = await load_actor(rapport, await make_user("admin@example.test", teams=["North"]))
    await make_user("rep@example.test", roles=["sales_representative"])
    text = "Org,Who,Group,Money\nAcme,rep@example.test,North,1200.50\nZed,ghost@x.test,Nope,x\n"
    mapping = {"Org": "name", "Who": "owner", "Group": "team", "Money": "annual_revenue"}
    report = await import_csv(rapport, actor, "account", text, mapping, dry_run=True)
    assert [(p.line, p.field) for p in report.errors] == [
        (3, "owner"), (3, "team"), (3, "annual_revenue")]
    report = await import_csv(rapport, actor, "account", text.splitlines()[0] + "\n"
                              + text.splitlines()[1] + "\n", mapping, dry_run=False)
    acme = await Customer.select().where(Customer.name == "Acme").first().run()
    assert acme["kind"] == "account"
    assert Decimal(str(acme["annual_revenue"])) == Decimal("1200.50")


async def test_command_line_import_shows_bad_rows_and_exits_non_zero(rapport, tmp_path):
    from core.app import Rapport
    from core.cli import cli

    bad = tmp_path / "bad.csv"
    bad.write_text(BAD)
    good = tmp_path / "good.csv"
    good.write_text("Vorname,Mail\nAda,ada@example.org\nAlan,alan@example.org\n")
    cli_rapport = Rapport(rapport.settings, plugins=[])
    cli_rapport.pm.hook.register_commands(cli=cli)

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), obj={"rapport": cli_rapport})

    try:
        result = await asyncio.to_thread(invoke, "import", "contacts", str(bad))
        assert result.exit_code == 1
        assert "line 3 (email): 'not-an-email' is not an email address" in result.output
        assert "line 5 (lifecycle_stage)" in result.output
        assert "4 of 6 rows are bad; nothing was imported" in result.output
        result = await asyncio.to_thread(invoke, "import", "contacts", str(good), "--map",
                                         "Vorname=first_name", "--map", "Mail=email",
                                         "--dry-run")
        assert result.exit_code == 0, result.output
        assert "all 2 rows are good" in result.output
        result = await asyncio.to_thread(invoke, "import", "contacts", str(good), "--map",
                                         "Vorname=first_name", "--map", "Mail=email")
        assert result.exit_code == 0, result.output
        assert "Imported 2 contacts." in result.output
    finally:
        rapport.activate()
    assert await Customer.count().run() == 2
