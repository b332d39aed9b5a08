"""Importing accounts and contacts from CSV (and, through :mod:`core.customers.vcard`, vCard).

The same pass, from the CLI and the web (where it runs as a job): records are read and
validated a chunk at a time in a worker thread, every bad one reported with its line number
and reason (and written to a bad-rows CSV), rows that look like stored customers or earlier
rows found in bulk per chunk and skipped, used to update the stored customer or imported as
new. A dry run writes nothing; otherwise the rows are written in ONE transaction: the good
ones with ``partial``, else all or none. Speed comes from validating in Python with what it
needs looked up once (users, teams, custom fields) or once per chunk (accounts, stored emails
and phones), and inserting with ``executemany``/COPY and ids allocated up front: no query per
row. Memory is bounded by the chunk, not the file.

    report = await import_csv(rapport, actor, "contact", text_or_file, mapping, dry_run=True)
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

from phonenumbers import re_util

from core import audit
from core.customers import custom_fields
from core.customers.service import (
    EVENT_BULK_CHANGED,
    EVENT_IMPORTED,
    TAG,
    announce,
    default_region,
    normalise_email,
    normalise_phone,
    phone_region,
)
from core.customers.tables import (
    CHANNELS,
    LIFECYCLE_STAGES,
    Customer,
    CustomerEmail,
    CustomerPhone,
    CustomerTag,
)
from core.identity.tables import Team, User
from core.input_limits import IMPORT_MAX_CELL_CHARS
from core.permissions import Actor, scoped

if TYPE_CHECKING:
    from core.app import Rapport

BATCH = 1000
LOOKUP_CHUNK = 500
IMPORT_CACHE_KIB = 256 * 1024
IN_CHUNK = 5000  # values per IN (...) on SQLite, well under its 32,766-variable limit
MAX_REPORTED_WARNINGS = 1000
MAX_REPORTED_ERRORS = 1000
MAX_NAME_CANDIDATES = 50_000  # stored contacts of a chunk's accounts compared by name
DUPLICATE_CHOICES = ("new", "skip", "update")
Progress = Callable[[str, int, int], None]  # (phase, done, total)

# Importable fields: name -> label. Custom fields are ``cf_<key>``.
FIELDS: dict[str, str] = {
    "name": "Name (whole)",
    "first_name": "First name",
    "last_name": "Last name",
    "job_title": "Job title",
    "account": "Account (organisation name)",
    "email": "Email",
    "emails": "More emails (separated by ;)",
    "phone": "Phone",
    "phones": "More phones (separated by ;)",
    "lifecycle_stage": "Lifecycle stage",
    "source": "Source",
    "owner": "Owner (user's email)",
    "team": "Team (name)",
    "tags": "Tags (separated by , or ;)",
    "website": "Website",
    "industry": "Industry",
    "notes": "Notes",
    "birthday": "Birthday (YYYY-MM-DD)",
    "preferred_channel": "Preferred channel",
    "do_not_contact": "Do not contact (yes/no)",
    "annual_revenue": "Annual revenue",
    "currency": "Currency",
    "street": "Street",
    "city": "City",
    "region": "Region / state",
    "postcode": "Postcode",
    "country": "Country (two-letter code)",
}
CONTACT_ONLY = {"first_name", "last_name", "account", "birthday"}
ALIASES = {
    "full_name": "name", "contact": "name", "contact_name": "name", "company_name": "name",
    "organisation_name": "name", "organization_name": "name",
    "first": "first_name", "firstname": "first_name", "given_name": "first_name",
    "forename": "first_name", "last": "last_name", "lastname": "last_name",
    "surname": "last_name", "family_name": "last_name", "title": "job_title",
    "position": "job_title", "role": "job_title", "company": "account",
    "organisation": "account", "organization": "account", "account_name": "account",
    "employer": "account", "e_mail": "email", "email_address": "email", "mail": "email",
    "primary_email": "email", "other_emails": "emails", "telephone": "phone", "tel": "phone",
    "mobile": "phone", "phone_number": "phone", "primary_phone": "phone", "cell": "phone",
    "other_phones": "phones", "stage": "lifecycle_stage", "lifecycle": "lifecycle_stage",
    "status": "lifecycle_stage", "lead_source": "source", "owner_email": "owner",
    "account_owner": "owner", "tag": "tags", "labels": "tags", "url": "website",
    "web": "website", "homepage": "website", "sector": "industry", "note": "notes",
    "comments": "notes", "birth_date": "birthday", "date_of_birth": "birthday",
    "dob": "birthday", "channel": "preferred_channel", "dnc": "do_not_contact",
    "revenue": "annual_revenue", "address": "street", "street_address": "street",
    "town": "city", "state": "region", "county": "region", "province": "region",
    "zip": "postcode", "zip_code": "postcode", "postal_code": "postcode",
    "country_code": "country",
}
TRUE_WORDS = {"1", "true", "yes", "y", "on", "x"}
FALSE_WORDS = {"", "0", "false", "no", "n", "off"}
_SPLIT = re.compile(r"[;\n]")
_TAG_SPLIT = re.compile(r"[;,\n]")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")

# phonenumbers compiles its metadata patterns with re.compile on every use (about 20 per
# number, each a lookup in re's small cache); its own opt-in cache keeps them compiled. Same
# results, ~13% less time per number, which dominates the check of a big file.
re_util.enable_pattern_cache()


class ImportFileError(ValueError):
    """The file itself cannot be imported (empty, no header, a bad column mapping)."""


@dataclass(frozen=True)
class RowProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"line {self.line}{where}: {self.message}"


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    valid: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    new_accounts: list[str] = field(default_factory=list)
    created: int = 0
    committed: bool = False
    first_id: int | None = None
    last_id: int | None = None
    partial: bool = False  # good rows are imported even when some rows are bad
    on_duplicate: str = "new"  # what rows matching a stored customer do: new, skip, update
    bad: int = 0  # rows not imported for a problem (errors lists the first problems)
    errors_left_out: int = 0  # problems beyond MAX_REPORTED_ERRORS, counted only
    duplicates: int = 0  # good rows that look like a stored customer or an earlier row
    skipped: int = 0  # duplicates skipped
    new: int = 0  # customers created (or, checking, that would be)
    to_update: int = 0  # stored customers updated (or, checking, that would be)
    updated: int = 0  # stored customers updated by the commit

    @property
    def ok(self) -> bool:
        return not self.errors and self.rows > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "valid": self.valid, "created": self.created,
            "committed": self.committed, "new_accounts": self.new_accounts,
            "bad": self.bad, "errors_left_out": self.errors_left_out,
            "duplicates": self.duplicates, "skipped": self.skipped, "new": self.new,
            "to_update": self.to_update, "updated": self.updated,
            "on_duplicate": self.on_duplicate, "partial": self.partial,
            "errors": [{"line": p.line, "field": p.field, "message": p.message}
                       for p in self.errors],
            "warnings": [{"line": p.line, "field": p.field, "message": p.message}
                         for p in self.warnings],
        }


@dataclass
class PreparedRow:
    line: int
    values: dict[str, Any]
    emails: list[str]
    phones: list[str]
    tags: list[str]
    address: dict[str, str] | None
    account_name: str
    custom: dict[int, Any]
    given: frozenset[str] = frozenset()  # the fields the row has a value for
    raw: list[str] | None = None  # the file's cells, for the bad-rows file


# --- reading CSV -----------------------------------------------------------------------------


def check_encoding(lines: Iterable[bytes]) -> str:
    """The file's text encoding from its lines (streamed): ``utf-8-sig`` when every line is
    UTF-8, else ``cp1252`` (what spreadsheets still write). A file mixing the two, where some
    lines are UTF-8 with accents and others are not UTF-8, is refused naming both lines:
    decoding it either way would store some names garbled."""
    utf8_line = bad_line = 0
    for number, line in enumerate(lines, 1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad_line = bad_line or number
        else:
            utf8_line = utf8_line or number
        if utf8_line and bad_line:
            raise ImportFileError(
                f"line {bad_line} is not UTF-8 but line {utf8_line} is: the file mixes text "
                "encodings, so some values would be stored garbled. Save the file as UTF-8 "
                "(\"CSV UTF-8\" in Excel) and import it again")
    return "cp1252" if bad_line else "utf-8-sig"


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252; mixed files and bytes that are neither
    are refused naming the line (see :func:`check_encoding`)."""
    encoding = check_encoding(data.splitlines())
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(f"line {line} holds bytes that are neither UTF-8 nor "
                              "Windows-1252: save the file as UTF-8 and import it again"
                              ) from None


class BrokenRow(list):
    """A record the CSV reader could not read faithfully; ``message`` says why."""

    def __init__(self, message: str, cells: Iterable[str] = ()) -> None:
        super().__init__(cells)
        self.message = message


PROBLEM = "_problem"  # the key rows_as_dicts gives a broken row's reason under


def _swallowed_rows(cells: list[str], width: int, delimiter: str) -> bool:
    """Whether a record spanning several lines looks like an unclosed quote took in the rows
    after it: its cell count is off, or a value holds a line that looks like a whole row."""
    if len(cells) != width:
        return True
    return width > 2 and any(line.count(delimiter) >= width - 1
                             for cell in cells if "\n" in cell for line in cell.split("\n"))


def read_csv(source: str | IO[str]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(header, iterator of (line number, cells)); line numbers count the header as line 1
    and point at the line where a record starts (quoted fields may span lines).

    A header naming a column twice is refused (the mapping would drop one column's values).
    A record the reader cannot take faithfully comes as a :class:`BrokenRow` naming the
    problem: a value longer than ``IMPORT_MAX_CELL_CHARS``, or a quote left open that runs
    over the rows after it."""
    if isinstance(source, str):
        sample, stream = source[:8192], io.StringIO(source, newline="")
    else:
        sample, stream = source.read(8192), source
        stream.seek(0)
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(stream, dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportFileError("the file is empty") from None
    except csv.Error:
        raise ImportFileError("line 1: the header is not readable CSV") from None
    if not any(header):
        raise ImportFileError("the first line must name the columns")
    seen: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.casefold()
        if key and key in seen:
            raise ImportFileError(
                f"line 1: columns {seen[key] + 1} and {index + 1} are both named {name!r}, so "
                "one column's values would be dropped: rename one of them")
        seen.setdefault(key, index)
    width, delimiter = len(header), dialect.delimiter

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield start, BrokenRow(
                    f"a value is longer than {IMPORT_MAX_CELL_CHARS:,} characters (or a "
                    "quote is left open): shorten it or close the quote")
                start = reader.line_num + 1
                continue
            end = reader.line_num
            if any(len(c) > IMPORT_MAX_CELL_CHARS for c in cells):
                yield start, BrokenRow(f"a value is longer than {IMPORT_MAX_CELL_CHARS:,} "
                                       "characters: shorten it",
                                       [c[:IMPORT_MAX_CELL_CHARS] for c in cells])
            elif end > start and _swallowed_rows(cells, width, delimiter):
                taken = f"line {end} was" if end == start + 1 else f"lines {start + 1}-{end} were"
                yield start, BrokenRow(
                    f"a quote opened on this line is not closed before line {end}, so {taken} "
                    "read as part of this row: close the quote", cells)
            elif any(c.strip() for c in cells):
                yield start, cells
            start = reader.line_num + 1

    return header, rows()


def _slug(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def guess_mapping(headers: Iterable[str], kind: str,
                  defs: Iterable[custom_fields.FieldDef] = ()) -> dict[str, str]:
    """{column header: field} for the headers we recognise (field "" means skip)."""
    by_label = {_slug(d.label): d.form_name for d in defs if d.applies(kind)}
    by_label.update({_slug(d.form_name): d.form_name for d in defs if d.applies(kind)})
    by_label.update({_slug(d.key): d.form_name for d in defs if d.applies(kind)})
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        slug = _slug(header)
        guess = slug if slug in FIELDS else ALIASES.get(slug) or by_label.get(slug, "")
        if kind == "account" and guess in CONTACT_ONLY:
            guess = "name" if guess == "account" else ""
        if guess in taken and guess not in ("tags", "emails", "phones", "notes"):
            guess = ""
        if guess:
            taken.add(guess)
        mapping[header] = guess
    return mapping


def parse_map_options(options: Iterable[str]) -> dict[str, str]:
    """``column=field`` pairs from the command line."""
    mapping = {}
    for option in options:
        column, sep, target = option.partition("=")
        if not sep:
            raise ImportFileError(f"--map {option!r}: write it as column=field")
        mapping[column.strip()] = target.strip()
    return mapping


# --- validation ------------------------------------------------------------------------------


@dataclass
class Lookups:
    """Everything validation needs from the database, fetched once per import."""

    users: dict[str, int]
    teams: dict[str, int]
    accounts: dict[str, int]
    defs: dict[str, custom_fields.FieldDef]
    region: str


async def _existing_accounts(rapport: Rapport | None, actor: Actor | None, names: set[str]
                             ) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(names)
    for i in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[i:i + LOOKUP_CHUNK]
        query = Customer.select(Customer.id, Customer.name).where(
            (Customer.kind == "account") & Customer.name.is_in(chunk)
            & Customer.erased_at.is_null()).order_by(Customer.id)
        if rapport is not None and actor is not None and actor.kind == "staff":
            query = scoped(query, rapport, actor, "core.customer.view", Customer)
        for row in await query.run():
            found.setdefault(row["name"], row["id"])
    return found


@lru_cache(maxsize=65536)
def _normalise_phone(raw: str, region: str) -> str:
    # Parsing and validating a number costs ~0.1 ms; files often repeat switchboard numbers.
    return normalise_phone(raw, region)


def _text(value: str, limit: int, name: str, problems: list[tuple[str, str]]) -> str:
    value = value.strip()
    if len(value) > limit:
        problems.append((name, f"is longer than {limit} characters"))
    return value


def validate_row(kind: str, cells: dict[str, str], lookups: Lookups, actor: Actor | None
                 ) -> tuple[PreparedRow | None, list[tuple[str, str]]]:
    """One row's values checked and normalised, or the (field, reason) problems found."""
    if PROBLEM in cells:
        return None, [("", cells[PROBLEM])]
    problems: list[tuple[str, str]] = []
    get = cells.get
    values: dict[str, Any] = {"kind": kind}
    first = _text(get("first_name", ""), 150, "first_name", problems)
    last = _text(get("last_name", ""), 150, "last_name", problems)
    name = " ".join(get("name", "").split())
    if kind == "contact":
        values["first_name"], values["last_name"] = first, last
        name = " ".join(p for p in (first, last) if p) or name
        if not name:
            problems.append(("name", "a contact needs a first or last name"))
    elif not name:
        problems.append(("name", "is required"))
    if len(name) > 300:
        problems.append(("name", "is longer than 300 characters"))
    values["name"] = name
    for column, limit in (("job_title", 150), ("source", 100), ("industry", 150),
                          ("notes", 20000)):
        values[column] = _text(get(column, ""), limit, column, problems)

    emails: list[str] = []
    for raw in [get("email", "")] + _SPLIT.split(get("emails", "")):
        if raw.strip():
            try:
                email = normalise_email(raw)
            except ValueError:
                problems.append(("email", f"{raw.strip()!r} is not an email address"))
                continue
            if email not in emails:
                emails.append(email)
    phones: list[str] = []
    # Numbers without a country code are read as numbers of the row's country first.
    region = phone_region(get("country", ""), lookups.region)
    for raw in [get("phone", "")] + _SPLIT.split(get("phones", "")):
        if raw.strip():
            try:
                phone = _normalise_phone(raw.strip(), region)
            except ValueError as exc:
                problems.append(("phone", str(exc)))
                continue
            if phone not in phones:
                phones.append(phone)
    values["primary_email"] = emails[0] if emails else ""
    values["primary_phone"] = phones[0] if phones else ""

    stage = get("lifecycle_stage", "").strip().lower() or "lead"
    if stage not in LIFECYCLE_STAGES:
        problems.append(("lifecycle_stage", f"{stage!r} is not a stage "
                                            f"({', '.join(LIFECYCLE_STAGES)})"))
    values["lifecycle_stage"] = stage

    owner_email = get("owner", "").strip().lower()
    owner = actor.id if actor is not None and actor.kind == "staff" else None
    if owner_email:
        if owner_email not in lookups.users:
            problems.append(("owner", f"no active user with email {owner_email!r}"))
        else:
            owner = lookups.users[owner_email]
            if actor is not None and actor.kind == "staff" and owner != actor.id \
                    and not actor.can("core.customer.assign"):
                problems.append(("owner", "you may not assign customers to others"))
    values["owner"] = owner
    team_name = get("team", "").strip()
    values["team"] = None
    if team_name:
        if team_name.lower() not in lookups.teams:
            problems.append(("team", f"no team named {team_name!r}"))
        else:
            values["team"] = lookups.teams[team_name.lower()]

    website = get("website", "").strip()
    if website and "://" not in website:
        website = "https://" + website
    parsed = urlparse(website) if website else None
    if parsed is not None and (parsed.scheme not in ("http", "https")
                               or not parsed.netloc or len(website) > 300):
        problems.append(("website", f"{get('website', '').strip()!r} is not a web address"))
    values["website"] = website

    birthday = get("birthday", "").strip()
    values["birthday"] = None
    if birthday:
        try:
            values["birthday"] = date.fromisoformat(birthday)
        except ValueError:
            problems.append(("birthday", f"{birthday!r} is not a date like 1990-12-31"))
    channel = get("preferred_channel", "").strip().lower()
    if channel and channel not in CHANNELS:
        problems.append(("preferred_channel", f"{channel!r} is not a channel"))
    values["preferred_channel"] = channel
    values["opted_out_channels"] = ""
    dnc = get("do_not_contact", "").strip().lower()
    if dnc not in TRUE_WORDS | FALSE_WORDS:
        problems.append(("do_not_contact", f"{dnc!r} is not yes or no"))
    values["do_not_contact"] = dnc in TRUE_WORDS
    revenue = get("annual_revenue", "").strip().replace(",", "")
    values["annual_revenue"] = None
    if revenue:
        try:
            amount = Decimal(revenue).quantize(Decimal("0.01"))
            if not amount.is_finite() or abs(amount) >= Decimal("1e16"):
                raise InvalidOperation
            values["annual_revenue"] = amount
        except InvalidOperation:
            problems.append(("annual_revenue", f"{revenue!r} is not an amount"))
    currency = get("currency", "").strip().upper()
    if currency and not _CURRENCY.fullmatch(currency):
        problems.append(("currency", f"{currency!r} is not a three-letter code like EUR"))
    values["currency"] = currency

    tags = []
    for raw in _TAG_SPLIT.split(get("tags", "")):
        tag = " ".join(raw.split()).lower()
        if not tag:
            continue
        if not TAG.match(tag):
            problems.append(("tags", f"{tag!r} is not a tag"))
        elif tag not in tags:
            tags.append(tag)

    address = {k: get(k, "").strip() for k in ("street", "city", "region", "postcode")}
    address["country"] = get("country", "").strip().upper()
    if address["country"] and not _COUNTRY.fullmatch(address["country"]):
        problems.append(("country", f"{address['country']!r} is not a two-letter country code"))
    for key, limit in (("street", 300), ("city", 150), ("region", 150), ("postcode", 30)):
        if len(address[key]) > limit:
            problems.append((key, f"is longer than {limit} characters"))

    custom: dict[int, Any] = {}
    for form_name, definition in lookups.defs.items():
        raw = get(form_name)
        if raw is None or not raw.strip():
            if definition.required and form_name in cells:
                problems.append((form_name, "is required"))
            continue
        try:
            value = custom_fields.parse_value(definition, raw)
        except custom_fields.CustomFieldError as exc:
            problems.append((form_name, exc.message))
            continue
        if value not in (None, [], ""):
            custom[definition.id] = value

    account_name = " ".join(get("account", "").split()) if kind == "contact" else ""
    if problems:
        return None, problems
    return PreparedRow(
        line=0, values=values, emails=emails, phones=phones, tags=tags,
        address=address if any(address.values()) else None, account_name=account_name,
        custom=custom, given=frozenset(k for k, v in cells.items() if v.strip())), []


async def load_lookups(rapport: Rapport | None, actor: Actor | None, kind: str,
                       account_names: set[str]) -> Lookups:
    users = {r["email"].lower(): r["id"] for r in await User.select(User.id, User.email).where(
        User.is_active == True).run()}  # noqa: E712
    teams = {r["name"].lower(): r["id"] for r in await Team.select(Team.id, Team.name).run()}
    defs = {d.form_name: d for d in await custom_fields.field_definitions(kind)}
    accounts = await _existing_accounts(rapport, actor, account_names) if account_names else {}
    return Lookups(users=users, teams=teams, accounts=accounts, defs=defs,
                   region=default_region())


# --- the import itself -----------------------------------------------------------------------


def apply_mapping(header: list[str], mapping: dict[str, str], kind: str,
                  custom_names: Iterable[str]) -> list[tuple[int, str]]:
    """(column index, field) pairs; raises ImportFileError naming a bad mapping."""
    allowed = set(FIELDS) | set(custom_names)
    if kind == "account":
        allowed -= CONTACT_ONLY
    pairs = []
    for column, target in mapping.items():
        if not target:
            continue
        if column not in header:
            raise ImportFileError(f"column {column!r} is not in the file (columns: "
                                  f"{', '.join(header)})")
        if target not in allowed:
            raise ImportFileError(f"{target!r} is not a field {kind}s can be imported into")
        pairs.append((header.index(column), target))
    if not pairs:
        raise ImportFileError("no column is mapped to a field")
    targets = [t for _, t in pairs]
    if kind == "contact" and not {"name", "first_name", "last_name"} & set(targets):
        raise ImportFileError("map a column to name, first_name or last_name")
    if kind == "account" and "name" not in targets:
        raise ImportFileError("map a column to name")
    return pairs


def rows_as_dicts(rows: Iterable[tuple[int, list[str]]], pairs: list[tuple[int, str]]
                  ) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    multi = {"tags", "emails", "phones", "notes"}
    for line, cells in rows:
        if isinstance(cells, BrokenRow):
            yield line, {PROBLEM: cells.message}, list(cells)
            continue
        record: dict[str, str] = {}
        for index, target in pairs:
            value = cells[index] if index < len(cells) else ""
            if target in record and target in multi and value.strip():
                record[target] = record[target] + ";" + value
            elif target not in record or not record[target].strip():
                record[target] = value
        yield line, record, cells


def _is_postgres() -> bool:
    return Customer._meta.db.engine_type in ("postgres", "cockroach")


async def _allocate_ids(connection: Any, count: int) -> list[int]:
    if count == 0:
        return []
    if _is_postgres():
        rows = await connection.fetch(
            "SELECT nextval(pg_get_serial_sequence('core_customer', 'id')) AS id "
            "FROM generate_series(1, $1)", count)
        return [r["id"] for r in rows]
    # SQLite: the transaction is IMMEDIATE, so no other writer can take these ids meanwhile.
    async with connection.execute(
            "SELECT coalesce(max(id), 0) AS last_id FROM core_customer") as cursor:
        start = (await cursor.fetchone())["last_id"] + 1
    return list(range(start, start + count))


def _sql(table: str, columns: list[str]) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1)) if _is_postgres() \
        else ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


async def _insert_many(connection: Any, table: str, columns: list[str],
                       rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if _is_postgres():
        # COPY is PostgreSQL's bulk path: an order of magnitude faster than INSERTs.
        await connection.copy_records_to_table(table, records=rows, columns=columns)
        return
    sql = _sql(table, columns)
    for i in range(0, len(rows), BATCH * 5):
        await connection.executemany(sql, rows[i:i + BATCH * 5])


WRITTEN_TABLES = ("core_customer", "core_customer_email", "core_customer_phone",
                  "core_customer_tag", "core_customer_address", "core_custom_value")
CUSTOMER_COLUMNS = ["id", "kind", "name", "first_name", "last_name", "job_title", "account",
                    "owner", "team", "lifecycle_stage", "source", "primary_email",
                    "primary_phone", "website", "industry", "notes", "birthday",
                    "preferred_channel", "opted_out_channels", "do_not_contact",
                    "annual_revenue", "currency", "created_at", "updated_at"]


def _mark(index: int) -> str:
    return f"${index}" if _is_postgres() else "?"


async def _execute_many(connection: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    for i in range(0, len(rows), BATCH):
        await connection.executemany(sql, rows[i:i + BATCH])


async def _existing(column: Any, values: list[str]) -> dict[str, int]:
    """{value: lowest customer id} for the stored customers whose ``column`` is one of
    ``values``: one array query on PostgreSQL, one query per 5,000 values on SQLite (raw SQL:
    building a 100,000-value IN clause through the ORM cost more than running it)."""
    found: dict[str, int] = {}
    name = column._meta.db_column_name
    table = column._meta.table._meta.tablename
    key = "id" if table == "core_customer" else "customer"
    if not values:
        return found
    if _is_postgres():
        batches = [("= ANY({})", [values])]
    else:
        batches = [(f"IN ({', '.join('{}' for _ in chunk)})", chunk)
                   for chunk in (values[i:i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK))]
    for condition, args in batches:
        rows = await Customer.raw(
            f"SELECT {key} AS id, {name} AS value FROM {table} WHERE {name} {condition} "
            f"ORDER BY {key}", *args).run()
        for row in rows:
            found.setdefault(row["value"], row["id"])
    return found


@dataclass
class _Checked:
    """One record after validation (in a worker thread): its row, or its problems."""

    line: int
    row: PreparedRow | None
    problems: list[tuple[str, str]]
    raw: list[str] | None


def _check_chunk(iterator: Iterator[Any], size: int, kind: str, lookups: Lookups,
                 actor: Actor | None) -> list[_Checked]:
    """Read and validate up to ``size`` records: run in a thread, so neither reading the file
    nor the CPU-bound checks hold the event loop."""
    out = []
    for item in itertools.islice(iterator, size):
        line, record = item[0], item[1]
        raw = item[2] if len(item) > 2 else None
        row, problems = validate_row(kind, record, lookups, actor)
        if row is not None:
            row.line, row.raw = line, raw
        out.append(_Checked(line, row, problems, raw))
    return out


def _close_name_matches(rows: list[tuple[PreparedRow, int]],
                        stored: dict[int, list[tuple[int, str]]]) -> dict[int, int]:
    """{line: customer id} for contacts whose name is close (rapidfuzz, as the duplicate
    check of the forms) to a stored contact of the same account."""
    from rapidfuzz import fuzz, process

    from core.customers.duplicates import NAME_THRESHOLD

    found = {}
    for row, account in rows:
        candidates = stored.get(account)
        if not candidates:
            continue
        best = process.extractOne(row.values["name"].lower(), [n for _, n in candidates],
                                  scorer=fuzz.token_sort_ratio, score_cutoff=NAME_THRESHOLD)
        if best is not None:
            found[row.line] = candidates[best[2]][0]
    return found


class BadRows:
    """The bad rows of a CSV import as a CSV file the user can fix and import again: the
    file's own columns as they were, and a last column saying what is wrong."""

    def __init__(self, stream: IO[str], header: list[str]) -> None:
        self.writer = csv.writer(stream)
        self.writer.writerow([*header, BAD_ROWS_COLUMN])
        self.count = 0

    def add(self, raw: list[str] | None, problems: list[str]) -> None:
        if raw is None:
            return
        self.writer.writerow([*raw, "; ".join(problems)])
        self.count += 1


BAD_ROWS_COLUMN = "Import problem"


class _Rollback(Exception):
    """Raised inside the import transaction to undo it (a bad row, not a partial import)."""


class _Run:
    """One pass over the records: validation in chunks (in a thread), duplicates decided
    against the database and the rows before, and, unless checking only, the writes, all in
    one transaction. Memory stays bounded by the chunk size: only each row's email and phone
    (for duplicates within the file) and the names of new accounts are kept for the whole
    file."""

    def __init__(self, rapport: Rapport | None, actor: Actor | None, report: ImportReport,
                 lookups: Lookups, *, write: bool, source: str,
                 bad_rows: BadRows | None, progress: Progress | None, total: int) -> None:
        self.rapport, self.actor, self.report, self.lookups = rapport, actor, report, lookups
        self.write, self.source, self.bad_rows = write, source, bad_rows
        self.progress, self.total = progress, total
        self.seen: dict[str, int] = {}  # "email:x" / "phone:y" -> first line holding it
        self.new_accounts: set[str] = set()
        self.looked_up: set[str] = set()  # account names looked up (found or not)
        self.connection: Any = None
        self.now = datetime.now(UTC)
        self.stopped = False  # a bad row in an all-or-nothing import: write no more
        self.ids: list[int] = []  # first and last written per kind (for the announcement)
        self.account_ids: list[int] = []
        self.first_new: int | None = None
        self.updated: list[tuple[int, PreparedRow]] = []
        self.editable: set[int] = set()

    # -- problems ------------------------------------------------------------------------

    def _bad(self, item: _Checked, problems: list[tuple[str, str]]) -> None:
        report = self.report
        report.bad += 1
        for field_name, message in problems:
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(RowProblem(item.line, field_name, message))
            else:
                report.errors_left_out += 1
        if self.bad_rows is not None:
            self.bad_rows.add(item.raw, [f"{f}: {m}" if f else m for f, m in problems])

    def _warn(self, line: int, field_name: str, message: str) -> None:
        if len(self.report.warnings) < MAX_REPORTED_WARNINGS:
            self.report.warnings.append(RowProblem(line, field_name, message))

    # -- one chunk -----------------------------------------------------------------------

    async def chunk(self, checked: list[_Checked]) -> None:
        report = self.report
        good: list[PreparedRow] = []
        for item in checked:
            report.rows += 1
            if item.row is None:
                self._bad(item, item.problems)
            else:
                good.append(item.row)
        report.valid += len(good)
        if report.kind == "contact":
            await self._find_accounts({r.account_name for r in good if r.account_name})
        matches = await self._duplicates(good)
        to_insert: list[PreparedRow] = []
        to_update: list[tuple[int, PreparedRow]] = []
        for row in good:
            match = matches.get(row.line)
            if match is None:
                to_insert.append(row)
                continue
            customer_id, field_name, why = match
            report.duplicates += 1
            if customer_id is not None:
                why = f"likely duplicate of {why}"
            if report.on_duplicate == "new":
                to_insert.append(row)
                self._warn(row.line, field_name, why)
            elif report.on_duplicate == "skip" or customer_id is None:
                # (Update: a repeat of an earlier row of the file is skipped; the first wins.)
                report.skipped += 1
                self._warn(row.line, field_name, f"skipped: {why}")
            elif customer_id not in self.editable:
                report.duplicates -= 1
                report.valid -= 1
                self._bad(_Checked(row.line, None, [], row.raw),
                          [(field_name, f"{why}, which you may not change")])
            else:
                to_update.append((customer_id, row))
        if report.bad and not report.partial:
            self.stopped = True
        if self.report.kind == "contact":
            await self._accounts({r.account_name for r in to_insert if r.account_name}
                                 | {r.account_name for _, r in to_update if r.account_name})
        if self.write and not self.stopped:
            await self._insert(to_insert)
            self.updated.extend(to_update)
        report.new += len(to_insert)
        report.to_update += len(to_update)

    async def _duplicates(self, rows: list[PreparedRow]
                          ) -> dict[int, tuple[int | None, str, str]]:
        """{line: (customer id or None for an earlier row, field, what)} for rows that look like a
        stored customer or an earlier row of the file: the same email (main or any), the same
        phone, a contact with a close name at the same account; an account of the same name."""
        found: dict[int, tuple[int | None, str, str]] = {}
        if not rows:
            return found
        for row in rows:
            for key, label in ((row.values["primary_email"], "email"),
                               (row.values["primary_phone"], "phone")):
                if key and key in self.seen and row.line not in found:
                    found[row.line] = (None, label, f"same {label} as line {self.seen[key]}")
            for key in (row.values["primary_email"], row.values["primary_phone"]):
                if key:
                    self.seen.setdefault(key, row.line)
        rest = [r for r in rows if r.line not in found]
        emails = sorted({e for r in rest for e in r.emails})
        phones = sorted({p for r in rest for p in r.phones})
        by_email = await _existing(Customer.primary_email, emails)
        for value, cid in (await _existing(CustomerEmail.email, emails)).items():
            by_email.setdefault(value, cid)
        by_phone = await _existing(Customer.primary_phone, phones)
        for value, cid in (await _existing(CustomerPhone.phone, phones)).items():
            by_phone.setdefault(value, cid)
        for row in rest:
            for values, stored, label in ((row.emails, by_email, "email"),
                                          (row.phones, by_phone, "phone")):
                hit = next((v for v in values if v in stored), None)
                if hit and row.line not in found:
                    found[row.line] = (stored[hit], label,
                                       f"customer #{stored[hit]} (same {label} {hit})")
        rest = [r for r in rest if r.line not in found]
        if self.report.kind == "account":
            names = sorted({r.values["name"] for r in rest})
            stored_names = await _existing_names(names)
            for row in rest:
                cid = stored_names.get(row.values["name"].lower())
                if cid is not None:
                    found[row.line] = (cid, "name", f"account #{cid} (same name)")
        else:
            by_account = [(r, self.lookups.accounts[r.account_name]) for r in rest
                          if r.account_name in self.lookups.accounts]
            if by_account:
                stored_contacts: dict[int, list[tuple[int, str]]] = {}
                for r in await Customer.select(Customer.id, Customer.name, Customer.account).where(
                        Customer.account.is_in(sorted({a for _, a in by_account}))
                        & (Customer.kind == "contact") & Customer.erased_at.is_null()
                ).order_by(Customer.id).limit(MAX_NAME_CANDIDATES).run():
                    stored_contacts.setdefault(r["account"], []).append(
                        (r["id"], r["name"].lower()))
                close = await asyncio.to_thread(_close_name_matches, by_account,
                                                stored_contacts)
                for line, cid in close.items():
                    found[line] = (cid, "name",
                                   f"contact #{cid} (similar name at the same account)")
        if self.report.on_duplicate == "update":
            ids = sorted({m[0] for m in found.values() if m[0] is not None})
            if ids:
                query = Customer.select(Customer.id).where(Customer.id.is_in(ids))
                if self.rapport is not None and self.actor is not None \
                        and self.actor.kind == "staff":
                    query = scoped(query, self.rapport, self.actor, "core.customer.edit",
                                   Customer)
                self.editable |= {r["id"] for r in await query.run()}
        return found

    async def _find_accounts(self, names: set[str]) -> None:
        """Look up the stored accounts among ``names`` not looked up before."""
        unknown = names - set(self.lookups.accounts) - self.looked_up
        if unknown:
            self.lookups.accounts.update(
                await _existing_accounts(self.rapport, self.actor, unknown))
            self.looked_up |= unknown

    async def _accounts(self, names: set[str]) -> None:
        """Accounts the rows name that are not stored are new: created when writing."""
        fresh = sorted(names - set(self.lookups.accounts) - self.new_accounts)
        if not fresh:
            return
        self.new_accounts.update(fresh)
        if self.write and not self.stopped:
            ids = await _allocate_ids(self.connection, len(fresh))
            owner = self.actor.id if self.actor is not None and self.actor.kind == "staff" \
                else None
            rows = []
            for account_id, name in zip(ids, fresh, strict=True):
                self.lookups.accounts[name] = account_id
                rows.append((account_id, "account", name, "", "", "", None, owner, None,
                             "lead", self.source[:100], "", "", "", "", "", None, "", "", False,
                             None, "", self.now, self.now))
            await _insert_many(self.connection, "core_customer", CUSTOMER_COLUMNS, rows)
            self.account_ids += ids
            self.first_new = ids[0] if self.first_new is None else self.first_new

    # -- writing -------------------------------------------------------------------------

    async def _insert(self, prepared: list[PreparedRow]) -> None:
        if not prepared:
            return
        connection, now, source = self.connection, self.now, self.source
        ids = await _allocate_ids(connection, len(prepared))
        self.first_new = ids[0] if self.first_new is None else self.first_new
        self.ids += ids
        defs_by_id = {d.id: d for d in self.lookups.defs.values()}
        account_ids = self.lookups.accounts
        batch, emails, phones, tags, addresses, customs = [], [], [], [], [], []
        for row, cid in zip(prepared, ids, strict=True):
            v = row.values
            batch.append((cid, v["kind"], v["name"], v.get("first_name", ""),
                          v.get("last_name", ""), v["job_title"],
                          account_ids.get(row.account_name) if row.account_name else None,
                          v["owner"], v["team"], v["lifecycle_stage"],
                          v["source"] or source[:100], v["primary_email"],
                          v["primary_phone"], v["website"], v["industry"], v["notes"],
                          v["birthday"], v["preferred_channel"], v["opted_out_channels"],
                          v["do_not_contact"], v["annual_revenue"], v["currency"], now, now))
            emails += [(cid, e, "work") for e in row.emails]
            phones += [(cid, p, "work") for p in row.phones]
            tags += [(cid, t) for t in row.tags]
            if row.address:
                a = row.address
                addresses.append((cid, "main", a["street"], a["city"], a["region"],
                                  a["postcode"], a["country"]))
            for field_id, value in row.custom.items():
                for item in custom_fields.value_rows(cid, defs_by_id[field_id], value):
                    customs.append((cid, field_id, item.value_text, item.value_number,
                                    item.value_date, item.currency))
        await _insert_many(connection, "core_customer", CUSTOMER_COLUMNS, batch)
        await _insert_many(connection, "core_customer_email", ["customer", "email", "label"],
                           emails)
        await _insert_many(connection, "core_customer_phone", ["customer", "phone", "label"],
                           phones)
        await _insert_many(connection, "core_customer_tag", ["customer", "tag"], tags)
        await _insert_many(connection, "core_customer_address",
                           ["customer", "label", "street", "city", "region", "postcode",
                            "country"], addresses)
        await _insert_many(connection, "core_custom_value",
                           ["customer", "field", "value_text", "value_number", "value_date",
                            "currency"], customs)

    async def apply_updates(self) -> list[dict[str, Any]]:
        """Update the stored customers the file's duplicates matched (Update chosen): the
        values the row gives replace the stored ones, its emails, phones and tags are added.
        Run after the search triggers are back, so the search index follows; one audit entry
        per customer. Returns the customers' rows before the change."""
        from core.audit import AuditEntry, diff

        before_all: list[dict[str, Any]] = []
        defs_by_id = {d.id: d for d in self.lookups.defs.values()}
        for start in range(0, len(self.updated), BATCH):
            chunk = self.updated[start:start + BATCH]
            ids = sorted({cid for cid, _ in chunk})
            stored = {r["id"]: r for r in await Customer.select(
                *[getattr(Customer, c) for c in CUSTOMER_COLUMNS]).where(
                Customer.id.is_in(ids)).run()}
            have_emails = {(r["customer"], r["email"]) for r in await CustomerEmail.select(
                CustomerEmail.customer, CustomerEmail.email).where(
                CustomerEmail.customer.is_in(ids)).run()}
            have_phones = {(r["customer"], r["phone"]) for r in await CustomerPhone.select(
                CustomerPhone.customer, CustomerPhone.phone).where(
                CustomerPhone.customer.is_in(ids)).run()}
            have_tags = {(r["customer"], r["tag"]) for r in await CustomerTag.select(
                CustomerTag.customer, CustomerTag.tag).where(CustomerTag.customer.is_in(ids)
                                                             ).run()}
            updates, emails, phones, tags, customs, entries = [], [], [], [], [], []
            for cid, row in chunk:
                before = stored.get(cid)
                if before is None:
                    continue
                after = dict(before)
                for column in _given_columns(row):
                    after[column] = row.values[column]
                if before["kind"] == "contact" and row.given & {"first_name", "last_name"} and (
                        before["first_name"] or before["last_name"]
                        or {"first_name", "last_name"} <= row.given):
                    # A contact's name is its first and last names: keep the three agreeing
                    # (a contact stored with a whole name only keeps it unless both are given).
                    after["name"] = " ".join(
                        p for p in (after["first_name"], after["last_name"]) if p
                    ) or after["name"]
                if row.account_name:
                    after["account"] = self.lookups.accounts.get(row.account_name,
                                                                 before["account"])
                if not before["primary_email"] and row.emails:
                    after["primary_email"] = row.emails[0]
                if not before["primary_phone"] and row.phones:
                    after["primary_phone"] = row.phones[0]
                new_emails = [e for e in row.emails if (cid, e) not in have_emails
                              and e != before["primary_email"]]
                new_phones = [p for p in row.phones if (cid, p) not in have_phones
                              and p != before["primary_phone"]]
                new_tags = [t for t in row.tags if (cid, t) not in have_tags]
                have_emails |= {(cid, e) for e in new_emails}
                have_phones |= {(cid, p) for p in new_phones}
                have_tags |= {(cid, t) for t in new_tags}
                emails += [(cid, e, "work") for e in new_emails]
                phones += [(cid, p, "work") for p in new_phones]
                tags += [(cid, t) for t in new_tags]
                for field_id, value in row.custom.items():
                    for item in custom_fields.value_rows(cid, defs_by_id[field_id], value):
                        customs.append((cid, field_id, item.value_text, item.value_number,
                                        item.value_date, item.currency))
                changes = diff({k: before[k] for k in CUSTOMER_COLUMNS if k != "updated_at"},
                               {k: after[k] for k in CUSTOMER_COLUMNS if k != "updated_at"})
                if new_emails:
                    changes["emails"] = [None, "+" + ", ".join(new_emails)]
                if new_phones:
                    changes["phones"] = [None, "+" + ", ".join(new_phones)]
                if new_tags:
                    changes["tags"] = [None, "+" + ", ".join(new_tags)]
                if row.custom:
                    changes["custom_fields"] = [None, ", ".join(
                        defs_by_id[f].label for f in row.custom)]
                if not changes:
                    continue
                after["updated_at"] = self.now
                updates.append(after)
                before_all.append(before)
                entries.append(_audit_entry(self.actor, cid, changes, self.source))
            if updates:
                columns = [c for c in CUSTOMER_COLUMNS if c not in ("id", "kind", "created_at")]
                await _execute_many(
                    self.connection, "UPDATE core_customer SET "
                    + ", ".join(f"{c} = {_mark(i)}" for i, c in enumerate(columns, 1))
                    + f" WHERE id = {_mark(len(columns) + 1)}",
                    [tuple(values[c] for c in columns) + (values["id"],) for values in updates])
            if customs:
                await _execute_many(
                    self.connection,
                    f"DELETE FROM core_custom_value WHERE customer = {_mark(1)} "
                    f"AND field = {_mark(2)}", sorted({(c[0], c[1]) for c in customs}))
            await _insert_many(self.connection, "core_customer_email",
                               ["customer", "email", "label"], emails)
            await _insert_many(self.connection, "core_customer_phone",
                               ["customer", "phone", "label"], phones)
            await _insert_many(self.connection, "core_customer_tag", ["customer", "tag"], tags)
            await _insert_many(self.connection, "core_custom_value",
                               ["customer", "field", "value_text", "value_number",
                                "value_date", "currency"], customs)
            if entries:
                await AuditEntry.insert(*entries).run()
        return before_all


async def _existing_names(names: list[str]) -> dict[str, int]:
    """{name: lowest id} of the stored accounts named exactly one of ``names``."""
    found: dict[str, int] = {}
    for i in range(0, len(names), LOOKUP_CHUNK):
        chunk = names[i:i + LOOKUP_CHUNK]
        for row in await Customer.select(Customer.id, Customer.name).where(
                (Customer.kind == "account") & Customer.name.is_in(chunk)
                & Customer.erased_at.is_null()).order_by(Customer.id).run():
            found.setdefault(row["name"].lower(), row["id"])
    return {name.lower(): cid for name, cid in found.items()}


UPDATABLE = {"name": ("name",), "first_name": ("first_name",),
             "last_name": ("last_name",), "job_title": ("job_title",),
             "source": ("source",), "industry": ("industry",), "notes": ("notes",),
             "website": ("website",), "birthday": ("birthday",),
             "preferred_channel": ("preferred_channel",),
             "do_not_contact": ("do_not_contact",), "annual_revenue": ("annual_revenue",),
             "currency": ("currency",), "lifecycle_stage": ("lifecycle_stage",),
             "owner": ("owner",), "team": ("team",)}


def _given_columns(row: PreparedRow) -> list[str]:
    """The stored columns an update may change: those the row gives a value for."""
    columns: list[str] = []
    for name in row.given:
        for column in UPDATABLE.get(name, ()):
            if column not in columns and column in row.values:
                columns.append(column)
    return columns


def _audit_entry(actor: Actor | None, customer_id: int, changes: dict[str, list[Any]],
                 source: str) -> Any:
    from core.audit import SYSTEM, AuditEntry

    actor = actor or SYSTEM
    return AuditEntry(
        occurred_at=datetime.now(UTC), actor_kind="system" if actor is SYSTEM else actor.kind,
        actor_id=actor.id, actor_label=actor.email or actor.name, action="update",
        record_type=Customer._meta.tablename, record_id=str(customer_id), ip="",
        changes=json.dumps(changes, default=str),
        summary="Updated by an import" + (f" from {source}" if source else ""))


async def import_records(rapport: Rapport | None, actor: Actor | None, kind: str,
                         records: Iterable[tuple[Any, ...]], *, dry_run: bool,
                         source: str = "", progress: Progress | None = None,
                         partial: bool = False, on_duplicate: str = "new",
                         bad_rows: BadRows | None = None, total: int = 0) -> ImportReport:
    """Check (``dry_run``) or import already-mapped records: ``(line, {field: text})`` or
    ``(line, {field: text}, the file's cells)``.

    The records are read and validated a chunk at a time in a worker thread (the event loop
    stays free; memory is bounded by the chunk), and written in ONE transaction. Without
    ``partial`` one bad row means nothing is written; with it the good rows are written and
    the bad ones reported (and written to ``bad_rows``). Rows that look like a stored
    customer or an earlier row are imported as new with a warning (``on_duplicate="new"``),
    skipped (``"skip"``) or update the stored customer (``"update"``)."""
    from piccolo.engine.sqlite import TransactionType

    if kind not in ("account", "contact"):
        raise ImportFileError("import accounts or contacts")
    if on_duplicate not in DUPLICATE_CHOICES:
        raise ImportFileError(f"duplicates: choose {', '.join(DUPLICATE_CHOICES)}")
    report = ImportReport(kind=kind, partial=partial, on_duplicate=on_duplicate)
    lookups = await load_lookups(rapport, actor, kind, set())
    run = _Run(rapport, actor, report, lookups, write=not dry_run, source=source,
               bad_rows=bad_rows, progress=progress, total=total)
    iterator = iter(records)

    async def every_chunk() -> None:
        while True:
            checked = await asyncio.to_thread(_check_chunk, iterator, BATCH, kind, lookups,
                                              actor)
            if not checked:
                return
            await run.chunk(checked)
            if progress:
                progress("checking" if dry_run or run.stopped else "importing", report.rows,
                         total or report.rows)

    if dry_run:
        await every_chunk()
        report.new_accounts = sorted(run.new_accounts)
        return report

    engine = Customer._meta.db
    options = {} if _is_postgres() else {"transaction_type": TransactionType.immediate}
    touched: list[dict[str, Any]] = []
    try:
        async with engine.transaction(**options) as transaction:
            run.connection = connection = transaction.connection
            dropped: list[tuple[str, str]] = []
            if not _is_postgres():
                # This transaction has a connection of its own: a page cache big enough for
                # the customer table's indexes (SQLite's default is 2 MB) made 100,000 inserts
                # several times faster by not spilling pages mid-import.
                await connection.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
                # Per-row search-index triggers would dominate the import; pause them inside
                # this exclusive transaction and index the new customers in one go below.
                await connection.execute(
                    "INSERT INTO core_search_pause (reason) VALUES ('import')")
                # Even paused, an AFTER INSERT trigger costs SQLite ~70 us per row, so the
                # pausable ones on the tables written here are dropped and re-created verbatim
                # before the commit: DDL is transactional in SQLite, so other connections
                # never see them missing, and a failed import restores them.
                async with connection.execute(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                        "AND tbl_name IN (" + ", ".join(f"'{t}'" for t in WRITTEN_TABLES)
                        + ") AND sql LIKE '%AFTER INSERT%core_search_pause%'") as cursor:
                    dropped = [(r["name"], r["sql"]) for r in await cursor.fetchall()]
                for trigger, _ in dropped:
                    await connection.execute(f'DROP TRIGGER "{trigger}"')
            await every_chunk()
            if run.stopped or report.rows == 0:
                raise _Rollback
            if not _is_postgres():
                if run.first_new is not None:
                    await connection.execute(
                        "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
                        "SELECT id, name, emails, phones, account FROM core_search_customer_doc "
                        "WHERE id >= ?", [run.first_new])
                await connection.execute("DELETE FROM core_search_pause")
                for _, sql in dropped:
                    await connection.execute(sql)
            touched = await run.apply_updates()
            report.first_id, report.last_id = (
                (min(run.ids), max(run.ids)) if run.ids else (None, None))
            what = f"{report.kind}s"
            summary = f"Imported {report.new} {what}"
            if report.to_update:
                summary += f", updated {report.to_update}"
            if report.skipped:
                summary += f", skipped {report.skipped} duplicates"
            if report.bad:
                summary += f", left out {report.bad} bad rows"
            await audit.record(
                actor, "import", Customer._meta.tablename, "",
                {"rows": [None, report.new],
                 "ids": [None, f"{report.first_id}-{report.last_id}"],
                 "new_accounts": [None, len(run.account_ids)],
                 "updated": [None, report.to_update], "skipped": [None, report.skipped],
                 "bad": [None, report.bad]},
                summary=summary + (f" from {source}" if source else ""))
    except _Rollback:
        report.new_accounts = sorted(run.new_accounts)
        return report
    report.new_accounts = sorted(run.new_accounts)
    report.committed = True
    report.created, report.updated = report.new, report.to_update
    # Open lists learn of the new customers as id ranges (one message per kind, not per row).
    for what, kind_ids in (("account", run.account_ids), (report.kind, run.ids)):
        if kind_ids:
            await announce(rapport, actor, EVENT_IMPORTED, {
                "kind": what, "first_id": min(kind_ids), "last_id": max(kind_ids),
                "count": len(kind_ids), "source": source})
    if touched:
        await announce(rapport, actor, EVENT_BULK_CHANGED, {
            "ids": [t["id"] for t in touched], "action": "import",
            "before": [{"id": t["id"], "owner": t.get("owner"), "team": t.get("team")}
                       for t in touched]})
    return report


def open_csv(path: str | Path) -> IO[str]:
    """The uploaded file as text, streamed: its encoding is found by a first pass over its
    lines (mixed encodings refused naming the lines), then it is read a line at a time."""
    with open(path, "rb") as raw:
        encoding = check_encoding(raw)
    return open(path, encoding=encoding, newline="")  # noqa: SIM115 (the caller closes it)


async def import_csv(rapport: Rapport | None, actor: Actor | None, kind: str,
                     source_text: str | IO[str], mapping: dict[str, str] | None = None, *,
                     dry_run: bool, source: str = "", progress: Progress | None = None,
                     partial: bool = False, on_duplicate: str = "new",
                     bad_rows: IO[str] | None = None) -> ImportReport:
    """Import CSV (text, or a text file read as it goes). Without ``mapping`` the columns
    are guessed from the header. ``bad_rows`` receives the bad rows as CSV."""
    header, rows = read_csv(source_text)
    defs = await custom_fields.field_definitions(kind)
    if mapping is None:
        mapping = guess_mapping(header, kind, defs)
    pairs = apply_mapping(header, mapping, kind, [d.form_name for d in defs])
    sink = BadRows(bad_rows, header) if bad_rows is not None else None
    return await import_records(rapport, actor, kind, rows_as_dicts(rows, pairs),
                                dry_run=dry_run, source=source, progress=progress,
                                partial=partial, on_duplicate=on_duplicate, bad_rows=sink)


# --- command line ----------------------------------------------------------------------------


def run_from_command_line(ctx: Any, kind: str, path: str, maps: tuple[str, ...],
                          dry_run: bool, file_format: str, *, skip_bad_rows: bool = False,
                          bad_rows_path: str | None = None, on_duplicate: str = "new") -> None:
    """``rapport import contacts|accounts|vcard``: a progress bar, every bad row named, and a
    non-zero exit when any row is bad (nothing is written then, unless ``--skip-bad-rows``:
    the good rows are written and the bad ones can go to a CSV file with ``--bad-rows``)."""
    import asyncio

    import click
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from core import db, live
    from core.cli import get_rapport

    rapport = get_rapport(ctx)
    console = Console()
    try:
        mapping = parse_map_options(maps) if maps else None
    except ImportFileError as exc:
        raise click.UsageError(str(exc)) from None

    async def check_and_import() -> ImportReport:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("reading", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done)

            if file_format == "vcard":
                from core.customers.vcard import import_vcard

                return await import_vcard(rapport, None, decode(Path(path).read_bytes()),
                                          dry_run=dry_run, source=Path(path).name,
                                          progress=progress)
            defs = await custom_fields.field_definitions(kind)
            with open_csv(path) as stream:
                header, _ = read_csv(stream)
                wanted = guess_mapping(header, kind, defs)
                if mapping:
                    # Columns named on the command line win; the rest keep their guesses.
                    wanted = {c: f for c, f in wanted.items() if f not in mapping.values()}
                    wanted.update(mapping)
                stream.seek(0)
                bad = open(bad_rows_path, "w", newline="", encoding="utf-8") \
                    if bad_rows_path else None  # noqa: SIM115
                try:
                    return await import_csv(
                        rapport, None, kind, stream, wanted, dry_run=dry_run,
                        source=Path(path).name, progress=progress, partial=skip_bad_rows,
                        on_duplicate=on_duplicate, bad_rows=bad)
                finally:
                    if bad is not None:
                        bad.close()

    async def work() -> ImportReport:
        rapport.activate()
        await db.connect(rapport.engine, pool_size=2)
        try:
            await db.ensure_migrated(rapport.piccolo_apps())
            # Open lists on the servers hear of the import (Redis or PostgreSQL channels).
            async with live.publishing(rapport):
                return await check_and_import()
        finally:
            await db.disconnect(rapport.engine)

    try:
        report = asyncio.run(work())
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in report.errors:
        console.print(f"[red]{problem}[/red]", highlight=False)
    if report.errors_left_out:
        console.print(f"[red]... and {report.errors_left_out} more problems[/red]")
    for problem in report.warnings[:50]:
        console.print(f"[yellow]warning: {problem}[/yellow]", highlight=False)
    if len(report.warnings) > 50:
        console.print(f"[yellow]... and {len(report.warnings) - 50} more warnings[/yellow]")
    if report.new_accounts:
        console.print(f"{len(report.new_accounts)} new account(s)"
                      f"{'' if report.committed else ' will be created'}: "
                      f"{', '.join(report.new_accounts[:10])}", highlight=False)
    if bad_rows_path and report.bad:
        console.print(f"The bad rows are in {bad_rows_path}, with the problem in a last column: "
                      "fix them there and import that file.", highlight=False)
    if report.rows == 0:
        raise click.ClickException("the file holds no rows to import")
    done = []
    if report.duplicates and on_duplicate == "skip":
        done.append(f"skipped {report.skipped} duplicates")
    if report.committed:
        done.insert(0, f"Imported {report.created} {kind}s")
        if report.updated:
            done.insert(1, f"updated {report.updated}")
        if report.bad:
            done.append(f"left out {report.bad} bad rows")
        console.print(", ".join(done) + ".", highlight=False)
        return
    if report.bad and not dry_run:
        raise click.ClickException(f"{report.bad} of {report.rows} rows are bad; nothing was "
                                   "imported (--skip-bad-rows imports the good ones)")
    if report.bad:
        raise click.ClickException(f"{report.bad} of {report.rows} rows are bad")
    console.print(f"Dry run: all {report.rows} rows are good"
                  + (f" ({report.duplicates} look like customers already stored)"
                     if report.duplicates else "") + "; nothing was written.", highlight=False)
