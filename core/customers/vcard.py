"""vCard (3.0 and 4.0) export and import of contacts, with vobject.

Export: one contact (``/contacts/{id}/vcard``) or a filtered list (``/contacts/export.vcf``,
streamed in keyset batches). Import: each card becomes a row for :mod:`core.customers.importing`,
so vCards get the same checks, dry run, duplicate warnings and all-or-nothing commit as CSV.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from typing import TYPE_CHECKING, Any

import vobject

from core import audit
from core.customers import importing, listing
from core.customers.service import customer_details, get_customer
from core.customers.tables import (
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomerTag,
)
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport

VERSIONS = ("3.0", "4.0")


def contact_card(customer: dict[str, Any], details: dict[str, Any], account_name: str = "",
                 version: str = "3.0") -> str:
    """One contact as a vCard of ``version`` (3.0 or 4.0)."""
    if version not in VERSIONS:
        raise ValueError("vCard version must be 3.0 or 4.0")
    card = vobject.vCard()
    card.add("version").value = version
    card.add("fn").value = customer["name"] or ""
    card.add("n").value = vobject.vcard.Name(family=customer.get("last_name") or "",
                                             given=customer.get("first_name") or "")
    if account_name:
        card.add("org").value = [account_name]
    if customer.get("job_title"):
        card.add("title").value = customer["job_title"]
    emails = [e["email"] for e in details.get("emails", [])]
    if customer.get("primary_email") and customer["primary_email"] not in emails:
        emails.insert(0, customer["primary_email"])
    for email in emails:
        item = card.add("email")
        item.value = email
        item.type_param = "work" if version == "4.0" else "INTERNET"
    phones = [p["phone"] for p in details.get("phones", [])]
    if customer.get("primary_phone") and customer["primary_phone"] not in phones:
        phones.insert(0, customer["primary_phone"])
    for phone in phones:
        item = card.add("tel")
        item.value = f"tel:{phone}" if version == "4.0" else phone
        if version == "4.0":
            item.params["VALUE"] = ["uri"]
        item.type_param = "work" if version == "4.0" else "WORK"
    for address in details.get("addresses", []):
        item = card.add("adr")
        item.value = vobject.vcard.Address(
            street=address.get("street") or "", city=address.get("city") or "",
            region=address.get("region") or "", code=address.get("postcode") or "",
            country=address.get("country") or "")
    if customer.get("birthday"):
        birthday = customer["birthday"]
        card.add("bday").value = birthday.isoformat() if isinstance(birthday, date) \
            else str(birthday)
    if customer.get("website"):
        card.add("url").value = customer["website"]
    if details.get("tags"):
        card.add("categories").value = list(details["tags"])
    if customer.get("notes"):
        card.add("note").value = customer["notes"]
    card.add("uid").value = f"urn:rapport:customer:{customer['id']}"
    return card.serialize()


async def one_contact(rapport: Rapport, actor: Actor, customer_id: int, version: str = "3.0"
                      ) -> tuple[str, str]:
    """(card, file name) for a contact ``actor`` may see; CustomerNotFound otherwise."""
    customer = await get_customer(rapport, actor, customer_id, "core.customer.view")
    details = await customer_details(customer_id)
    account_name = ""
    if customer.get("account"):
        row = await Customer.select(Customer.name).where(
            Customer.id == customer["account"]).first().run()
        account_name = row["name"] if row else ""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", customer["name"]).strip("-").lower() or "contact"
    return contact_card(customer, details, account_name, version), f"{slug}.vcf"


async def export_cards(rapport: Rapport, actor: Actor, filters: listing.CustomerFilters,
                       version: str = "3.0", ip: str = "") -> AsyncIterator[str]:
    """Every contact matching ``filters`` that ``actor`` may export, as vCards; batched (one
    query per related table per 1,000 contacts), and audited once."""
    count = 0
    async for rows in listing.iter_batches(rapport, actor, filters,
                                           permission="core.customer.export"):
        ids = [r["id"] for r in rows]
        details: dict[int, dict[str, Any]] = {i: {"emails": [], "phones": [], "addresses": [],
                                                  "tags": []} for i in ids}
        for e in await CustomerEmail.select(CustomerEmail.customer, CustomerEmail.email).where(
                CustomerEmail.customer.is_in(ids)).order_by(CustomerEmail.id).run():
            details[e["customer"]]["emails"].append(e)
        for p in await CustomerPhone.select(CustomerPhone.customer, CustomerPhone.phone).where(
                CustomerPhone.customer.is_in(ids)).order_by(CustomerPhone.id).run():
            details[p["customer"]]["phones"].append(p)
        for a in await CustomerAddress.select().where(
                CustomerAddress.customer.is_in(ids)).order_by(CustomerAddress.id).run():
            details[a["customer"]]["addresses"].append(a)
        for t in await CustomerTag.select(CustomerTag.customer, CustomerTag.tag).where(
                CustomerTag.customer.is_in(ids)).order_by(CustomerTag.id).run():
            details[t["customer"]]["tags"].append(t["tag"])
        account_ids = sorted({r["account"] for r in rows if r.get("account")})
        accounts = {a["id"]: a["name"] for a in await Customer.select(
            Customer.id, Customer.name).where(Customer.id.is_in(account_ids)).run()} \
            if account_ids else {}
        for row in rows:
            yield contact_card(row, details[row["id"]], accounts.get(row.get("account"), ""),
                               version)
        count += len(rows)
    await audit.record(actor, "export", Customer._meta.tablename, "",
                       {"format": [None, f"vcard {version}"], "rows": [None, count]},
                       summary=f"Exported {count} contacts as vCard", ip=ip)


# --- import ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return str(value or "").strip()


def _birthday(raw: str) -> str:
    """vCard dates: 1990-12-31, 19901231, or 4.0's --1231 (no year: dropped)."""
    raw = raw.strip()
    if re.fullmatch(r"\d{8}", raw):
        return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    if raw.startswith("--"):
        return ""
    return raw[:10]


def card_to_record(card: Any) -> dict[str, str]:
    """One parsed vCard as importable fields (the names of ``importing.FIELDS``)."""
    contents = card.contents
    record: dict[str, str] = {}
    if "n" in contents:
        name = contents["n"][0].value
        record["first_name"] = " ".join(p for p in (_text(name.given),
                                                    _text(name.additional)) if p)
        record["last_name"] = _text(name.family)
    if not record.get("first_name") and not record.get("last_name") and "fn" in contents:
        record["name"] = _text(contents["fn"][0].value)
    emails = [_text(e.value) for e in contents.get("email", []) if _text(e.value)]
    phones = [re.sub(r"^tel:", "", _text(t.value)) for t in contents.get("tel", [])
              if _text(t.value)]
    if emails:
        record["email"], record["emails"] = emails[0], ";".join(emails[1:])
    if phones:
        record["phone"], record["phones"] = phones[0], ";".join(phones[1:])
    if "org" in contents:
        org = contents["org"][0].value
        record["account"] = _text(org[0] if isinstance(org, list) and org else org)
    for key, field in (("title", "job_title"), ("note", "notes"), ("url", "website")):
        if key in contents:
            record[field] = _text(contents[key][0].value)
    if "bday" in contents:
        record["birthday"] = _birthday(_text(contents["bday"][0].value))
    tags = []
    for item in contents.get("categories", []):
        tags += [_text(v) for v in (item.value if isinstance(item.value, list) else [item.value])]
    if tags:
        record["tags"] = ";".join(t for t in tags if t)
    if "adr" in contents:
        address = contents["adr"][0].value
        record["street"] = _text(address.street)
        record["city"] = _text(address.city)
        record["region"] = _text(address.region)
        record["postcode"] = _text(address.code)
        country = _text(address.country)
        record["country"] = country if len(country) == 2 else ""
    return record


def read_cards(text: str) -> tuple[list[tuple[int, dict[str, str]]], list[importing.RowProblem]]:
    """(records by the line where their card starts, problems with unreadable cards)."""
    records, problems = [], []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, buffer = 0, []
    for number, line in enumerate(lines, 1):
        if line.strip().upper() == "BEGIN:VCARD":
            start, buffer = number, [line]
            continue
        if not buffer:
            continue
        buffer.append(line)
        if line.strip().upper() == "END:VCARD":
            try:
                card = vobject.readOne("\r\n".join(buffer) + "\r\n")
                records.append((start, card_to_record(card)))
            except Exception as exc:  # vobject raises several kinds for broken cards
                problems.append(importing.RowProblem(start, "vcard",
                                                     f"not a readable vCard: {exc}"))
            buffer = []
    if buffer:
        problems.append(importing.RowProblem(start, "vcard", "the card has no END:VCARD"))
    return records, problems


async def import_vcard(rapport: Rapport | None, actor: Actor | None, text: str, *,
                       dry_run: bool, source: str = "",
                       progress: importing.Progress | None = None, partial: bool = False,
                       on_duplicate: str = "new") -> importing.ImportReport:
    """Import the contacts of a .vcf file (3.0 or 4.0); all or nothing like CSV, or with
    ``partial`` the good cards only."""
    records, problems = read_cards(text)
    if not records and not problems:
        raise importing.ImportFileError("the file holds no vCards (BEGIN:VCARD ... END:VCARD)")
    report = await importing.import_records(rapport, actor, "contact", records,
                                            dry_run=dry_run or (bool(problems) and not partial),
                                            source=source, progress=progress, partial=partial,
                                            on_duplicate=on_duplicate)
    if problems:
        report.errors = sorted(problems + report.errors, key=lambda p: p.line)
        report.rows += len(problems)
        report.bad += len(problems)
    return report
