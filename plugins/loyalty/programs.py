"""Loyalty programs: their settings, checked field by field, and the one error every loyalty
module raises (``LoyaltyError(field, message)``, shown beside the field or as problem+json).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from core import records
from core.permissions import Actor
from plugins.loyalty.tables import PROGRAM_KINDS, TIER_BASES, Program


class LoyaltyError(ValueError):
    """A refusal naming the field it is about; ``status`` is the HTTP status it maps to."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


FIELDS = ("name", "kind", "active", "currency", "point_value", "terms", "terms_version",
          "card_prefix", "pending_days", "pending_until_fulfilled", "expiry_months",
          "expiry_notice_days", "allow_negative", "allow_pooling", "tier_basis",
          "tier_window_days", "tier_grace_days")
BOOLEANS = ("active", "pending_until_fulfilled", "allow_negative", "allow_pooling")
INTEGERS = {"pending_days": (0, 3650), "expiry_months": (0, 240),
            "expiry_notice_days": (0, 365), "tier_window_days": (1, 3650),
            "tier_grace_days": (0, 3650)}
LABELS = {"name": "Name", "kind": "Kind", "currency": "Currency", "point_value": "Value of a point",
          "terms": "Terms", "terms_version": "Terms version", "card_prefix": "Card prefix",
          "pending_days": "Days before points are usable", "expiry_months": "Points expire after",
          "expiry_notice_days": "Notice before expiry", "tier_basis": "Tiers are reached on",
          "tier_window_days": "Tier window", "tier_grace_days": "Downgrade grace"}


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def integer(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise LoyaltyError(field, "must be a whole number")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise LoyaltyError(field, "must be a whole number") from None
    if number < low or number > high:
        raise LoyaltyError(field, f"must be between {low} and {high}")
    return number


def decimal(field: str, value: Any, *, minimum: Decimal = Decimal(0),
            maximum: Decimal = Decimal("1000000"), positive: bool = False) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise LoyaltyError(field, "must be a number")
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise LoyaltyError(field, "must be a number") from None
    if not number.is_finite():
        raise LoyaltyError(field, "must be a number")
    if number < minimum:
        raise LoyaltyError(field, "must not be negative" if minimum == 0 else
                           f"must be at least {minimum}")
    if positive and number <= 0:
        raise LoyaltyError(field, "must be more than 0")
    if number > maximum:
        raise LoyaltyError(field, f"must be at most {maximum}")
    return number


def clean(data: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The program's fields from a form or JSON body, checked; unknown keys refused."""
    unknown = sorted(k for k in data if k not in FIELDS and not k.startswith("_"))
    if unknown:
        raise LoyaltyError(unknown[0], "is not a setting of a program")
    values: dict[str, Any] = {}
    for name in FIELDS:
        if name not in data:
            continue
        raw = data[name]
        if name in BOOLEANS:
            values[name] = boolean(raw)
        elif name in INTEGERS:
            values[name] = integer(name, raw if raw != "" else 0, *INTEGERS[name])
        elif name == "point_value":
            values[name] = decimal(name, raw or "0", maximum=Decimal(10000))
        else:
            if raw is not None and not isinstance(raw, str):
                raise LoyaltyError(name, "must be text")
            values[name] = (raw or "").strip()
    if current is None or "name" in values:
        name = values.get("name", "")
        if not name:
            raise LoyaltyError("name", "is required")
        if len(name) > 150:
            raise LoyaltyError("name", "must be at most 150 characters")
    if "kind" in values and values["kind"] not in PROGRAM_KINDS:
        raise LoyaltyError("kind", f"must be one of {', '.join(PROGRAM_KINDS)}")
    if "currency" in values:
        values["currency"] = values["currency"].upper()
        if len(values["currency"]) != 3 or not values["currency"].isalpha():
            raise LoyaltyError("currency", "must be a three-letter code such as EUR")
    if "tier_basis" in values and values["tier_basis"] not in TIER_BASES:
        raise LoyaltyError("tier_basis", "must be points or spend")
    if "card_prefix" in values and (len(values["card_prefix"]) > 8
                                     or not values["card_prefix"].isalnum()
                                     and values["card_prefix"]):
        raise LoyaltyError("card_prefix", "must be up to 8 letters or digits")
    if "terms_version" in values and len(values["terms_version"]) > 40:
        raise LoyaltyError("terms_version", "must be at most 40 characters")
    return values


async def name_taken(name: str, except_id: int | None = None) -> bool:
    query = Program.exists().where(Program.name == name)
    if except_id is not None:
        query = query.where(Program.id != except_id)
    return await query.run()


async def create_program(actor: Actor | None, data: dict[str, Any], *, ip: str = ""
                         ) -> dict[str, Any]:
    values = clean(data)
    if await name_taken(values["name"]):
        raise LoyaltyError("name", "another program has this name", status=409)
    return await records.create(actor, Program, values, ip=ip)


async def update_program(actor: Actor | None, program_id: int, data: dict[str, Any], *,
                         ip: str = "") -> dict[str, Any]:
    current = await get_program(program_id)
    if current is None:
        raise LoyaltyError("program", "no such program", status=404)
    values = clean(data, current)
    if "name" in values and await name_taken(values["name"], program_id):
        raise LoyaltyError("name", "another program has this name", status=409)
    return await records.update(actor, Program, program_id, values, ip=ip)


async def get_program(program_id: int) -> dict[str, Any] | None:
    return await Program.select().where(Program.id == program_id).first().run()


async def programs(active_only: bool = False) -> list[dict[str, Any]]:
    query = Program.select().order_by(Program.name)
    if active_only:
        query = query.where(Program.active == True)  # noqa: E712
    return await query.limit(200).run()
