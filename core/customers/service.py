"""Creating, changing and deleting customers: the one place their rules live.

Every write (web form, API, import, demo data) goes through here, so every customer is
validated the same way and audited through :mod:`core.records` in one transaction with its
emails, phones, addresses, tags and custom values.

    row = await create_customer(rapport, actor, {"kind": "contact", "first_name": "Ada",
                                                 "last_name": "Lovelace",
                                                 "emails": ["ada@example.org"]})
    await update_customer(rapport, actor, row["id"], {"lifecycle_stage": "customer"})
    await delete_customer(rapport, actor, row["id"])

Bad input raises :class:`CustomerError` naming the field (``errors`` holds every problem
found, for forms); a customer outside the actor's scope raises :class:`CustomerNotFound`.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import phonenumbers

from core import audit, records, references
from core.customers import custom_fields
from core.customers.tables import (
    CHANNELS,
    KINDS,
    LIFECYCLE_STAGES,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomerTag,
)
from core.permissions import Actor, row_filter, scoped

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.customers")

DEFAULT_REGION = "GB"
# Announced after each write commits (live lists, plugins). Payloads carry ids, the kind and
# the owner/team before and after, never contents: see docs/notifications.md.
EVENT_CREATED = "core.customer.created"
EVENT_UPDATED = "core.customer.updated"
EVENT_DELETED = "core.customer.deleted"
EVENT_MERGED = "core.customer.merged"
EVENT_BULK_CHANGED = "core.customer.bulk_changed"
EVENT_IMPORTED = "core.customer.imported"
# Durable (docs/events.md): consent given or withdrawn, do-not-contact, opt-outs, preferred
# channel. Contact preferences are the customer's columns it watches.
EVENT_CONSENT_CHANGED = "core.customer.consent_changed"
CONTACT_PREFERENCES = ("preferred_channel", "opted_out_channels", "do_not_contact")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+$")
TAG = re.compile(r"^[\w][\w .:/&+-]{0,63}$")
# Plain columns a caller may set, with their maximum lengths (``None``: not text).
TEXT_FIELDS = {"job_title": 150, "source": 100, "industry": 150, "notes": 20000}
SUB_RECORDS = ("emails", "phones", "addresses", "tags")


class CustomerError(ValueError):
    """Bad input for a customer. ``field`` and ``message`` name the first problem;
    ``errors`` maps every field found wrong to its message (forms show them all)."""

    def __init__(self, field: str, message: str,
                 errors: dict[str, str] | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors = dict(errors or {field: message})


class CustomerNotFound(LookupError):
    """No such customer within the actor's scope (answer 404, never 403)."""


def default_region() -> str:
    """Region for phone numbers written without a country code: ``RAPPORT_DEFAULT_REGION``
    (ISO 3166 code, default ``GB``)."""
    return (os.environ.get("RAPPORT_DEFAULT_REGION") or DEFAULT_REGION).strip().upper()


def normalise_email(raw: str) -> str:
    """Lower-case and trim an email address; raise ``ValueError`` if it is not one."""
    email = str(raw).strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise ValueError(f"{raw!r} is not an email address")
    return email


def phone_region(*candidates: str | None) -> str:
    """The region to read numbers written without a country code in: the first of
    ``candidates`` that is a two-letter country code (the customer's country, then the
    user's), else the instance's :func:`default_region`."""
    for candidate in candidates:
        code = str(candidate or "").strip().upper()
        if re.fullmatch(r"[A-Z]{2}", code) and \
                phonenumbers.country_code_for_region(code):
            return code
    return default_region()


def country_name(code: str) -> str:
    """``DE`` -> ``Germany`` (English names; the code itself when unknown)."""
    from babel import Locale

    return Locale("en").territories.get(code.upper(), code.upper())


def normalise_phone(raw: str, region: str | None = None) -> str:
    """Return the number in E.164 (``+441632960961``); raise ``ValueError`` if invalid.

    A number without a country code is read as one of ``region``; when it is not a valid
    number there, the message says which country was assumed and to add the country code,
    since the number is most likely from somewhere else."""
    text = str(raw).strip()
    region = (region or default_region()).upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = re.sub(r"[\s()./-]", "", text)
    if re.fullmatch(r"\d{4,}", digits):  # written without a country code
        other = "+33 for France" if region == "DE" else "+49 for Germany"
        raise ValueError(f"{text!r} is not a valid phone number in {country_name(region)}: "
                         f"add the country code (like {other})")
    raise ValueError(f"{text!r} is not a valid phone number")


def display_phone(e164: str | None) -> str:
    """An E.164 number formatted for people (international format): ``+49 30 123456``."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None),
                                          phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


# --- validation ------------------------------------------------------------------------------


class _Problems:
    """Collects every problem so a form can show them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def raise_if_any(self) -> None:
        if self.errors:
            field, message = next(iter(self.errors.items()))
            raise CustomerError(field, message, self.errors)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\n,;]", value) if v.strip()]
    return list(value)


def _clean_emails(raw: Any, problems: _Problems) -> list[dict[str, str]]:
    found: dict[str, str] = {}
    for i, item in enumerate(_as_list(raw)):
        address, label = (item.get("email", ""), item.get("label") or "work") \
            if isinstance(item, dict) else (item, "work")
        if not str(address).strip():
            continue
        try:
            found.setdefault(normalise_email(address), str(label)[:40])
        except ValueError:
            problems.add("emails" if i == 0 else f"emails[{i}]",
                         f"{str(address).strip()!r} is not an email address")
    return [{"email": e, "label": label} for e, label in found.items()]


def _clean_phones(raw: Any, problems: _Problems, region: str) -> list[dict[str, str]]:
    found: dict[str, str] = {}
    for i, item in enumerate(_as_list(raw)):
        number, label = (item.get("phone", ""), item.get("label") or "work") \
            if isinstance(item, dict) else (item, "work")
        if not str(number).strip():
            continue
        try:
            found.setdefault(normalise_phone(number, region), str(label)[:40])
        except ValueError as exc:
            problems.add("phones" if i == 0 else f"phones[{i}]", str(exc))
    return [{"phone": p, "label": label} for p, label in found.items()]


ADDRESS_FIELDS = {"label": 40, "street": 300, "city": 150, "region": 150, "postcode": 30,
                  "country": 2}


def _clean_addresses(raw: Any, problems: _Problems) -> list[dict[str, Any]]:
    cleaned = []
    for i, item in enumerate(raw or []):
        if not isinstance(item, dict):
            problems.add(f"addresses[{i}]", "must be an object with street, city, ...")
            continue
        address: dict[str, Any] = {}
        for name, length in ADDRESS_FIELDS.items():
            value = str(item.get(name) or "").strip()
            if len(value) > length:
                problems.add(f"addresses[{i}].{name}", f"is longer than {length} characters")
            address[name] = value
        address["label"] = address["label"] or "main"
        address["country"] = address["country"].upper()
        if address["country"] and not re.fullmatch(r"[A-Z]{2}", address["country"]):
            problems.add(f"addresses[{i}].country", "must be a two-letter country code (GB, FR)")
        for name in ("latitude", "longitude"):
            value = item.get(name)
            if value in (None, ""):
                address[name] = None
                continue
            try:
                address[name] = Decimal(str(value))
            except InvalidOperation:
                problems.add(f"addresses[{i}].{name}", "must be a number")
        if any(address[n] for n in ("street", "city", "region", "postcode", "country")):
            cleaned.append(address)
    return cleaned


def _clean_tags(raw: Any, problems: _Problems) -> list[str]:
    tags: list[str] = []
    for item in _as_list(raw):
        tag = " ".join(str(item).split()).lower()
        if not tag:
            continue
        if not TAG.match(tag):
            problems.add("tags", f"{tag!r} is not a tag (letters, digits, spaces, - _ . : / & +; "
                                 "at most 64 characters)")
            continue
        if tag not in tags:
            tags.append(tag)
    return tags


def _id_or_none(value: Any, field: str, problems: _Problems) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        problems.add(field, "must be an id (a whole number)")
        return None


async def _clean(rapport: Rapport | None, actor: Actor | None, data: dict[str, Any], *,
                 current: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any],
                                                          dict[int, Any], list]:
    """Validate ``data`` (all of it when creating, only the keys present when updating).

    Returns (column values, sub-records, custom values by field id, custom field defs).
    """
    problems = _Problems()
    creating = current is None
    values: dict[str, Any] = {}
    subs: dict[str, Any] = {}
    kind = data.get("kind", current["kind"] if current else None)
    if kind not in KINDS:
        problems.add("kind", "must be account or contact")
        problems.raise_if_any()
    if not creating and "kind" in data and data["kind"] != current["kind"]:
        problems.add("kind", "cannot be changed; create a new customer instead")
    values["kind"] = kind

    # Names: a contact's name is made of first and last name unless given whole.
    def given(name: str) -> bool:
        return name in data or creating

    if kind == "contact":
        first = str(data.get("first_name", current["first_name"] if current else "") or "").strip()
        last = str(data.get("last_name", current["last_name"] if current else "") or "").strip()
        for name, value in (("first_name", first), ("last_name", last)):
            if len(value) > 150:
                problems.add(name, "is longer than 150 characters")
        if "first_name" in data or creating:
            values["first_name"] = first
        if "last_name" in data or creating:
            values["last_name"] = last
        if "name" in data and str(data["name"] or "").strip() and not (first or last):
            values["name"] = str(data["name"]).strip()
        elif "first_name" in data or "last_name" in data or creating:
            values["name"] = " ".join(p for p in (first, last) if p)
        if "name" in values and not values["name"]:
            problems.add("first_name" if "name" not in data else "name",
                         "a contact needs a first or last name")
    elif given("name"):
        name = str(data.get("name") or "").strip()
        if not name:
            problems.add("name", "is required")
        values["name"] = name
    if len(values.get("name", "")) > 300:
        problems.add("name", "is longer than 300 characters")

    for name, length in TEXT_FIELDS.items():
        if given(name):
            value = str(data.get(name) or "").strip()
            if len(value) > length:
                problems.add(name, f"is longer than {length} characters")
            values[name] = value

    if given("website"):
        website = str(data.get("website") or "").strip()
        if website and "://" not in website:
            website = "https://" + website
        if website and (urlparse(website).scheme not in ("http", "https")
                        or not urlparse(website).netloc or len(website) > 300):
            problems.add("website", "must be a web address like https://example.org")
        values["website"] = website

    if given("lifecycle_stage"):
        stage = str(data.get("lifecycle_stage") or "lead")
        if stage not in LIFECYCLE_STAGES:
            problems.add("lifecycle_stage", f"must be one of {', '.join(LIFECYCLE_STAGES)}")
        values["lifecycle_stage"] = stage

    if given("birthday"):
        raw = data.get("birthday")
        if raw in (None, ""):
            values["birthday"] = None
        elif isinstance(raw, date):
            values["birthday"] = raw
        else:
            try:
                values["birthday"] = date.fromisoformat(str(raw).strip())
            except ValueError:
                problems.add("birthday", "must be a date like 1990-12-31")

    if given("preferred_channel"):
        channel = str(data.get("preferred_channel") or "")
        if channel and channel not in CHANNELS:
            problems.add("preferred_channel", f"must be one of {', '.join(CHANNELS)}")
        values["preferred_channel"] = channel
    if given("opted_out_channels"):
        channels = [c.strip() for c in _as_list(data.get("opted_out_channels")) if c.strip()]
        bad = [c for c in channels if c not in CHANNELS]
        if bad:
            problems.add("opted_out_channels", f"{bad[0]!r} is not a channel")
        values["opted_out_channels"] = ",".join(dict.fromkeys(channels))
    if given("do_not_contact"):
        raw = data.get("do_not_contact")
        values["do_not_contact"] = raw is True or str(raw).lower() in ("1", "true", "yes", "on")

    if given("annual_revenue") or "currency" in data:
        raw = data.get("annual_revenue")
        if raw in (None, ""):
            values["annual_revenue"] = None
        else:
            try:
                values["annual_revenue"] = Decimal(str(raw).replace(",", "")).quantize(
                    Decimal("0.01"))
                if not values["annual_revenue"].is_finite() or \
                        abs(values["annual_revenue"]) >= Decimal("1e16"):
                    raise InvalidOperation
            except InvalidOperation:
                problems.add("annual_revenue", "must be an amount like 125000.00")
        currency = str(data.get("currency", current["currency"] if current else "") or "")
        currency = currency.strip().upper()
        if currency and not re.fullmatch(r"[A-Z]{3}", currency):
            problems.add("currency", "must be a three-letter code like EUR")
        values["currency"] = currency

    # References: owner and team must exist; a contact's account must be an account.
    # Owner and team must be within the person's reach (core.references): whom and which
    # teams their core.customer.assign scope covers (giving a customer away at all needs it).
    reach = "core.customer.assign"
    if given("owner"):
        owner = _id_or_none(data.get("owner"), "owner", problems)
        if owner is None and creating and actor is not None and actor.kind == "staff":
            owner = actor.id  # a new customer belongs to whoever created it
        try:
            await references.owner(rapport, actor, "owner", owner, reach,
                                   current=current["owner"] if current else None)
        except references.ReferenceRefused as exc:
            problems.add("owner", exc.message)
        values["owner"] = owner
    if given("team"):
        team = _id_or_none(data.get("team"), "team", problems)
        try:
            await references.team(rapport, actor, "team", team, reach,
                                  current=current["team"] if current else None)
        except references.ReferenceRefused as exc:
            problems.add("team", exc.message)
        values["team"] = team
    if given("account"):
        account = _id_or_none(data.get("account"), "account", problems)
        if account is not None:
            if kind != "contact":
                problems.add("account", "only contacts belong to an account")
            elif current is not None and account == current["id"]:
                problems.add("account", "a customer cannot belong to itself")
            else:
                query = Customer.exists().where(
                    (Customer.id == account) & (Customer.kind == "account"))
                if rapport is not None and actor is not None and actor.kind == "staff":
                    query = scoped(query, rapport, actor, "core.customer.view", Customer)
                if not await query.run():
                    problems.add("account", "no such account")
        values["account"] = account

    if given("addresses"):
        subs["addresses"] = _clean_addresses(data.get("addresses"), problems)
    if given("emails"):
        subs["emails"] = _clean_emails(data.get("emails"), problems)
        values["primary_email"] = subs["emails"][0]["email"] if subs["emails"] else ""
    if given("phones"):
        region = phone_region(data.get("region"), *await _customer_countries(subs, current),
                              getattr(actor, "region", ""))
        subs["phones"] = _clean_phones(data.get("phones"), problems, region)
        values["primary_phone"] = subs["phones"][0]["phone"] if subs["phones"] else ""
    if given("tags"):
        subs["tags"] = _clean_tags(data.get("tags"), problems)

    defs = await custom_fields.field_definitions()
    submitted = dict(data.get("custom") or {})
    submitted.update({k: v for k, v in data.items() if k.startswith("cf_")})
    cleaned_custom: dict[int, Any] = {}
    try:
        cleaned_custom = custom_fields.clean_values(defs, kind, submitted, creating=creating)
    except custom_fields.CustomFieldError as exc:
        problems.add(exc.field, exc.message)
        # Check the others too, so a form shows every problem at once.
        for key, raw in submitted.items():
            single = {key: raw}
            try:
                custom_fields.clean_values(defs, kind, single, creating=False)
            except custom_fields.CustomFieldError as other:
                problems.add(other.field, other.message)
    problems.raise_if_any()
    return values, subs, cleaned_custom, defs


async def _customer_countries(subs: dict[str, Any], current: dict[str, Any] | None
                              ) -> list[str]:
    """Countries of the customer's addresses (those submitted, else those stored): numbers
    without a country code are read as numbers of the customer's country first."""
    if "addresses" in subs:
        return [a["country"] for a in subs["addresses"] if a.get("country")]
    if current is None:
        return []
    rows = await CustomerAddress.select(CustomerAddress.country).where(
        CustomerAddress.customer == current["id"], CustomerAddress.country != "").order_by(
        CustomerAddress.id).limit(3).run()
    return [r["country"] for r in rows]


def _check_assignment(actor: Actor | None, values: dict[str, Any],
                      current: dict[str, Any] | None) -> None:
    """Giving a customer to someone else needs ``core.customer.assign``."""
    if actor is None or actor.kind != "staff":
        return
    for field in ("owner", "team"):
        if field not in values:
            continue
        before = current[field] if current else (actor.id if field == "owner" else None)
        if values[field] != before and not actor.can("core.customer.assign"):
            raise CustomerError(field, "you may not assign customers to others")


def _within(rapport: Rapport, actor: Actor | None, permission: str,
            row: dict[str, Any]) -> bool:
    """Would ``row`` (not yet stored) be inside ``actor``'s scope for ``permission``?"""
    if actor is None or actor.kind != "staff":
        return True
    scope = actor.scope_for(permission)
    if scope == "all":
        return True
    if rapport.hook.row_filter(rapport=rapport, user=actor, permission=permission,
                               table=Customer, scope=scope) is not None:
        return True  # a plugin decides this table's rule; the stored row is checked on reads
    if row.get("owner") == actor.id:
        return True
    return scope == "team" and row.get("team") in actor.team_ids


# --- writes ----------------------------------------------------------------------------------


async def _write_subs(customer_id: int, subs: dict[str, Any]) -> None:
    """Replace the sub-records named in ``subs`` (inside the caller's transaction)."""
    if "emails" in subs:
        await CustomerEmail.delete().where(CustomerEmail.customer == customer_id).run()
        if subs["emails"]:
            await CustomerEmail.insert(*[CustomerEmail(customer=customer_id, **e)
                                         for e in subs["emails"]]).run()
    if "phones" in subs:
        await CustomerPhone.delete().where(CustomerPhone.customer == customer_id).run()
        if subs["phones"]:
            await CustomerPhone.insert(*[CustomerPhone(customer=customer_id, **p)
                                         for p in subs["phones"]]).run()
    if "addresses" in subs:
        await CustomerAddress.delete().where(CustomerAddress.customer == customer_id).run()
        if subs["addresses"]:
            await CustomerAddress.insert(*[CustomerAddress(customer=customer_id, **a)
                                           for a in subs["addresses"]]).run()
    if "tags" in subs:
        await CustomerTag.delete().where(CustomerTag.customer == customer_id).run()
        if subs["tags"]:
            await CustomerTag.insert(*[CustomerTag(customer=customer_id, tag=t)
                                       for t in subs["tags"]]).run()


async def _snapshot_subs(customer_id: int, names) -> dict[str, Any]:
    """The current sub-records (as compared in the audit log)."""
    found: dict[str, Any] = {}
    if "emails" in names:
        found["emails"] = [r["email"] for r in await CustomerEmail.select(
            CustomerEmail.email).where(CustomerEmail.customer == customer_id).order_by(
            CustomerEmail.id).run()]
    if "phones" in names:
        found["phones"] = [r["phone"] for r in await CustomerPhone.select(
            CustomerPhone.phone).where(CustomerPhone.customer == customer_id).order_by(
            CustomerPhone.id).run()]
    if "tags" in names:
        found["tags"] = [r["tag"] for r in await CustomerTag.select(CustomerTag.tag).where(
            CustomerTag.customer == customer_id).order_by(CustomerTag.id).run()]
    if "addresses" in names:
        found["addresses"] = [
            ", ".join(p for p in (r["street"], r["city"], r["postcode"], r["country"]) if p)
            for r in await CustomerAddress.select().where(
                CustomerAddress.customer == customer_id).order_by(CustomerAddress.id).run()]
    return found


def _sub_summary(subs: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if "emails" in subs:
        summary["emails"] = [e["email"] for e in subs["emails"]]
    if "phones" in subs:
        summary["phones"] = [p["phone"] for p in subs["phones"]]
    if "tags" in subs:
        summary["tags"] = list(subs["tags"])
    if "addresses" in subs:
        summary["addresses"] = [
            ", ".join(p for p in (a["street"], a["city"], a["postcode"], a["country"]) if p)
            for a in subs["addresses"]]
    return summary


async def create_customer(rapport: Rapport | None, actor: Actor | None, data: dict[str, Any],
                          *, ip: str = "") -> dict[str, Any]:
    """Validate and create a customer with its sub-records; return the stored row.

    ``data`` keys: kind, name (accounts) or first_name/last_name (contacts), job_title,
    account, owner (defaults to the actor), team, lifecycle_stage, source, emails, phones,
    addresses, tags, website, industry, notes, birthday, preferred_channel,
    opted_out_channels, do_not_contact, annual_revenue, currency, custom ({key: value}) or
    ``cf_<key>`` keys. ``actor=None`` is the system (imports, demo data): no scope checks.
    """
    values, subs, custom, defs = await _clean(rapport, actor, data, current=None)
    _check_assignment(actor, values, None)
    if rapport is not None and not _within(rapport, actor, "core.customer.create", values):
        raise CustomerError("owner", "you may only create customers you own")
    now = datetime.now(UTC)
    values["created_at"] = values["updated_at"] = now
    async with Customer._meta.db.transaction():
        row = await records.create(actor, Customer, values, ip=ip)
        await _write_subs(row["id"], subs)
        await custom_fields.store_values(row["id"], defs, custom)
        details = _sub_summary(subs)
        details.update(_custom_summary(defs, custom))
        if details:
            await audit.record(actor, "update", "core_customer", row["id"],
                               {k: [None, v] for k, v in details.items() if v},
                               summary="details", ip=ip)
    await announce(rapport, actor, EVENT_CREATED, event_payload(row))
    return row


def _custom_summary(defs, custom: dict[int, Any]) -> dict[str, Any]:
    by_id = {d.id: d for d in defs}
    return {f"cf_{by_id[fid].key}": custom_fields.display(by_id[fid], v)
            for fid, v in custom.items()}


async def get_customer(rapport: Rapport, actor: Actor | None, customer_id: int,
                       permission: str = "core.customer.view") -> dict[str, Any]:
    """The customer row if ``actor`` may reach it with ``permission``; else CustomerNotFound."""
    query = Customer.select().where(Customer.id == customer_id)
    if actor is not None and actor.kind != "anonymous":
        query = scoped(query, rapport, actor, permission, Customer)
    row = await query.first().run()
    if row is None:
        raise CustomerNotFound(f"customer {customer_id} does not exist")
    return row


async def customer_details(customer_id: int) -> dict[str, Any]:
    """Emails, phones (E.164), addresses, tags and custom values of one customer."""
    emails = await CustomerEmail.select(CustomerEmail.email, CustomerEmail.label).where(
        CustomerEmail.customer == customer_id).order_by(CustomerEmail.id).run()
    phones = await CustomerPhone.select(CustomerPhone.phone, CustomerPhone.label).where(
        CustomerPhone.customer == customer_id).order_by(CustomerPhone.id).run()
    addresses = await CustomerAddress.select(
        *[getattr(CustomerAddress, n) for n in (*ADDRESS_FIELDS, "latitude", "longitude")]
    ).where(CustomerAddress.customer == customer_id).order_by(CustomerAddress.id).run()
    tags = await CustomerTag.select(CustomerTag.tag).where(
        CustomerTag.customer == customer_id).order_by(CustomerTag.id).run()
    custom = (await custom_fields.values_for([customer_id]))[customer_id]
    return {"emails": emails, "phones": phones, "addresses": addresses,
            "tags": [t["tag"] for t in tags], "custom": custom}


async def update_customer(rapport: Rapport, actor: Actor | None, customer_id: int,
                          data: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Change the fields present in ``data`` (sub-record lists are replaced whole); return
    the row after the change. Needs ``core.customer.edit`` on the customer."""
    current = await get_customer(rapport, actor, customer_id, "core.customer.edit")
    values, subs, custom, defs = await _clean(rapport, actor, data, current=current)
    values.pop("kind", None)
    _check_assignment(actor, values, current)
    merged = {**current, **values}
    if not _within(rapport, actor, "core.customer.edit", merged) and \
            not (actor is not None and actor.can("core.customer.assign")):
        raise CustomerError("owner", "the change would put the customer outside your reach")
    async with Customer._meta.db.transaction():
        before_subs = await _snapshot_subs(customer_id, subs)
        before_custom = (await custom_fields.values_for([customer_id], defs))[customer_id]
        values["updated_at"] = datetime.now(UTC)
        row = await records.update(actor, Customer, customer_id, values, ip=ip)
        await _write_subs(customer_id, subs)
        await custom_fields.store_values(customer_id, defs, custom)
        after = _sub_summary(subs)
        after.update(_custom_summary(defs, custom))
        by_key = {f"cf_{d.key}": d for d in defs}
        before = dict(before_subs)
        for key in after:
            if key.startswith("cf_"):
                field = by_key[key]
                before[key] = custom_fields.display(field, before_custom.get(field.key))
        delta = audit.diff(before, after)
        if delta:
            await audit.record(actor, "update", "core_customer", customer_id, delta,
                               summary="details", ip=ip)
        changed = [k for k in CONTACT_PREFERENCES if k in values and row[k] != current[k]]
        if changed:
            await announce_consent_changed(rapport, actor, customer_id, changed)
    await announce(rapport, actor, EVENT_UPDATED, event_payload(row, before=current))
    return row


async def delete_customer(rapport: Rapport, actor: Actor | None, customer_id: int, *,
                          ip: str = "") -> dict[str, Any]:
    """Delete a customer (needs ``core.customer.delete``). An account's contacts are kept and
    unlinked from it rather than deleted with it."""
    current = await get_customer(rapport, actor, customer_id, "core.customer.delete")
    async with Customer._meta.db.transaction():
        if current["kind"] == "account":
            contacts = await Customer.select(Customer.id).where(
                Customer.account == customer_id).run()
            if contacts:
                await Customer.update({Customer.account: None}).where(
                    Customer.account == customer_id).run()
                await audit.record(actor, "update", "core_customer", customer_id,
                                   {"contacts": [[c["id"] for c in contacts], []]},
                                   summary="contacts unlinked before deleting the account",
                                   ip=ip)
        row = await records.delete(actor, Customer, customer_id, ip=ip)
        # Durable: recorded in the deletion's transaction, so it happened iff this commits.
        await announce_durable(rapport, actor, EVENT_DELETED, event_payload(current))
    return row


# --- bulk changes from lists -----------------------------------------------------------------

BULK_ACTIONS = {
    "assign_owner": "core.customer.assign",
    "add_tag": "core.customer.edit",
    "change_stage": "core.customer.edit",
}


async def bulk_change(rapport: Rapport, actor: Actor, action: str, customer_ids: list[int],
                      value: Any, *, ip: str = "") -> int:
    """Apply one change to many customers, only those in ``actor``'s scope for the action's
    permission; each changed customer is audited. Returns how many changed."""
    permission = BULK_ACTIONS.get(action)
    if permission is None:
        raise CustomerError("action", f"must be one of {', '.join(BULK_ACTIONS)}")
    if not actor.can(permission):
        raise CustomerError("action", f"permission {permission} is required")
    ids = sorted({int(i) for i in customer_ids})[:1000]
    if not ids:
        raise CustomerError("ids", "select at least one customer")
    problems = _Problems()
    if action == "assign_owner":
        owner = _id_or_none(value, "value", problems)
        try:
            if owner is None:
                raise references.ReferenceRefused("value", "choose an active user")
            await references.owner(rapport, actor, "value", owner, permission)
        except references.ReferenceRefused as exc:
            problems.add("value", exc.message)
        change: dict[str, Any] = {"owner": owner}
    elif action == "change_stage":
        if value not in LIFECYCLE_STAGES:
            problems.add("value", f"must be one of {', '.join(LIFECYCLE_STAGES)}")
        change = {"lifecycle_stage": value}
    else:
        tags = _clean_tags([value], problems)
        if not tags:
            problems.add("value", "type a tag")
        change = {"tag": tags[0] if tags else ""}
    problems.raise_if_any()
    query = Customer.select(Customer.id).where(Customer.id.is_in(ids))
    reachable = [r["id"] for r in await scoped(query, rapport, actor, permission, Customer).run()]
    if not reachable:
        return 0
    now = datetime.now(UTC)
    touched: list[dict[str, Any]] = []  # the changed customers' rows before the change
    async with Customer._meta.db.transaction():
        if action == "add_tag":
            tag = change["tag"]
            have = {r["customer"] for r in await CustomerTag.select(CustomerTag.customer).where(
                CustomerTag.customer.is_in(reachable) & (CustomerTag.tag == tag)).run()}
            missing = [cid for cid in reachable if cid not in have]
            if missing:
                await CustomerTag.insert(*[CustomerTag(customer=cid, tag=tag)
                                           for cid in missing]).run()
                await Customer.update({Customer.updated_at: now}).where(
                    Customer.id.is_in(missing)).run()
            for cid in missing:
                await audit.record(actor, "update", "core_customer", cid,
                                   {"tags": [None, f"+{tag}"]}, summary="bulk: add tag", ip=ip)
            touched = [{"id": cid} for cid in missing]
        else:
            for cid in reachable:
                before = await Customer.select(Customer.id, Customer.owner, Customer.team,
                                               Customer.lifecycle_stage).where(
                    Customer.id == cid).first().run()
                column = next(iter(change))
                if before[column] == change[column]:
                    continue
                await records.update(actor, Customer, cid, {**change, "updated_at": now},
                                     summary=f"bulk: {action.replace('_', ' ')}", ip=ip)
                touched.append(before)
    if touched:
        await announce(rapport, actor, EVENT_BULK_CHANGED, {
            "ids": [t["id"] for t in touched], "action": action,
            # Who could see them before an owner change (live lists tell those readers too).
            "before": [{"id": t["id"], "owner": t.get("owner"), "team": t.get("team")}
                       for t in touched if "owner" in t]})
    return len(touched)


def event_payload(row: dict[str, Any], *, before: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """What a customer event says: ids, kind, owner and team (before and after a change)."""
    payload = {"id": row["id"], "kind": row.get("kind"), "owner": row.get("owner"),
               "team": row.get("team")}
    if before is not None:
        payload["before"] = {"owner": before.get("owner"), "team": before.get("team")}
    return payload


async def announce_durable(rapport: Rapport | None, actor: Actor | None, name: str,
                           payload: dict[str, Any]) -> None:
    """Publish a durable customer event (docs/events.md) *inside* the change's transaction:
    the outbox row commits with the change, and a failure to record it undoes the change.
    Events of one customer reach each subscriber in order (key ``customer:<id>``)."""
    if rapport is None:
        return
    await rapport.publish(name, payload, actor_id=actor.id if actor else None,
                          key=f"customer:{payload['id']}")


async def announce_consent_changed(rapport: Rapport | None, actor: Actor | None,
                                   customer_id: int, changed: list[str], *,
                                   consent: dict[str, Any] | None = None) -> None:
    """Publish the durable ``core.customer.consent_changed`` *inside* the transaction that
    changed the customer's consent log (``changed`` holds ``"consent"`` and ``consent`` the
    record) or contact preferences (``changed`` names the columns of CONTACT_PREFERENCES).
    The payload carries the preferences as they are now (docs/events.md)."""
    if rapport is None:
        return
    row = await Customer.select(*[getattr(Customer, k) for k in CONTACT_PREFERENCES]).where(
        Customer.id == customer_id).first().run() or {}
    await rapport.publish(EVENT_CONSENT_CHANGED, {
        "id": customer_id, "changed": sorted(set(changed)),
        "preferred_channel": row.get("preferred_channel") or "",
        "opted_out_channels": [c for c in (row.get("opted_out_channels") or "").split(",") if c],
        "do_not_contact": bool(row.get("do_not_contact")),
        "consent": consent,
    }, actor_id=actor.id if actor is not None and actor.kind == "staff" else None,
        key=f"customer:{customer_id}")


async def announce(rapport: Rapport | None, actor: Actor | None, name: str,
                   payload: dict[str, Any]) -> None:
    """Publish a customer event after its write committed; system writes without an
    instance (imports, demo data) announce nothing."""
    if rapport is None:
        return
    try:
        await rapport.publish(name, payload, actor_id=actor.id if actor else None)
    except Exception:  # the change is committed; a failing announcement must not undo it
        log.exception("publishing %s failed", name)


def scope_filter(rapport: Rapport, actor: Actor, permission: str = "core.customer.view"):
    """The row-level where-clause for customers (``None``: everything)."""
    return row_filter(rapport, actor, permission, Customer)
