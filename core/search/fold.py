"""Accent and case folding for search: ``Müller`` and ``MULLER`` are both ``muller``.

One table of letters (Latin letters with diacritics, plus ``ß``, ``æ``, ``ø``, ``œ``, ``ł``,
``đ``, ``þ`` and the like) drives the three places that fold, so they always agree:

- :func:`fold` in Python, for the query and for ranking;
- SQLite: :func:`fold` itself, registered on every connection as the SQL function
  ``rapport_fold(text)`` (``core.db``), which the search index triggers call. Plain
  ``replace()`` chains were tried: SQLite's parser refuses more than ~35 nested calls, and
  288 replacements staged through CTEs made every statement that fires the triggers take
  20-40 ms to prepare (each transaction has a fresh connection, so nothing stays prepared);
- :func:`postgres_fold_function` for PostgreSQL: an ``IMMUTABLE`` SQL function
  ``core_search_fold(text)`` (``translate`` plus a few ``replace``), which trigram GIN indexes
  are built over. No ``unaccent`` extension is needed.
"""

from __future__ import annotations

import unicodedata

# Letters that NFKD does not split into a base letter and an accent.
_SPECIAL = {
    "Æ": "ae", "æ": "ae", "Ǽ": "ae", "ǽ": "ae", "Ð": "d", "ð": "d", "Đ": "d", "đ": "d",
    "Ø": "o", "ø": "o", "Ǿ": "o", "ǿ": "o", "Þ": "th", "þ": "th", "ß": "ss", "ẞ": "ss",
    "Ħ": "h", "ħ": "h", "ı": "i", "Ŀ": "l", "ŀ": "l", "Ł": "l", "ł": "l", "Ŋ": "n", "ŋ": "n",
    "Œ": "oe", "œ": "oe", "Ŧ": "t", "ŧ": "t",
}


def _letters() -> dict[str, str]:
    table: dict[str, str] = {}
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFKD", char.lower())
                       if not unicodedata.combining(c))
        if base != char and base.isascii() and base.isalpha():
            table[char] = base
    table.update(_SPECIAL)
    return dict(sorted(table.items()))


LETTERS = _letters()
_TRANSLATE = str.maketrans(LETTERS)


def fold(text: str) -> str:
    """``text`` lower-cased with accents removed, the way the search index holds it."""
    return (text or "").translate(_TRANSLATE).lower()


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def postgres_fold_function() -> str:
    """``CREATE OR REPLACE FUNCTION core_search_fold(text)``: :func:`fold` in SQL."""
    single = {k: v for k, v in LETTERS.items() if len(v) == 1}
    multi = {k: v for k, v in LETTERS.items() if len(v) > 1}
    expression = (f"translate(lower(value), {_sql_string(''.join(single))}, "
                  f"{_sql_string(''.join(single.values()))})")
    for letter, base in multi.items():
        expression = f"replace({expression}, {_sql_string(letter)}, {_sql_string(base)})"
    return ("CREATE OR REPLACE FUNCTION core_search_fold(value text) RETURNS text "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {expression} $$")
