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
