"""Importing accounts and contacts from CSV (and, through :mod:`core.customers.vcard`, vCard).

Two steps, the same from the CLI and the web: a dry run validates EVERY row and reports every
bad one with its line number and reason (and likely duplicates as warnings); the commit writes
all rows in ONE transaction, or none. Speed comes from validating in Python with everything
looked up in bulk beforehand (users, teams, accounts, custom fields, existing emails), then
inserting in batches with ``executemany`` and ids allocated up front: no query per row.

    report = await import_rows(rapport, actor, "contact", rows, mapping, dry_run=True)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

from phonenumbers import re_util

from core import audit
from core.customers import custom_fields
from core.customers.service import (
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

    @property
    def ok(self) -> bool:
        return not self.errors and self.rows > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "valid": self.valid, "created": self.created,
            "committed": self.committed, "new_accounts": self.new_accounts,
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
                yield start, BrokenRow(
                    f"a quote opened on this line is not closed before line {end}, so lines "
                    f"{start + 1}-{end} were read as part of this row: close the quote", cells)
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
        custom=custom), []


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
                  ) -> Iterator[tuple[int, dict[str, str]]]:
    multi = {"tags", "emails", "phones", "notes"}
    for line, cells in rows:
        if isinstance(cells, BrokenRow):
            yield line, {PROBLEM: cells.message}
            continue
        record: dict[str, str] = {}
        for index, target in pairs:
            value = cells[index] if index < len(cells) else ""
            if target in record and target in multi and value.strip():
                record[target] = record[target] + ";" + value
            elif target not in record or not record[target].strip():
                record[target] = value
        yield line, record


async def _existing(column: Any, values: list[str]) -> dict[str, int]:
    """{value: lowest customer id} for the stored customers whose ``column`` is one of
    ``values``: one array query on PostgreSQL, one query per 5,000 values on SQLite (raw SQL:
    building a 100,000-value IN clause through the ORM cost more than running it)."""
    found: dict[str, int] = {}
    name = column._meta.db_column_name
    if not values:
        return found
    if _is_postgres():
        batches = [("= ANY({})", [values])]
    else:
        batches = [(f"IN ({', '.join('{}' for _ in chunk)})", chunk)
                   for chunk in (values[i:i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK))]
    for condition, args in batches:
        rows = await Customer.raw(
            f"SELECT id, {name} AS value FROM core_customer WHERE {name} {condition} "
            "ORDER BY id", *args).run()
        for row in rows:
            found.setdefault(row["value"], row["id"])
    return found


async def prepare(rapport: Rapport | None, actor: Actor | None, kind: str,
                  records: Iterable[tuple[int, dict[str, str]]], *,
                  progress: Progress | None = None, total: int = 0
                  ) -> tuple[ImportReport, list[PreparedRow], Lookups]:
    """Validate every record; the report lists every bad row and likely duplicates."""
    records = list(records)
    report = ImportReport(kind=kind, rows=len(records))
    names = {" ".join(r.get("account", "").split()) for _, r in records} - {""}
    lookups = await load_lookups(rapport, actor, kind, names if kind == "contact" else set())
    prepared: list[PreparedRow] = []
    for n, (line, record) in enumerate(records, 1):
        row, problems = validate_row(kind, record, lookups, actor)
        if row is None:
            report.errors.extend(RowProblem(line, f, m) for f, m in problems)
        else:
            row.line = line
            prepared.append(row)
        if progress and n % BATCH == 0:
            progress("checking", n, total or len(records))
    report.valid = len(prepared)
    report.new_accounts = sorted({r.account_name for r in prepared if r.account_name}
                                 - set(lookups.accounts))
    await _warn_duplicates(report, prepared)
    return report, prepared, lookups


async def _warn_duplicates(report: ImportReport, prepared: list[PreparedRow]) -> None:
    """Likely duplicates are warnings, not errors: the same email or phone already stored,
    or twice in the file."""
    seen: dict[str, int] = {}
    emails = sorted({r.values["primary_email"] for r in prepared if r.values["primary_email"]})
    phones = sorted({r.values["primary_phone"] for r in prepared if r.values["primary_phone"]})
    stored_emails = await _existing(Customer.primary_email, emails)
    stored_phones = await _existing(Customer.primary_phone, phones)
    for row in prepared:
        if len(report.warnings) >= MAX_REPORTED_WARNINGS:
            break
        for key, stored, label in ((row.values["primary_email"], stored_emails, "email"),
                                   (row.values["primary_phone"], stored_phones, "phone")):
            if not key:
                continue
            if key in stored:
                report.warnings.append(RowProblem(
                    row.line, label, f"likely duplicate of customer #{stored[key]} "
                                     f"(same {label} {key})"))
            elif key in seen:
                report.warnings.append(RowProblem(
                    row.line, label, f"same {label} as line {seen[key]}"))
            else:
                seen[key] = row.line


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


async def commit(rapport: Rapport | None, actor: Actor | None, report: ImportReport,
                 prepared: list[PreparedRow], lookups: Lookups, *, source: str = "",
                 progress: Progress | None = None) -> ImportReport:
    """Write every prepared row in one transaction (all or nothing)."""
    from piccolo.engine.sqlite import TransactionType

    engine = Customer._meta.db
    options = {} if _is_postgres() else {"transaction_type": TransactionType.immediate}
    now = datetime.now(UTC)
    total = len(prepared)
    async with engine.transaction(**options) as transaction:
        connection = transaction.connection
        if not _is_postgres():
            # This transaction has a connection of its own: a page cache big enough for the
            # customer table's indexes (SQLite's default is 2 MB; it grows only as needed)
            # made 100,000 inserts several times faster by not spilling pages mid-import.
            await connection.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
            # Per-row search-index triggers would dominate the import; pause them inside
            # this exclusive transaction and index the new customers in one go below.
            await connection.execute("INSERT INTO core_search_pause (reason) VALUES ('import')")
            # Even paused, an AFTER INSERT trigger costs SQLite ~70 us per row (two thirds of
            # the insert time), so the pausable ones on the tables written here are dropped
            # and re-created verbatim before the commit: DDL is transactional in SQLite, so
            # other connections never see them missing, and a failed import restores them.
            async with connection.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name IN (" + ", ".join(f"'{t}'" for t in WRITTEN_TABLES) + ") "
                    "AND sql LIKE '%AFTER INSERT%core_search_pause%'") as cursor:
                dropped = [(r["name"], r["sql"]) for r in await cursor.fetchall()]
            for trigger, _ in dropped:
                await connection.execute(f'DROP TRIGGER "{trigger}"')
        account_ids = dict(lookups.accounts)
        new_ids = await _allocate_ids(connection, len(report.new_accounts))
        account_rows = []
        for account_id, name in zip(new_ids, report.new_accounts, strict=True):
            account_ids[name] = account_id
            account_rows.append((account_id, "account", name, "", "", "", None,
                                 actor.id if actor is not None and actor.kind == "staff"
                                 else None, None, "lead", source[:100], "", "", "", "", "",
                                 None, "", "", False, None, "", now, now))
        await _insert_many(connection, "core_customer", CUSTOMER_COLUMNS, account_rows)
        ids = await _allocate_ids(connection, total)
        defs_by_id = {d.id: d for d in lookups.defs.values()}
        emails, phones, tags, addresses, customs = [], [], [], [], []
        for done in range(0, total, BATCH):
            batch = []
            for row, cid in zip(prepared[done:done + BATCH], ids[done:done + BATCH],
                                strict=True):
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
                    definition = defs_by_id[field_id]
                    for item in custom_fields.value_rows(cid, definition, value):
                        customs.append((cid, field_id, item.value_text, item.value_number,
                                        item.value_date, item.currency))
            await _insert_many(connection, "core_customer", CUSTOMER_COLUMNS, batch)
            if progress:
                progress("importing", min(done + BATCH, total), total)
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
        if not _is_postgres() and (new_ids or ids):
            first_new = (new_ids or ids)[0]
            await connection.execute(
                "INSERT INTO core_search_customer(rowid, name, emails, phones, account) "
                "SELECT id, name, emails, phones, account FROM core_search_customer_doc "
                "WHERE id >= ?", [first_new])
        if not _is_postgres():
            await connection.execute("DELETE FROM core_search_pause")
            for _, sql in dropped:
                await connection.execute(sql)
        report.created = total
        report.first_id, report.last_id = (ids[0], ids[-1]) if ids else (None, None)
        what = f"{report.kind}s"
        await audit.record(
            actor, "import", Customer._meta.tablename, "",
            {"rows": [None, total], "ids": [None, f"{report.first_id}-{report.last_id}"],
             "new_accounts": [None, len(report.new_accounts)]},
            summary=f"Imported {total} {what}" + (f" from {source}" if source else ""))
    report.committed = True
    # Open lists learn of the new customers as id ranges (one message per kind, not per row).
    for kind, kind_ids in (("account", new_ids), (report.kind, ids)):
        if kind_ids:
            await announce(rapport, actor, EVENT_IMPORTED, {
                "kind": kind, "first_id": min(kind_ids), "last_id": max(kind_ids),
                "count": len(kind_ids), "source": source})
    return report


async def import_records(rapport: Rapport | None, actor: Actor | None, kind: str,
                         records: Iterable[tuple[int, dict[str, str]]], *, dry_run: bool,
                         source: str = "", progress: Progress | None = None) -> ImportReport:
    """Validate (and unless ``dry_run`` or any row is bad, write) already-mapped records."""
    if kind not in ("account", "contact"):
        raise ImportFileError("import accounts or contacts")
    report, prepared, lookups = await prepare(rapport, actor, kind, records, progress=progress)
    if dry_run or not report.ok:
        return report
    return await commit(rapport, actor, report, prepared, lookups, source=source,
                        progress=progress)


async def import_csv(rapport: Rapport | None, actor: Actor | None, kind: str, text: str,
                     mapping: dict[str, str] | None = None, *, dry_run: bool,
                     source: str = "", progress: Progress | None = None) -> ImportReport:
    """Import CSV text. Without ``mapping`` the columns are guessed from the header."""
    header, rows = read_csv(text)
    defs = await custom_fields.field_definitions(kind)
    if mapping is None:
        mapping = guess_mapping(header, kind, defs)
    pairs = apply_mapping(header, mapping, kind, [d.form_name for d in defs])
    return await import_records(rapport, actor, kind, rows_as_dicts(rows, pairs),
                                dry_run=dry_run, source=source, progress=progress)


# --- command line ----------------------------------------------------------------------------


def run_from_command_line(ctx: Any, kind: str, path: str, maps: tuple[str, ...],
                          dry_run: bool, file_format: str) -> None:
    """``rapport import contacts|accounts|vcard``: a progress bar, every bad row named, and a
    non-zero exit when any row is bad (nothing is written then)."""
    import asyncio
    from pathlib import Path

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
    try:
        text = decode(Path(path).read_bytes())
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None

    async def check_and_import() -> ImportReport:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("reading", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done, total=total)

            if file_format == "vcard":
                from core.customers.vcard import import_vcard

                return await import_vcard(rapport, None, text, dry_run=dry_run,
                                          source=Path(path).name, progress=progress)
            defs = await custom_fields.field_definitions(kind)
            header, _ = read_csv(text)
            wanted = guess_mapping(header, kind, defs)
            if mapping:
                # Columns named on the command line win; the rest keep their guesses.
                wanted = {c: f for c, f in wanted.items() if f not in mapping.values()}
                wanted.update(mapping)
            return await import_csv(rapport, None, kind, text, wanted, dry_run=dry_run,
                                    source=Path(path).name, progress=progress)

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
    for problem in report.warnings[:50]:
        console.print(f"[yellow]warning: {problem}[/yellow]", highlight=False)
    if len(report.warnings) > 50:
        console.print(f"[yellow]... and {len(report.warnings) - 50} more warnings[/yellow]")
    if report.new_accounts:
        console.print(f"{len(report.new_accounts)} new account(s) will be created: "
                      f"{', '.join(report.new_accounts[:10])}", highlight=False)
    if report.errors:
        bad = len({p.line for p in report.errors})
        raise click.ClickException(f"{bad} of {report.rows} rows are bad; nothing was imported")
    if report.rows == 0:
        raise click.ClickException("the file holds no rows to import")
    if dry_run:
        console.print(f"Dry run: all {report.rows} rows are good; nothing was written.")
    else:
        console.print(f"Imported {report.created} {kind}s.")
