"""Custom fields: definitions an administrator manages, and validating and storing values.

Values live in ``core_custom_value`` with one typed column per kind of value, so a list can
filter on a custom field through the (field, value, customer) indexes. Every write of a
customer (form, API, import) passes through :func:`clean_values`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from core.customers.tables import (
    CUSTOM_FIELD_APPLIES_TO,
    CUSTOM_FIELD_TYPES,
    CustomField,
    CustomValue,
)

KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
TRUE_WORDS = {"1", "true", "yes", "on", "y"}
FALSE_WORDS = {"0", "false", "no", "off", "n", ""}
TYPE_LABELS = {
    "text": "Text", "number": "Number", "money": "Money", "date": "Date", "choice": "Choice",
    "multi_choice": "Multiple choice", "boolean": "Yes / no", "url": "Web address (URL)",
}


class CustomFieldError(ValueError):
    """Bad input for a custom field definition or value; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FieldDef:
    id: int
    key: str
    label: str
    field_type: str
    applies_to: str
    required: bool
    choices: tuple[str, ...]
    position: int

    @property
    def form_name(self) -> str:
        """Name of the input on forms and of the CSV column: ``cf_<key>``."""
        return f"cf_{self.key}"

    def applies(self, kind: str) -> bool:
        return self.applies_to in ("both", kind)


def _as_def(row: dict[str, Any]) -> FieldDef:
    choices = tuple(c.strip() for c in (row["choices"] or "").splitlines() if c.strip())
    return FieldDef(id=row["id"], key=row["key"], label=row["label"],
                    field_type=row["field_type"], applies_to=row["applies_to"],
                    required=bool(row["required"]), choices=choices, position=row["position"])


async def field_definitions(kind: str | None = None) -> list[FieldDef]:
    """Every custom field (or those applying to ``kind``), in the administrator's order."""
    rows = await CustomField.select().order_by(CustomField.position).order_by(
        CustomField.id).run()
    defs = [_as_def(r) for r in rows]
    return [d for d in defs if kind is None or d.applies(kind)]


# --- definitions -----------------------------------------------------------------------------


def clean_definition(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate an administrator's custom-field form; return column values."""
    values: dict[str, Any] = {}
    if creating:
        key = str(data.get("key", "")).strip().lower()
        if not KEY.match(key):
            raise CustomFieldError("key", "use lower-case letters, digits and underscores, "
                                          "starting with a letter")
        values["key"] = key
        field_type = str(data.get("field_type", ""))
        if field_type not in CUSTOM_FIELD_TYPES:
            raise CustomFieldError("field_type", f"must be one of {', '.join(CUSTOM_FIELD_TYPES)}")
        values["field_type"] = field_type
    label = str(data.get("label", "")).strip()
    if not label:
        raise CustomFieldError("label", "is required")
    if len(label) > 150:
        raise CustomFieldError("label", "is longer than 150 characters")
    values["label"] = label
    applies_to = str(data.get("applies_to", "both") or "both")
    if applies_to not in CUSTOM_FIELD_APPLIES_TO:
        raise CustomFieldError("applies_to", "must be accounts, contacts or both")
    values["applies_to"] = applies_to
    values["required"] = str(data.get("required", "")).lower() in TRUE_WORDS or \
        data.get("required") is True
    raw_choices = data.get("choices", "")
    if isinstance(raw_choices, list | tuple):
        raw_choices = "\n".join(str(c) for c in raw_choices)
    choices = [c.strip() for c in str(raw_choices).splitlines() if c.strip()]
    values["choices"] = "\n".join(dict.fromkeys(choices))
    try:
        values["position"] = int(data.get("position") or 0)
    except (TypeError, ValueError):
        raise CustomFieldError("position", "must be a whole number") from None
    return values


async def create_definition(actor, data: dict[str, Any]) -> dict[str, Any]:
    from core import records

    values = clean_definition(data, creating=True)
    if values["field_type"] in ("choice", "multi_choice") and not values["choices"]:
        raise CustomFieldError("choices", "list at least one option, one per line")
    if await CustomField.exists().where(CustomField.key == values["key"]).run():
        raise CustomFieldError("key", f"a custom field {values['key']!r} already exists")
    return await records.create(actor, CustomField, values)


async def update_definition(actor, field_id: int, data: dict[str, Any]) -> dict[str, Any]:
    from core import records

    values = clean_definition(data, creating=False)
    return await records.update(actor, CustomField, field_id, values)


async def delete_definition(actor, field_id: int) -> None:
    from core import records

    # Values go with the field (the foreign key cascades).
    await records.delete(actor, CustomField, field_id)


# --- values ----------------------------------------------------------------------------------


def _is_empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def parse_value(field: FieldDef, raw: Any) -> Any:
    """Turn a submitted value (form text or JSON) into its Python value, or raise
    ``CustomFieldError(cf_<key>, ...)``. Empty input gives ``None`` (or ``[]``)."""
    name = field.form_name
    kind = field.field_type
    if kind == "multi_choice":
        if _is_empty(raw):
            return []
        items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
        picked = [str(i).strip() for i in items if str(i).strip()]
        for item in picked:
            if item not in field.choices:
                raise CustomFieldError(name, f"{item!r} is not one of: {', '.join(field.choices)}")
        return list(dict.fromkeys(picked))
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        word = "" if raw is None else str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return None if word == "" else False
        raise CustomFieldError(name, "must be yes or no")
    if _is_empty(raw):
        return None
    if kind == "text":
        text = str(raw).strip()
        if len(text) > 500:
            raise CustomFieldError(name, "is longer than 500 characters")
        return text
    if kind == "url":
        text = str(raw).strip()
        parsed = urlparse(text)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or len(text) > 500:
            raise CustomFieldError(name, "must be a web address starting with http:// or https://")
        return text
    if kind == "choice":
        text = str(raw).strip()
        if text not in field.choices:
            raise CustomFieldError(name, f"must be one of: {', '.join(field.choices)}")
        return text
    if kind in ("number", "money"):
        currency = ""
        if isinstance(raw, dict):  # API money: {"amount": "12.50", "currency": "EUR"}
            currency = str(raw.get("currency", "")).strip().upper()
            raw = raw.get("amount")
        text = str(raw).strip().replace(",", "")
        if kind == "money":
            parts = text.split()
            if len(parts) == 2 and parts[1].isalpha():  # "12.50 EUR"
                text, currency = parts[0], parts[1].upper()
            elif len(parts) == 2 and parts[0].isalpha():  # "EUR 12.50"
                currency, text = parts[0].upper(), parts[1]
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CustomFieldError(name, "must be a number") from None
        if not number.is_finite() or abs(number) >= Decimal("1e16"):
            raise CustomFieldError(name, "must be a finite number below 10^16")
        if kind == "money":
            if currency and (len(currency) != 3 or not currency.isalpha()):
                raise CustomFieldError(name, "currency must be a three-letter code like EUR")
            return (number.quantize(Decimal("0.01")), currency)
        return number
    if kind == "date":
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw).strip())
        except ValueError:
            raise CustomFieldError(name, "must be a date like 2025-12-31") from None
    raise CustomFieldError(name, f"has an unknown type {kind!r}")


def clean_values(defs: list[FieldDef], kind: str, submitted: dict[str, Any], *,
                 creating: bool) -> dict[int, Any]:
    """Validate the custom values submitted for a customer of ``kind``.

    ``submitted`` maps key (or ``cf_<key>``) to raw value. Returns ``{field_id: value}`` for
    the fields submitted (all applicable fields when creating). Raises the first problem.
    """
    by_key = {d.key: d for d in defs}
    cleaned: dict[int, Any] = {}
    for raw_key, raw in submitted.items():
        key = raw_key[3:] if raw_key.startswith("cf_") else raw_key
        field = by_key.get(key)
        if field is None:
            raise CustomFieldError(f"cf_{key}", "is not a custom field")
        if not field.applies(kind):
            raise CustomFieldError(field.form_name, f"does not apply to {kind}s")
        cleaned[field.id] = parse_value(field, raw)
    for field in defs:
        if not field.applies(kind):
            continue
        present = field.id in cleaned
        value = cleaned.get(field.id)
        if field.required and (present or creating) and (value is None or value == []):
            raise CustomFieldError(field.form_name, "is required")
    return cleaned


def value_rows(customer_id: int, field: FieldDef, value: Any) -> list[CustomValue]:
    """The rows that store ``value`` (none for an empty value)."""
    if value is None or value == []:
        return []
    kind = field.field_type
    if kind == "multi_choice":
        return [CustomValue(customer=customer_id, field=field.id, value_text=v) for v in value]
    if kind == "boolean":
        return [CustomValue(customer=customer_id, field=field.id,
                            value_number=Decimal(1 if value else 0))]
    if kind == "number":
        return [CustomValue(customer=customer_id, field=field.id, value_number=value)]
    if kind == "money":
        amount, currency = value
        return [CustomValue(customer=customer_id, field=field.id, value_number=amount,
                            currency=currency)]
    if kind == "date":
        return [CustomValue(customer=customer_id, field=field.id, value_date=value)]
    return [CustomValue(customer=customer_id, field=field.id, value_text=value)]


async def store_values(customer_id: int, defs: list[FieldDef], cleaned: dict[int, Any]) -> None:
    """Replace the stored values of the fields in ``cleaned`` (call inside a transaction)."""
    if not cleaned:
        return
    by_id = {d.id: d for d in defs}
    await CustomValue.delete().where(
        (CustomValue.customer == customer_id) & CustomValue.field.is_in(list(cleaned))).run()
    rows = [r for fid, v in cleaned.items() for r in value_rows(customer_id, by_id[fid], v)]
    if rows:
        await CustomValue.insert(*rows).run()


def _stored_value(field: FieldDef, row: dict[str, Any]) -> Any:
    kind = field.field_type
    if kind == "boolean":
        return row["value_number"] is not None and Decimal(row["value_number"]) != 0
    if kind == "number":
        return Decimal(row["value_number"]) if row["value_number"] is not None else None
    if kind == "money":
        if row["value_number"] is None:
            return None
        return {"amount": str(Decimal(row["value_number"]).quantize(Decimal("0.01"))),
                "currency": row["currency"]}
    if kind == "date":
        value = row["value_date"]
        return date.fromisoformat(value) if isinstance(value, str) else value
    return row["value_text"]


async def values_for(customer_ids: list[int], defs: list[FieldDef] | None = None
                     ) -> dict[int, dict[str, Any]]:
    """``{customer_id: {key: value}}`` for many customers in one query (no query per row).

    Multi-choice values are lists; money is ``{"amount": "12.50", "currency": "EUR"}``.
    """
    if not customer_ids:
        return {}
    defs = defs if defs is not None else await field_definitions()
    by_id = {d.id: d for d in defs}
    rows = await CustomValue.select().where(CustomValue.customer.is_in(customer_ids)).order_by(
        CustomValue.id).run()
    result: dict[int, dict[str, Any]] = {cid: {} for cid in customer_ids}
    for row in rows:
        field = by_id.get(row["field"])
        if field is None:
            continue
        values = result[row["customer"]]
        if field.field_type == "multi_choice":
            values.setdefault(field.key, []).append(row["value_text"])
        else:
            values[field.key] = _stored_value(field, row)
    return result


def display(field: FieldDef, value: Any) -> str:
    """A value as text for tables, forms and CSV."""
    if value is None or value == []:
        return ""
    if field.field_type == "multi_choice":
        return ", ".join(value)
    if field.field_type == "boolean":
        return "yes" if value else "no"
    if field.field_type == "money":
        if isinstance(value, dict):
            return f"{value['amount']} {value['currency']}".strip()
        amount, currency = value
        return f"{amount} {currency}".strip()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def filter_clause(field: FieldDef, raw: str):
    """A where-clause on ``Customer.id`` keeping customers whose ``field`` matches ``raw``:
    equality for most types; ``yes``/``no`` for booleans; any chosen option for multi-choice.
    Raises :class:`CustomFieldError` for a value the field could never hold."""
    from core.customers.tables import Customer

    base = CustomValue.select(CustomValue.customer).where(CustomValue.field == field.id)
    kind = field.field_type
    if kind == "boolean":
        value = parse_value(field, raw)
        if value is None:
            raise CustomFieldError(field.form_name, "must be yes or no")
        if value is False:  # unset counts as "no"
            yes = base.where(CustomValue.value_number == 1)
            return Customer.id.not_in(yes)
        return Customer.id.is_in(base.where(CustomValue.value_number == 1))
    if kind == "multi_choice":
        value = parse_value(field, raw)
        return Customer.id.is_in(base.where(CustomValue.value_text.is_in(value or [""])))
    value = parse_value(field, raw)
    if kind in ("number",):
        return Customer.id.is_in(base.where(CustomValue.value_number == value))
    if kind == "money":
        return Customer.id.is_in(base.where(CustomValue.value_number == value[0]))
    if kind == "date":
        return Customer.id.is_in(base.where(CustomValue.value_date == value))
    return Customer.id.is_in(base.where(CustomValue.value_text == value))
