"""Earning rules an administrator edits without code, and what an order earns under them,
explained in words ("120 points: 1 per euro on SO-1042, ×1.5 Gold multiplier").

The documented rounding rule: each line earns ``net × points per unit × multipliers`` exactly
(Decimal, no rounding); the order earns the sum rounded down to a whole point, once. A line's
net is after its discount and before tax, so tax-inclusive and tax-exclusive prices earn the
same; when the order's total is below its lines' (a voucher or other adjustment on the
quote), every line's net is lowered in the same proportion. Lines that are themselves
loyalty rewards (source ``loyalty``) never earn. A return takes back, per line, the share of
the line's exact points for the quantity returned, rounded down over all returns so far, so
returning everything takes back exactly what was earned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from core import records
from core.permissions import Actor
from plugins.loyalty.programs import LoyaltyError, boolean, decimal
from plugins.loyalty.tables import RULE_KINDS, Rule, Tier

ZERO = Decimal(0)
KIND_LABELS = {
    "per_currency_unit": "Points per currency unit spent",
    "per_purchase": "Points (stamps) per purchase or visit",
    "product_multiplier": "Product multiplier",
    "category_multiplier": "Category multiplier",
    "first_purchase": "First purchase bonus",
    "birthday": "Birthday bonus",
    "referral": "Referral (both sides, after the first order)",
    "touch_point": "Review or survey answered",
    "promotion": "Promotion (multiplier between two dates)",
}
FIELDS = ("kind", "name", "active", "points", "extra_points", "multiplier", "product_id",
          "sku", "category_id", "touch_kind", "starts_on", "ends_on")
MULTIPLIED = ("product_multiplier", "category_multiplier", "promotion")


def _date(field_name: str, value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise LoyaltyError(field_name, "must be a date (YYYY-MM-DD)") from None


def _optional_int(field_name: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise LoyaltyError(field_name, "must be an id (a whole number)") from None
    if number < 1 or number >= 2 ** 31:
        raise LoyaltyError(field_name, "must be an id (a whole number)")
    return number


def clean(data: dict[str, Any]) -> dict[str, Any]:
    """A rule's fields checked; what a kind needs is required, named by field."""
    unknown = sorted(k for k in data if k not in FIELDS and not k.startswith("_"))
    if unknown:
        raise LoyaltyError(unknown[0], "is not a field of a rule")
    kind = str(data.get("kind") or "").strip()
    if kind not in RULE_KINDS:
        raise LoyaltyError("kind", f"must be one of {', '.join(RULE_KINDS)}")
    name = str(data.get("name") or "").strip() or KIND_LABELS[kind]
    if len(name) > 150:
        raise LoyaltyError("name", "must be at most 150 characters")
    values: dict[str, Any] = {"kind": kind, "name": name,
                              "active": boolean(data.get("active", True))}
    for money_field in ("points", "extra_points"):
        raw = data.get(money_field)
        values[money_field] = ZERO if raw in (None, "") else decimal(money_field, raw)
    raw = data.get("multiplier")
    values["multiplier"] = Decimal(1) if raw in (None, "") else decimal(
        "multiplier", raw, maximum=Decimal(100), positive=True)
    values["product_id"] = _optional_int("product_id", data.get("product_id"))
    values["category_id"] = _optional_int("category_id", data.get("category_id"))
    values["sku"] = str(data.get("sku") or "").strip()[:64]
    values["touch_kind"] = str(data.get("touch_kind") or "").strip().lower()[:40]
    values["starts_on"] = _date("starts_on", data.get("starts_on"))
    values["ends_on"] = _date("ends_on", data.get("ends_on"))
    if values["starts_on"] and values["ends_on"] and values["ends_on"] < values["starts_on"]:
        raise LoyaltyError("ends_on", "must not be before the start date")
    if kind in ("per_currency_unit", "per_purchase", "first_purchase", "birthday",
                "touch_point") and values["points"] <= 0:
        raise LoyaltyError("points", "must be more than 0")
    if kind == "per_purchase" and values["points"] != values["points"].to_integral_value():
        raise LoyaltyError("points", "must be a whole number of points (stamps) a purchase")
    if kind == "referral" and values["points"] <= 0 and values["extra_points"] <= 0:
        raise LoyaltyError("points", "give points to the referrer, the new member or both")
    if kind in MULTIPLIED and values["multiplier"] == 1:
        raise LoyaltyError("multiplier", "must differ from 1 for a multiplier")
    if kind == "product_multiplier" and not (values["product_id"] or values["sku"]):
        raise LoyaltyError("product_id", "name the product (its id or SKU)")
    if kind == "category_multiplier" and not values["category_id"]:
        raise LoyaltyError("category_id", "name the product category")
    if kind == "touch_point" and not values["touch_kind"]:
        raise LoyaltyError("touch_kind", "say which touch point earns (review, survey)")
    if kind == "promotion" and not (values["starts_on"] and values["ends_on"]):
        raise LoyaltyError("starts_on", "a promotion needs a start and an end date")
    return values


async def create_rule(actor: Actor | None, program_id: int, data: dict[str, Any], *,
                      ip: str = "") -> dict[str, Any]:
    values = clean(data)
    return await records.create(actor, Rule, {**values, "program": program_id}, ip=ip)


async def update_rule(actor: Actor | None, rule_id: int, data: dict[str, Any], *,
                      ip: str = "") -> dict[str, Any]:
    return await records.update(actor, Rule, rule_id, clean(data), ip=ip)


async def rules_of(program_id: int, *, active_only: bool = False) -> list[dict[str, Any]]:
    query = Rule.select().where(Rule.program == program_id)
    if active_only:
        query = query.where(Rule.active == True)  # noqa: E712
    return await query.order_by(Rule.id).limit(500).run()


def in_force(rule: dict[str, Any], day: date) -> bool:
    return rule["active"] and (rule["starts_on"] is None or rule["starts_on"] <= day) and (
        rule["ends_on"] is None or day <= rule["ends_on"])


def number_words(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def unit_words(currency: str) -> str:
    try:
        from babel.numbers import get_currency_name

        return get_currency_name(currency, count=1, locale="en").lower()
    except Exception:  # noqa: BLE001 - an unknown code is still readable as itself
        return currency


@dataclass
class Earning:
    """What a purchase earns: whole points, each line's exact share, and why."""

    points: int
    lines: dict[str, dict[str, str]] = field(default_factory=dict)
    explanation: str = ""
    basis: Decimal = ZERO
    rules: list[int] = field(default_factory=list)


def floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def order_earning(*, rules: list[dict[str, Any]], tier: dict[str, Any] | None,
                  lines: list[dict[str, Any]], currency: str, reference: str,
                  day: date, total: Decimal | None = None,
                  categories: dict[int, int | None] | None = None,
                  unit: str = "points") -> Earning:
    """Points for a purchase under the rules in force on ``day`` (see the module docstring)."""
    active = [r for r in rules if in_force(r, day)]
    rate = sum((Decimal(r["points"]) for r in active if r["kind"] == "per_currency_unit"),
               ZERO)
    eligible = [line for line in lines if (line.get("source") or "") != "loyalty"]
    nets = [Decimal(str(line.get("net") or 0)) for line in eligible]
    gross = sum((Decimal(str(line.get("gross") or line.get("net") or 0)) for line in eligible),
                ZERO)
    factor = Decimal(1)
    if total is not None and gross > 0 and total < gross:
        factor = max(total, ZERO) / gross
    tier_multiplier = Decimal(tier["multiplier"]) if tier else Decimal(1)
    promotions = [r for r in active if r["kind"] == "promotion"]
    promo = Decimal(1)
    for rule in promotions:
        promo *= Decimal(rule["multiplier"])
    categories = categories or {}
    exact_lines: dict[str, dict[str, str]] = {}
    total_exact = ZERO
    basis = ZERO
    multiplied_products = []
    for line, net in zip(eligible, nets, strict=True):
        base = net * factor
        multiplier = Decimal(1)
        for rule in active:
            if rule["kind"] == "product_multiplier" and (
                    (rule["product_id"] and rule["product_id"] == line.get("product_id"))
                    or (rule["sku"] and rule["sku"] == (line.get("sku") or ""))):
                multiplier *= Decimal(rule["multiplier"])
                multiplied_products.append(rule)
            elif rule["kind"] == "category_multiplier" and rule["category_id"] and \
                    categories.get(line.get("product_id")) == rule["category_id"]:
                multiplier *= Decimal(rule["multiplier"])
                multiplied_products.append(rule)
        exact = base * rate * multiplier * tier_multiplier * promo
        if exact < 0:
            exact = ZERO
        basis += base
        total_exact += exact
        key = str(line.get("line_id") or line.get("position") or len(exact_lines) + 1)
        exact_lines[key] = {"exact": str(exact), "quantity": str(line.get("quantity") or 1)}
    # Stamps per purchase (a stamp or visit card) count the purchase, not its amount: they
    # are not multiplied, a partial return keeps them, a whole return or cancellation
    # takes them back with the rest (reversal_points: everything returned).
    visits = [r for r in active if r["kind"] == "per_purchase"]
    stamps = sum((floor(Decimal(r["points"])) for r in visits), 0) if eligible else 0
    points = floor(total_exact) + stamps
    words = [f"{number_words(rate)} per {unit_words(currency)} on {reference}"] if rate else []
    for rule in visits if stamps else []:
        words.append(f"{floor(Decimal(rule['points'])):,} for the purchase "
                     f"{'on ' + reference if not rate else ''}".strip()
                     + f" ({rule['name']})")
    for rule in {r["id"]: r for r in multiplied_products}.values():
        words.append(f"×{number_words(Decimal(rule['multiplier']))} {rule['name']}")
    if tier and tier_multiplier != 1:
        words.append(f"×{number_words(tier_multiplier)} {tier['name']} multiplier")
    for rule in promotions:
        words.append(f"×{number_words(Decimal(rule['multiplier']))} {rule['name']}")
    if factor != 1:
        words.append("on the total after vouchers")
    if not words:
        words = [f"nothing to earn on {reference}"]
    label = unit[:-1] if points == 1 and unit.endswith("s") else unit
    explanation = f"{points:,} {label}: " + ", ".join(words)
    used = [r["id"] for r in active if r["kind"] in ("per_currency_unit", "per_purchase",
                                                     *MULTIPLIED)]
    return Earning(points=points, lines=exact_lines, explanation=explanation, basis=basis,
                   rules=used)


def reversal_points(earned_lines: dict[str, dict[str, str]], earned_points: int,
                    returned_before: dict[str, Decimal], returned_now: dict[str, Decimal]
                    ) -> int:
    """Points to take back for ``returned_now`` quantities per line: the rounded-down share
    of all returns so far, less what earlier returns took back (so the sum of every reversal
    of an order is at most, and when all is returned exactly, what it earned)."""

    def share(returned: dict[str, Decimal]) -> int:
        exact = ZERO
        everything = True
        for key, line in earned_lines.items():
            quantity = Decimal(line["quantity"]) or Decimal(1)
            back = min(returned.get(key, ZERO), quantity)
            if back < quantity:
                everything = False
            exact += Decimal(line["exact"]) * back / quantity
        return earned_points if everything else min(floor(exact), earned_points)

    after = {k: returned_before.get(k, ZERO) + returned_now.get(k, ZERO)
             for k in set(returned_before) | set(returned_now)}
    return max(0, share(after) - share(returned_before))


async def tier_of(tier_id: int | None) -> dict[str, Any] | None:
    if tier_id is None:
        return None
    return await Tier.select().where(Tier.id == tier_id).first().run()
