"""Every CSV export writes cells one way: text a spreadsheet would run as a formula stays text,
while numbers (negative ones too), dates, yes/no and lists read naturally."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from core.spreadsheet import cell, csv_text


def test_formulas_stay_text_and_numbers_stay_numbers():
    assert cell("=SUM(A1:A9)") == "'=SUM(A1:A9)"
    assert cell("+44 20 7946 0000") == "'+44 20 7946 0000"
    assert cell("@mention") == "'@mention" and cell("-dash") == "'-dash"
    assert cell(Decimal("-12.50")) == "-12.50" and cell(-3) == "-3"
    assert cell(None) == "" and cell(True) == "yes" and cell(False) == "no"
    assert cell(date(2026, 12, 6)) == "2026-12-06"
    assert cell(datetime(2026, 12, 6, 9, 30, tzinfo=UTC)) == "2026-12-06T09:30:00+00:00"
    assert cell(["vip", "partner"]) == "vip, partner"


def test_csv_text_quotes_what_needs_quoting():
    text = csv_text([["name", "notes"], ['Acme, "the" best', "line one\nline two"]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "notes"], ['Acme, "the" best', "line one\nline two"]]
