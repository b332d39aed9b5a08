"""Leads: capture, transparent scoring, assignment rules and conversion into customers.

Every capture channel (staff form, API, CSV import, public web form) goes through
:func:`capture_lead`, so a lead is validated, scored and assigned the same way wherever it
came from.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import audit, records
from core.customers.tables import Customer
from core.identity.tables import TeamMember, User
from core.permissions import Actor
from plugins.sales.tables import AssignmentRule, Lead, LeadActivity, ScoringRule

if TYPE_CHECKING:
    from core.app import Rapport

# The fields a lead form, the API and a CSV file may set, with their maximum lengths.
LEAD_FIELDS: dict[str, int] = {
    "first_name": 150, "last_name": 150, "company": 300, "job_title": 150, "email": 254,
    "phone": 32, "website": 300, "industry": 150, "region": 100, "country": 2, "source": 100,
    "message": 5000,
}
SCORABLE_FIELDS = tuple(f for f in LEAD_FIELDS if f != "message")
CONDITIONS = ("equals", "contains", "not_empty", "one_of", "ends_with")
ASSIGNMENT_METHODS = ("owner", "round_robin", "territory")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class LeadError(ValueError):
    """Bad lead input; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def clean_lead(data: dict[str, Any]) -> dict[str, str]:
    """Validate and normalise lead input; raise :class:`LeadError` naming the first bad field."""
    values: dict[str, str] = {}
    for name, limit in LEAD_FIELDS.items():
        raw = data.get(name)
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise LeadError(name, "must be text")
        value = raw.strip()
        if len(value) > limit:
            raise LeadError(name, f"is longer than {limit} characters")
        values[name] = value
    if "email" in values:
        values["email"] = values["email"].lower()
        if values["email"] and not _EMAIL.match(values["email"]):
            raise LeadError("email", "is not an email address")
    if "country" in values:
        values["country"] = values["country"].upper()
    if not (values.get("last_name") or values.get("first_name") or values.get("company")):
        raise LeadError("last_name", "give a name or a company")
    if not (values.get("email") or values.get("phone")):
        raise LeadError("email", "give an email address or a phone number")
    return values


def lead_name(lead: dict[str, Any]) -> str:
    name = f"{lead.get('first_name', '')} {lead.get('last_name', '')}".strip()
    return name or lead.get("company", "") or f"Lead {lead.get('id', '')}"


# --- Scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """One rule that added (or removed) points, shown on the lead page."""

    rule_id: int
    description: str
    points: int


def describe_rule(rule: dict[str, Any]) -> str:
    field = rule["field"].replace("_", " ")
    if rule["condition"] == "not_empty":
        return f"{field} is filled in"
    if rule["condition"] == "one_of":
        return f"{field} is one of {rule['value']}"
    return f"{field} {rule['condition'].replace('_', ' ')} {rule['value']!r}"


def rule_matches(rule: dict[str, Any], lead: dict[str, Any]) -> bool:
    value = str(lead.get(rule["field"]) or "").strip().lower()
    expected = (rule["value"] or "").strip().lower()
    condition = rule["condition"]
    if condition == "not_empty":
        return bool(value)
    if condition == "equals":
        return value == expected
    if condition == "contains":
        return bool(expected) and expected in value
    if condition == "ends_with":
        return bool(expected) and value.endswith(expected)
    if condition == "one_of":
        return value in {v.strip() for v in expected.split(",") if v.strip()}
    return False


async def active_rules() -> list[dict[str, Any]]:
    return await ScoringRule.select().where(ScoringRule.active == True).order_by(  # noqa: E712
        ScoringRule.position).order_by(ScoringRule.id).run()


def score_lead(lead: dict[str, Any], rules: list[dict[str, Any]]) -> tuple[int, list[Contribution]]:
    """The lead's score and the rules that made it, so nobody has to trust a black box."""
    contributions = [
        Contribution(rule["id"], describe_rule(rule), rule["points"])
        for rule in rules
        if rule_matches(rule, lead)
    ]
    return sum(c.points for c in contributions), contributions


def check_rule(data: dict[str, Any]) -> dict[str, Any]:
    field = str(data.get("field", "")).strip()
    condition = str(data.get("condition", "")).strip()
    if field not in SCORABLE_FIELDS:
        raise LeadError("field", f"choose one of {', '.join(SCORABLE_FIELDS)}")
    if condition not in CONDITIONS:
        raise LeadError("condition", f"choose one of {', '.join(CONDITIONS)}")
    try:
        points = int(str(data.get("points", "0")).strip())
    except ValueError:
        raise LeadError("points", "must be a whole number") from None
    value = str(data.get("value", "")).strip()[:300]
    if condition != "not_empty" and not value:
        raise LeadError("value", "give the value to compare with")
    return {"field": field, "condition": condition, "value": value, "points": points}


# --- Assignment ------------------------------------------------------------------------------


def _rule_applies(rule: dict[str, Any], lead: dict[str, Any]) -> bool:
    if rule["region"] and rule["region"].strip().lower() != (lead.get("region") or "").lower():
        return False
    if rule["source"] and rule["source"].strip().lower() != (lead.get("source") or "").lower():
        return False
    if rule["method"] == "territory" and not rule["region"]:
        return False
    return True


async def _next_in_team(rule: dict[str, Any]) -> int | None:
    """The team member after the one who got the last lead (by user id, active users only)."""
    if rule["team"] is None:
        return None
    members = await TeamMember.select(TeamMember.user).where(
        (TeamMember.team == rule["team"]) & (TeamMember.user.is_active == True)  # noqa: E712
    ).run()
    ids = sorted({m["user"] for m in members})
    if not ids:
        return None
    last = rule["last_user_id"]
    following = [i for i in ids if last is not None and i > last]
    chosen = following[0] if following else ids[0]
    await AssignmentRule.update({AssignmentRule.last_user_id: chosen}).where(
        AssignmentRule.id == rule["id"]).run()
    return chosen


async def choose_assignee(lead: dict[str, Any]) -> tuple[int | None, int | None, str]:
    """(owner id, team id, rule name) from the first matching active assignment rule."""
    rules = await AssignmentRule.select().where(AssignmentRule.active == True).order_by(  # noqa: E712
        AssignmentRule.position).order_by(AssignmentRule.id).run()
    for rule in rules:
        if not _rule_applies(rule, lead):
            continue
        if rule["method"] == "owner" and rule["user"] is not None:
            return rule["user"], rule["team"], rule["name"]
        if rule["method"] in ("round_robin", "territory"):
            async with AssignmentRule._meta.db.transaction():
                fresh = await AssignmentRule.select().where(
                    AssignmentRule.id == rule["id"]).first().run()
                chosen = await _next_in_team(fresh)
            if chosen is not None:
                return chosen, rule["team"], rule["name"]
    return None, None, ""


def check_assignment_rule(data: dict[str, Any]) -> dict[str, Any]:
    method = str(data.get("method", "")).strip()
    if method not in ASSIGNMENT_METHODS:
        raise LeadError("method", f"choose one of {', '.join(ASSIGNMENT_METHODS)}")
    name = str(data.get("name", "")).strip()[:200]
    if not name:
        raise LeadError("name", "give the rule a name")

    def as_id(key: str) -> int | None:
        raw = str(data.get(key) or "").strip()
        if not raw:
            return None
        if not raw.isdigit():
            raise LeadError(key, "choose from the list")
        return int(raw)

    values = {"name": name, "method": method,
              "region": str(data.get("region", "")).strip()[:100],
              "source": str(data.get("source", "")).strip()[:100],
              "user": as_id("user"), "team": as_id("team")}
    if method == "owner" and values["user"] is None:
        raise LeadError("user", "choose who gets the leads")
    if method in ("round_robin", "territory") and values["team"] is None:
        raise LeadError("team", "choose the team whose members take turns")
    if method == "territory" and not values["region"]:
        raise LeadError("region", "give the territory's region")
    return values


# --- Capture ---------------------------------------------------------------------------------


async def capture_lead(rapport: Rapport, actor: Actor | None, data: dict[str, Any], *,
                       source: str, ip: str = "", owner: int | None = None,
                       publish: bool = True) -> dict[str, Any]:
    """Validate, score, assign and store a lead (audited); announce the assignment.

    ``owner`` (a staff user creating their own lead) wins over assignment rules.
    """
    values = clean_lead(data)
    values["source"] = values.get("source") or source
    score, _ = score_lead(values, await active_rules())
    team = None
    if owner is None:
        owner, team, _rule = await choose_assignee(values)
    row = await records.create(actor, Lead, {**values, "score": score, "owner": owner,
                                             "team": team}, ip=ip,
                               summary=f"lead captured ({values['source']})")
    if publish and owner is not None:
        await announce_assignment(rapport, row, actor)
    return row


async def announce_assignment(rapport: Rapport, lead: dict[str, Any], actor: Actor | None) -> None:
    await rapport.publish("sales.lead.assigned", {
        "lead_id": lead["id"], "owner_id": lead["owner"], "name": lead_name(lead),
        "score": lead["score"],
    }, actor_id=actor.id if actor else None)


async def assign_lead(rapport: Rapport, actor: Actor, lead_id: int, owner: int | None,
                      *, ip: str = "") -> dict[str, Any]:
    row = await records.update(actor, Lead, lead_id, {"owner": owner,
                                                      "updated_at": datetime.now(UTC)},
                               ip=ip, summary="lead assigned")
    if owner is not None and owner != actor.id:
        await announce_assignment(rapport, row, actor)
    return row


@dataclass
class ImportResult:
    created: list[int]
    errors: list[tuple[int, str, str]]  # (line number, field, message)


async def import_leads_csv(rapport: Rapport, actor: Actor, text: str, *, ip: str = "") -> ImportResult:
    """Import leads from CSV with a header row. Good rows are stored; bad rows are reported
    by line number and field and nothing of them is stored."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    result = ImportResult(created=[], errors=[])
    if not reader.fieldnames:
        result.errors.append((1, "file", "the file is empty; the first line names the columns"))
        return result
    headers = [h.strip().lower().replace(" ", "_") for h in reader.fieldnames]
    unknown = [h for h in headers if h and h not in LEAD_FIELDS]
    if unknown:
        result.errors.append((1, unknown[0], f"unknown column; known columns: "
                                             f"{', '.join(LEAD_FIELDS)}"))
        return result
    reader.fieldnames = headers
    for row in reader:
        line = reader.line_num
        data = {k: (v or "") for k, v in row.items() if k}
        try:
            lead = await capture_lead(rapport, actor, data, source="import", ip=ip)
        except LeadError as exc:
            result.errors.append((line, exc.field, exc.message))
            continue
        result.created.append(lead["id"])
    await audit.record(actor, "import", Lead._meta.tablename, "",
                       summary=f"{len(result.created)} leads imported, "
                               f"{len(result.errors)} rows refused", ip=ip)
    return result


# --- Conversion ------------------------------------------------------------------------------


class ConversionError(ValueError):
    pass


async def _copy_history(rapport: Rapport, lead: dict[str, Any], contact_id: int) -> int:
    """Copy the lead's activities into the contact's interaction timeline (after the
    conversion committed). Each copy carries a client id, so a retry never duplicates it."""
    from core.interactions.service import record_interaction

    activities = await LeadActivity.select().where(
        (LeadActivity.lead == lead["id"]) & LeadActivity.interaction_id.is_null()).run()
    for activity in activities:
        # No actor: a trusted plugin job (the converting user may not see the new contact
        # when it belongs to someone else's team); the conversion itself is audited.
        row, _created = await record_interaction(
            rapport, None, customer_id=contact_id, channel=activity["channel"],
            direction="outbound" if activity["channel"] != "web" else "inbound",
            subject=activity["subject"] or "Lead activity", notes=activity["notes"],
            occurred_at=activity["occurred_at"], plugin="sales",
            plugin_record=f"lead:{lead['id']}", client_id=f"sales-lead-activity-{activity['id']}")
        await LeadActivity.update({LeadActivity.interaction_id: row["id"]}).where(
            LeadActivity.id == activity["id"]).run()
    return len(activities)


async def convert_lead(rapport: Rapport, actor: Actor, lead_id: int, *,
                       opportunity_name: str = "", amount: str = "", currency: str = "",
                       create_opportunity: bool = True, ip: str = "") -> dict[str, Any]:
    """Turn a lead into an account, a contact and (optionally) an opportunity, all at once.

    The lead keeps pointing at what it became; its activities join the contact's timeline.
    """
    from plugins.sales.pipeline import create_opportunity as new_opportunity

    lead = await Lead.select().where(Lead.id == lead_id).first().run()
    if lead is None:
        raise ConversionError("the lead does not exist")
    if lead["status"] == "converted":
        raise ConversionError("the lead is already converted")
    owner = lead["owner"] or actor.id
    now = datetime.now(UTC)
    async with Lead._meta.db.transaction():
        account = None
        if lead["company"]:
            account = await records.create(actor, Customer, {
                "kind": "account", "name": lead["company"], "owner": owner,
                "team": lead["team"], "lifecycle_stage": "prospect", "source": lead["source"],
                "website": lead["website"], "industry": lead["industry"],
            }, ip=ip, summary=f"converted from lead {lead_id}")
        contact = await records.create(actor, Customer, {
            "kind": "contact", "name": lead_name(lead) if (lead["first_name"] or
                                                           lead["last_name"]) else
            (lead["email"] or lead["phone"]),
            "first_name": lead["first_name"], "last_name": lead["last_name"],
            "job_title": lead["job_title"], "account": account["id"] if account else None,
            "owner": owner, "team": lead["team"], "lifecycle_stage": "prospect",
            "source": lead["source"], "primary_email": lead["email"],
            "primary_phone": lead["phone"], "notes": lead["message"],
        }, ip=ip, summary=f"converted from lead {lead_id}")
        opportunity = None
        if create_opportunity:
            opportunity = await new_opportunity(rapport, actor, {
                "name": opportunity_name or f"{lead['company'] or lead_name(lead)}",
                "customer": (account or contact)["id"], "contact": contact["id"],
                "amount": amount or "0", "currency": currency, "owner": owner,
                "team": lead["team"], "lead": lead_id,
            }, ip=ip)
        await records.update(actor, Lead, lead_id, {
            "status": "converted", "converted_contact": contact["id"],
            "converted_account": account["id"] if account else None,
            "converted_opportunity": opportunity["id"] if opportunity else None,
            "converted_at": now, "updated_at": now,
        }, ip=ip, summary="lead converted")
    await _copy_history(rapport, lead, contact["id"])
    return {"lead_id": lead_id, "contact_id": contact["id"],
            "account_id": account["id"] if account else None,
            "opportunity_id": opportunity["id"] if opportunity else None}


async def users_by_id(ids: set[int]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    rows = await User.select(User.id, User.name).where(User.id.is_in(sorted(ids))).run()
    return {r["id"]: r["name"] for r in rows}
