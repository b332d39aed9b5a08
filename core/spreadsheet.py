"""CSV for people's spreadsheets, written the same way by every export: dates and times in
ISO 8601, lists joined with commas, numbers as they are, and text that a spreadsheet would
run as a formula (starting with =, +, -, @, a tab or a carriage return) kept as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One value as CSV cell text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return str(value)  # -5 is a number, not a formula
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        value = ", ".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """``rows`` as CSV text, every value through :func:`cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue()
