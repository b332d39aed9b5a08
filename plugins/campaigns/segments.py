"""Segments: audiences described by rules and evaluated whenever they are used.

A segment's rules are JSON::

    {"match": "all",                      # how the groups combine: all (AND) or any (OR)
     "groups": [{"match": "any",          # how a group's conditions combine
                 "conditions": [{"criterion": "core.lifecycle_stage", "op": "is",
                                 "value": "lead"}, ...]}, ...]}

Each condition names a :class:`~plugins.campaigns.hookspecs.Criterion`: the campaigns plugin
brings criteria over core's customer data (fields, custom fields, tags, lifecycle stage,
owner and team, touch points, consent); other plugins add theirs through the
``campaigns_segment_criteria`` hook. The rules compile to one SQL condition on
``core_customer``; every count, preview and send adds the row-level filter of the user who
asks (``core.customer.view``), so nobody reaches a customer through a segment whom they could
not see in the customer list. Erased customers are never members.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw

from core import records
from core.customers.tables import KINDS, LIFECYCLE_STAGES, Customer, CustomField
from core.identity.tables import Team, User
from core.permissions import Actor, row_filter
from plugins.campaigns.hookspecs import Criterion
from plugins.campaigns.tables import Segment

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.campaigns")

VIEW_CUSTOMERS = "core.customer.view"
MAX_GROUPS = 10
MAX_CONDITIONS = 20  # per group
MAX_DAYS = 36500
MATCH_WORDS = {"all": "all of", "any": "any of"}
STAGE_LABELS = {"lead": "Lead", "prospect": "Prospect", "customer": "Customer",
                "churned": "Churned"}


class SegmentError(ValueError):
    """A refusal naming the field (``name``, ``groups.0.conditions.1.value``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- core's criteria ---------------------------------------------------------------------------

IS_OPS = [("is", "is"), ("is_not", "is not")]
TEXT_OPS = [("is", "is"), ("is_not", "is not"), ("contains", "contains")]


def _days(value: str) -> int:
    try:
        days = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError("enter a whole number of days") from None
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"enter a number of days between 1 and {MAX_DAYS}")
    return days


def _since(value: str) -> datetime:
    return datetime.now(UTC) - timedelta(days=_days(value))


def _text(value: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise ValueError("enter a value")
    if len(text) > 200:
        raise ValueError("at most 200 characters")
    return text


def _column_rule(column: str, *, lower: bool = False):
    def sql(op: str, value: str) -> tuple[str, list[Any]]:
        text = _text(value)
        target = f"lower(core_customer.{column})" if lower else f"core_customer.{column}"
        if lower:
            text = text.lower()
        if op == "is":
            return f"{target} = {{}}", [text]
        if op == "is_not":
            return f"{target} <> {{}}", [text]
        if op == "contains":
            like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"{target} LIKE {{}} ESCAPE '\\'", [f"%{like}%"]
        raise ValueError("unknown comparison")
    return sql


def _choice_rule(column: str, allowed: set[str] | None = None, *, integer: bool = False):
    def sql(op: str, value: str) -> tuple[str, list[Any]]:
        raw = str(value or "").strip()
        if op == "is_empty":
            return f"core_customer.{column} IS NULL", []
        if op == "is_set":
            return f"core_customer.{column} IS NOT NULL", []
        if allowed is not None and raw not in allowed:
            raise ValueError("pick one of the choices")
        param: Any = raw
        if integer:
            try:
                param = int(raw)
            except ValueError:
                raise ValueError("pick one of the choices") from None
        if op == "is":
            return f"core_customer.{column} = {{}}", [param]
        if op == "is_not":
            return (f"(core_customer.{column} IS NULL OR core_customer.{column} <> {{}})",
                    [param])
        raise ValueError("unknown comparison")
    return sql


def _tag(op: str, value: str) -> tuple[str, list[Any]]:
    tag = _text(value).lower()
    exists = ("EXISTS (SELECT 1 FROM core_customer_tag t WHERE t.tag = {} "
              "AND t.customer = core_customer.id)")
    if op == "has":
        return exists, [tag]
    if op == "has_not":
        return f"NOT {exists}", [tag]
    raise ValueError("unknown comparison")


def _touch_point(op: str, value: str) -> tuple[str, list[Any]]:
    # (customer, occurred_at, id) index: one probe per customer.
    exists = ("EXISTS (SELECT 1 FROM core_interaction i WHERE i.customer = core_customer.id "
              "AND i.occurred_at >= {})")
    if op == "none_in_last_days":
        return f"NOT {exists}", [_since(value)]
    if op == "in_last_days":
        return exists, [_since(value)]
    raise ValueError("unknown comparison")


def _created(op: str, value: str) -> tuple[str, list[Any]]:
    if op == "in_last_days":
        return "core_customer.created_at >= {}", [_since(value)]
    if op == "before_days":
        return "core_customer.created_at < {}", [_since(value)]
    raise ValueError("unknown comparison")


def _consent(purpose: str):
    latest = ("(SELECT c.granted FROM core_consent_record c WHERE c.customer = core_customer.id "
              f"AND c.purpose = '{purpose}' AND c.channel IN ('', 'email') "
              "ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1)")

    def sql(op: str, value: str) -> tuple[str, list[Any]]:
        if op == "granted":
            return f"{latest} = {{}}", [True]
        if op == "withdrawn":
            return f"{latest} = {{}}", [False]
        if op == "not_recorded":
            return f"{latest} IS NULL", []
        raise ValueError("unknown comparison")
    return sql


def _flag(column: str):
    def sql(op: str, value: str) -> tuple[str, list[Any]]:
        if op == "yes":
            return f"core_customer.{column} = {{}}", [True]
        if op == "no":
            return f"core_customer.{column} = {{}}", [False]
        raise ValueError("unknown comparison")
    return sql


def _has_email(op: str, value: str) -> tuple[str, list[Any]]:
    if op == "yes":
        return "core_customer.primary_email <> ''", []
    if op == "no":
        return "core_customer.primary_email = ''", []
    raise ValueError("unknown comparison")


def _custom_field(field_id: int, field_type: str):
    def sql(op: str, value: str) -> tuple[str, list[Any]]:
        base = ("EXISTS (SELECT 1 FROM core_custom_value v WHERE v.customer = core_customer.id "
                "AND v.field = {} AND ")
        if field_type in ("number", "money"):
            try:
                number = float(str(value).strip().replace(",", "."))
            except ValueError:
                raise ValueError("enter a number") from None
            compare = {"gte": ">=", "lte": "<=", "is": "="}.get(op)
            if compare is None:
                raise ValueError("unknown comparison")
            return base + f"v.value_number {compare} {{}})", [field_id, number]
        if field_type == "boolean":
            return base + "v.value_number = {})", [field_id, 1 if op == "yes" else 0]
        text = _text(value)
        if op == "is":
            return base + "lower(v.value_text) = {})", [field_id, text.lower()]
        if op == "contains":
            return base + "lower(v.value_text) LIKE {})", [field_id, f"%{text.lower()}%"]
        raise ValueError("unknown comparison")
    return sql


async def core_criteria() -> list[Criterion]:
    users = await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(500).run()
    teams = await Team.select(Team.id, Team.name).order_by(Team.name).limit(500).run()
    fields = await CustomField.select().order_by(CustomField.position).order_by(
        CustomField.id).limit(200).run()
    group = "Customer"
    found = [
        Criterion("core.lifecycle_stage", "Lifecycle stage", IS_OPS,
                  _choice_rule("lifecycle_stage", set(LIFECYCLE_STAGES)), value="choice",
                  choices=[(s, STAGE_LABELS.get(s, s)) for s in LIFECYCLE_STAGES], group=group),
        Criterion("core.kind", "Kind", IS_OPS, _choice_rule("kind", set(KINDS)),
                  value="choice", choices=[("contact", "Person"), ("account", "Organisation")],
                  group=group),
        Criterion("core.tag", "Tag", [("has", "has"), ("has_not", "does not have")], _tag,
                  group=group),
        Criterion("core.owner", "Owner", IS_OPS + [("is_empty", "is nobody")],
                  _choice_rule("owner", {str(u["id"]) for u in users}, integer=True),
                  value="choice", choices=[(str(u["id"]), u["name"]) for u in users],
                  group=group),
        Criterion("core.team", "Team", IS_OPS + [("is_empty", "is no team")],
                  _choice_rule("team", {str(t["id"]) for t in teams}, integer=True),
                  value="choice", choices=[(str(t["id"]), t["name"]) for t in teams],
                  group=group),
        Criterion("core.source", "Source", TEXT_OPS, _column_rule("source", lower=True),
                  group=group),
        Criterion("core.industry", "Industry", TEXT_OPS, _column_rule("industry", lower=True),
                  group=group),
        Criterion("core.job_title", "Job title", TEXT_OPS,
                  _column_rule("job_title", lower=True), group=group),
        Criterion("core.created", "Added", [("in_last_days", "in the last N days"),
                                            ("before_days", "more than N days ago")],
                  _created, value="number", group=group),
        Criterion("core.has_email", "Has an e-mail address", [("yes", "yes"), ("no", "no")],
                  _has_email, value="none", group=group),
        Criterion("core.touch_point", "Touch point",
                  [("none_in_last_days", "none in the last N days"),
                   ("in_last_days", "at least one in the last N days")],
                  _touch_point, value="number", group="Touch points"),
        Criterion("core.consent_marketing", "Consent to marketing e-mail",
                  [("granted", "given"), ("withdrawn", "withdrawn"),
                   ("not_recorded", "never recorded")], _consent("marketing"), value="none",
                  group="Consent"),
        Criterion("core.do_not_contact", "Do not contact", [("yes", "is set"),
                                                            ("no", "is not set")],
                  _flag("do_not_contact"), value="none", group="Consent"),
    ]
    for cf in fields:
        ftype = cf["field_type"]
        if ftype in ("number", "money"):
            ops = [("gte", "at least"), ("lte", "at most"), ("is", "equals")]
            kind = "number"
        elif ftype == "boolean":
            ops = [("yes", "is yes"), ("no", "is no")]
            kind = "none"
        elif ftype == "date":
            continue  # date comparisons: not offered yet
        else:
            ops = [("is", "is"), ("contains", "contains")]
            kind = "text"
        choices = [(c.strip(), c.strip()) for c in (cf["choices"] or "").splitlines()
                   if c.strip()]
        if ftype in ("choice", "multi_choice") and choices:
            kind = "choice"
            ops = [("is", "is")]
        found.append(Criterion(f"core.custom.{cf['key']}", cf["label"], ops,
                               _custom_field(cf["id"], ftype), value=kind, choices=choices,
                               group="Custom fields"))
    return found


def _as_criterion(item: Any, plugin_id: str) -> Criterion:
    if isinstance(item, Criterion):
        found = item
    else:
        found = Criterion(
            key=str(item["key"]), label=str(item["label"]),
            operators=[(str(a), str(b)) for a, b in item["operators"]],
            sql=item["sql"], value=str(item.get("value", "text")),
            choices=[(str(a), str(b)) for a, b in item.get("choices", [])],
            group=str(item.get("group", "")))
    if not found.group:
        found = Criterion(found.key, found.label, found.operators, found.sql, found.value,
                          found.choices, plugin_id.capitalize())
    return found


async def criteria(rapport: Rapport) -> dict[str, Criterion]:
    """Every criterion the editor offers, by key: core's first, then each plugin's."""
    found = {c.key: c for c in await core_criteria()}
    for plugin_id, result in rapport.call_in_order("campaigns_segment_criteria",
                                                    rapport=rapport):
        if hasattr(result, "__await__"):
            result = await result
        for item in result or ():
            criterion = _as_criterion(item, plugin_id)
            if criterion.key in found:
                raise ValueError(f"segment criterion {criterion.key!r} is declared twice")
            found[criterion.key] = criterion
    return found


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: list[Any]

    def where(self) -> WhereRaw:
        return WhereRaw(self.sql, *self.params)


def empty_rules() -> dict[str, Any]:
    return {"match": "all", "groups": [{"match": "all", "conditions": []}]}


def parse_rules(text: str | None) -> dict[str, Any]:
    try:
        rules = json.loads(text) if text else empty_rules()
    except ValueError:
        rules = empty_rules()
    return rules if isinstance(rules, dict) else empty_rules()


def rules_from_form(data: dict[str, Any]) -> dict[str, Any]:
    """The editor's form (``match``, ``g0_match``, ``g0_c1_criterion``/``_op``/``_value``...)
    as rules; blank conditions are left out, empty groups kept (the editor shows them)."""
    groups = []
    for g in range(MAX_GROUPS):
        if f"g{g}_match" not in data:
            continue
        conditions = []
        for c in range(MAX_CONDITIONS):
            key = str(data.get(f"g{g}_c{c}_criterion", "") or "").strip()
            if not key:
                continue
            conditions.append({"criterion": key,
                               "op": str(data.get(f"g{g}_c{c}_op", "") or "").strip(),
                               "value": str(data.get(f"g{g}_c{c}_value", "") or "").strip()})
        groups.append({"match": "any" if data.get(f"g{g}_match") == "any" else "all",
                       "conditions": conditions})
    return {"match": "any" if data.get("match") == "any" else "all", "groups": groups}


def compile_rules(rules: dict[str, Any], known: dict[str, Criterion]) -> Compiled:
    """One SQL condition for ``rules``; raises :class:`SegmentError` naming the bad field."""
    outer = rules.get("match", "all")
    groups = rules.get("groups") or []
    if outer not in MATCH_WORDS:
        raise SegmentError("match", "choose all or any")
    if len(groups) > MAX_GROUPS:
        raise SegmentError("groups", f"at most {MAX_GROUPS} groups")
    parts: list[str] = []
    params: list[Any] = []
    for g, group in enumerate(groups):
        inner = group.get("match", "all")
        if inner not in MATCH_WORDS:
            raise SegmentError(f"g{g}_match", "choose all or any")
        conditions = group.get("conditions") or []
        if len(conditions) > MAX_CONDITIONS:
            raise SegmentError(f"g{g}", f"at most {MAX_CONDITIONS} conditions in a group")
        pieces: list[str] = []
        for c, condition in enumerate(conditions):
            prefix = f"g{g}_c{c}"
            criterion = known.get(condition.get("criterion", ""))
            if criterion is None:
                raise SegmentError(f"{prefix}_criterion", "this criterion is not available "
                                   "(the plugin offering it may be disabled)")
            op = condition.get("op", "")
            if op not in dict(criterion.operators):
                raise SegmentError(f"{prefix}_op", f"choose how to compare {criterion.label}")
            if criterion.value == "none":
                value = ""
            else:
                value = condition.get("value", "")
            try:
                sql, values = criterion.sql(op, value)
            except ValueError as exc:
                raise SegmentError(f"{prefix}_value", str(exc)) from None
            pieces.append(f"({sql})")
            params.extend(values)
        if pieces:
            parts.append("(" + (" AND " if inner == "all" else " OR ").join(pieces) + ")")
    base = "core_customer.erased_at IS NULL"
    if not parts:
        return Compiled(base, [])
    joined = (" AND " if outer == "all" else " OR ").join(parts)
    return Compiled(f"{base} AND ({joined})", params)


def members_query(query: Any, rapport: Rapport, actor: Actor, compiled: Compiled) -> Any:
    """``query`` (a select or count on Customer) limited to the segment and to the customers
    ``actor`` may see."""
    query = query.where(compiled.where())
    scope = row_filter(rapport, actor, VIEW_CUSTOMERS, Customer)
    return query if scope is None else query.where(scope)


async def count(rapport: Rapport, actor: Actor, compiled: Compiled) -> int:
    return await members_query(Customer.count(), rapport, actor, compiled).run()


async def preview(rapport: Rapport, actor: Actor, compiled: Compiled, limit: int = 10
                  ) -> list[dict[str, Any]]:
    return await members_query(
        Customer.select(Customer.id, Customer.name, Customer.primary_email,
                        Customer.lifecycle_stage),
        rapport, actor, compiled).order_by(Customer.id).limit(limit).run()


async def member_ids(rapport: Rapport, actor: Actor, compiled: Compiled, *, after: int = 0,
                     limit: int = 1000) -> list[dict[str, Any]]:
    """One keyset page of members (id order) with the e-mail to send to."""
    return await members_query(
        Customer.select(Customer.id, Customer.primary_email), rapport, actor, compiled
    ).where(Customer.id > after).order_by(Customer.id).limit(limit).run()


def describe(rules: dict[str, Any], known: dict[str, Criterion]) -> str:
    """The rules in words, for lists and the campaign page."""
    groups = []
    for group in rules.get("groups") or []:
        words = []
        for condition in group.get("conditions") or []:
            criterion = known.get(condition.get("criterion", ""))
            if criterion is None:
                words.append("(a criterion no longer available)")
                continue
            op = dict(criterion.operators).get(condition.get("op", ""), "")
            value = condition.get("value", "")
            if criterion.value == "choice":
                value = dict(criterion.choices).get(value, value)
            if criterion.value == "none":
                value = ""
            words.append(" ".join(w for w in (criterion.label, op, str(value)) if w))
        if words:
            joiner = " and " if group.get("match") == "all" else " or "
            groups.append(joiner.join(words))
    if not groups:
        return "Everyone"
    if len(groups) == 1:
        return groups[0]
    joiner = " and " if rules.get("match") == "all" else " or "
    return joiner.join(f"({g})" for g in groups)


# --- stored segments ---------------------------------------------------------------------------


async def list_segments(limit: int = 200) -> list[dict[str, Any]]:
    return await Segment.select().order_by(Segment.name).limit(limit).run()


async def get_segment(segment_id: int) -> dict[str, Any] | None:
    return await Segment.select().where(Segment.id == segment_id).first().run()


async def save_segment(rapport: Rapport, actor: Actor, segment_id: int | None, name: str,
                       description: str, rules: dict[str, Any], *, ip: str = ""
                       ) -> dict[str, Any]:
    """Create (``segment_id`` None) or change a segment; refuses bad rules; audited."""
    name = (name or "").strip()
    if not name:
        raise SegmentError("name", "enter a name")
    if len(name) > 150:
        raise SegmentError("name", "at most 150 characters")
    if len(description or "") > 2000:
        raise SegmentError("description", "at most 2,000 characters")
    compile_rules(rules, await criteria(rapport))
    values = {"name": name, "description": (description or "").strip(),
              "rules": json.dumps(rules), "updated_at": datetime.now(UTC)}
    if segment_id is None:
        values["created_by"] = actor.id if actor.kind == "staff" else None
        return await records.create(actor, Segment, values, ip=ip, summary=f"segment {name}")
    return await records.update(actor, Segment, segment_id, values, ip=ip,
                                summary=f"segment {name}")


async def delete_segment(actor: Actor, segment_id: int, *, ip: str = "") -> None:
    from plugins.campaigns.tables import Campaign

    used = await Campaign.count().where(Campaign.segment == segment_id).run()
    if used:
        raise SegmentError("segment", f"used by {used} campaign{'s' if used != 1 else ''}; "
                           "it cannot be deleted")
    await records.delete(actor, Segment, segment_id, ip=ip)

