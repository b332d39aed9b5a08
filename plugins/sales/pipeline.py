"""Pipelines, stages and opportunities: creating deals, moving them, and spotting stale ones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core import records, references
from core.customers.tables import Customer
from core.identity.tables import TeamMember, User
from core.money import Money
from core.permissions import Actor
from plugins.sales.tables import Lead, Opportunity, Pipeline, Stage, StageChange

if TYPE_CHECKING:
    from core.app import Rapport

DEFAULT_STAGES = [
    ("Prospecting", 10, "open"), ("Qualification", 20, "open"), ("Proposal", 50, "open"),
    ("Negotiation", 75, "open"), ("Won", 100, "won"), ("Lost", 0, "lost"),
]


class OpportunityError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


async def default_pipeline() -> dict[str, Any]:
    """The default pipeline, created with the usual stages the first time it is needed."""
    found = await Pipeline.select().where(Pipeline.is_default == True).first().run()  # noqa: E712
    if found is not None:
        return found
    async with Pipeline._meta.db.transaction():
        found = await Pipeline.select().where(Pipeline.name == "Sales").first().run()
        if found is None:
            rows = await Pipeline.insert(Pipeline(name="Sales", is_default=True)).returning(
                *Pipeline._meta.columns).run()
            found = rows[0]
            await Stage.insert(*[
                Stage(pipeline=found["id"], name=name, position=i, probability=p, outcome=o)
                for i, (name, p, o) in enumerate(DEFAULT_STAGES)
            ]).run()
    return found


async def stages_of(pipeline_id: int) -> list[dict[str, Any]]:
    return await Stage.select().where(Stage.pipeline == pipeline_id).order_by(
        Stage.position).order_by(Stage.id).run()


def parse_amount(raw: Any, currency: str) -> Money:
    try:
        money = Money.parse(raw if raw not in (None, "") else "0", currency)
    except (ValueError, InvalidOperation, TypeError):
        raise OpportunityError("amount", "is not an amount of money") from None
    if money.amount < 0:
        raise OpportunityError("amount", "cannot be negative")
    return money.rounded()


def parse_date(raw: Any, field: str) -> date | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise OpportunityError(field, "is not a date (YYYY-MM-DD)") from None


async def create_opportunity(rapport: Rapport, actor: Actor, data: dict[str, Any], *,
                             ip: str = "") -> dict[str, Any]:
    name = str(data.get("name", "")).strip()
    if not name:
        raise OpportunityError("name", "give the opportunity a name")
    currency = (str(data.get("currency") or "") or
                rapport.plugin_settings("sales").default_currency).upper()
    try:
        money = parse_amount(data.get("amount"), currency)
    except ValueError as exc:
        if isinstance(exc, OpportunityError):
            raise
        raise OpportunityError("currency", "is not an ISO 4217 currency code") from None
    pipeline_id = _int_or_none(data.get("pipeline"), "pipeline")
    pipeline = await default_pipeline() if not pipeline_id else \
        await Pipeline.select().where(Pipeline.id == pipeline_id).first().run()
    if pipeline is None:
        raise OpportunityError("pipeline", "no such pipeline")
    stages = await stages_of(pipeline["id"])
    stage_id = data.get("stage")
    stage = next((s for s in stages if str(s["id"]) == str(stage_id)), None) if stage_id else \
        next((s for s in stages if s["outcome"] == "open"), stages[0])
    if stage is None:
        raise OpportunityError("stage", "choose a stage of this pipeline")
    now = datetime.now(UTC)
    # A portal customer asking for a quote is no user: the deal is the customer's owner's.
    staff_id = actor.id if actor is not None and actor.kind == "staff" else None
    try:  # every reference within the author's reach (core.references)
        refs = {
            "customer": await references.record(
                rapport, actor, "customer", Customer, data.get("customer") or None,
                "core.customer.view"),
            "contact": await references.record(
                rapport, actor, "contact", Customer, data.get("contact") or None,
                "core.customer.view", label="contact person"),
            "lead": await references.record(
                rapport, actor, "lead", Lead, data.get("lead") or None, "sales.lead.view"),
            "owner": await references.owner(
                rapport, actor, "owner", data.get("owner") or staff_id,
                "sales.opportunity.create"),
            "team": await references.team(
                rapport, actor, "team", data.get("team") or None, "sales.opportunity.create"),
        }
    except references.ReferenceRefused as exc:
        raise OpportunityError(exc.field, exc.message) from None
    values = {
        "name": name[:300], "customer": refs["customer"],
        "contact": refs["contact"], "pipeline": pipeline["id"],
        "stage": stage["id"], "status": stage["outcome"], "amount_amount": money.amount,
        "amount_currency": money.currency,
        "expected_close": parse_date(data.get("expected_close"), "expected_close"),
        "owner": refs["owner"], "team": refs["team"],
        "competitors": str(data.get("competitors", "")).strip()[:500],
        "lead": refs["lead"], "last_activity_at": now,
    }
    async with Opportunity._meta.db.transaction():
        row = await records.create(actor, Opportunity, values, ip=ip)
        await StageChange.insert(StageChange(opportunity=row["id"], from_stage=None,
                                             to_stage=stage["id"], changed_at=now,
                                             user=staff_id)).run()
    return row


# --- Editing a deal ----------------------------------------------------------------------------

EDITABLE = ("name", "amount", "currency", "expected_close", "owner", "contact")


async def assignable_users(actor: Actor) -> list[dict[str, Any]]:
    """Who ``actor`` may make a deal's owner: anyone active with the edit permission at scope
    "all"; themselves and the members of their teams at "team"; only themselves at "own"."""
    scope = actor.scope_for("sales.opportunity.edit") if actor.can(
        "sales.opportunity.edit") else None
    query = User.select(User.id, User.name).where(User.is_active == True)  # noqa: E712
    if scope == "team":
        members = TeamMember.select(TeamMember.user).where(
            TeamMember.team.is_in(sorted(actor.team_ids) or [0]))
        query = query.where(User.id.is_in(members) | (User.id == actor.id))
    elif scope != "all":
        query = query.where(User.id == actor.id)
    return await query.order_by(User.name).limit(500).run()


def _int_or_none(raw: Any, field: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise OpportunityError(field, "choose from the list") from None


async def update_opportunity(rapport: Rapport, actor: Actor, opportunity: dict[str, Any],
                             data: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Change a deal's name, amount and currency, expected close date, owner and contact.

    Fields absent from ``data`` stay as they are. A new owner must be someone ``actor`` may
    assign (:func:`assignable_users`); a contact must be a customer they can see (the caller
    checks visibility, see ``opportunities_web``). Audited as one change.
    """
    changes: dict[str, Any] = {}
    if "name" in data:
        name = " ".join(str(data.get("name") or "").split())
        if not name:
            raise OpportunityError("name", "give the opportunity a name")
        changes["name"] = name[:300]
    if "amount" in data or "currency" in data:
        currency = str(data.get("currency") or opportunity["amount_currency"]).strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise OpportunityError("currency", "is not an ISO 4217 currency code")
        raw = data.get("amount", opportunity["amount_amount"])
        if isinstance(raw, float):
            raise OpportunityError("amount", "give the amount as a string, not a float")
        money = parse_amount(raw, currency)
        changes.update(amount_amount=money.amount, amount_currency=money.currency)
    if "expected_close" in data:
        changes["expected_close"] = parse_date(data.get("expected_close"), "expected_close")
    if "owner" in data:
        owner = _int_or_none(data.get("owner"), "owner")
        if owner != opportunity["owner"]:
            allowed = {u["id"] for u in await assignable_users(actor)}
            if owner is None or owner not in allowed:
                raise OpportunityError("owner", "choose someone you may give deals to")
            changes["owner"] = owner
    if "contact" in data:
        try:
            changes["contact"] = await references.record(
                rapport, actor, "contact", Customer, _int_or_none(data.get("contact"), "contact"),
                "core.customer.view", current=opportunity["contact"], label="contact person")
        except references.ReferenceRefused as exc:
            raise OpportunityError(exc.field, exc.message) from None
    changes = {k: v for k, v in changes.items() if opportunity.get(k) != v}
    if not changes:
        return opportunity
    now = datetime.now(UTC)
    changes.update(updated_at=now, last_activity_at=now)
    return await records.update(actor, Opportunity, opportunity["id"], changes, ip=ip,
                                summary="details changed")


async def move_to_stage(actor: Actor, opportunity: dict[str, Any], stage_id: int, *,
                        reason: str = "", ip: str = "") -> dict[str, Any]:
    """Move a deal to another stage of its pipeline, keeping the stage history."""
    stage = await Stage.select().where(
        (Stage.id == stage_id) & (Stage.pipeline == opportunity["pipeline"])).first().run()
    if stage is None:
        raise OpportunityError("stage", "choose a stage of this deal's pipeline")
    if stage["id"] == opportunity["stage"]:
        return opportunity
    if stage["outcome"] == "lost" and not reason.strip() and not opportunity["close_reason"]:
        raise OpportunityError("close_reason", "say why the deal was lost")
    now = datetime.now(UTC)
    changes: dict[str, Any] = {"stage": stage["id"], "status": stage["outcome"],
                               "last_activity_at": now, "updated_at": now,
                               "closed_at": now if stage["outcome"] != "open" else None}
    if reason.strip():
        changes["close_reason"] = reason.strip()[:300]
    async with Opportunity._meta.db.transaction():
        row = await records.update(actor, Opportunity, opportunity["id"], changes, ip=ip,
                                   summary=f"moved to {stage['name']}")
        await StageChange.insert(StageChange(opportunity=opportunity["id"],
                                             from_stage=opportunity["stage"],
                                             to_stage=stage["id"], changed_at=now,
                                             user=actor.id)).run()
    return row


def is_stale(opportunity: dict[str, Any], stale_after_days: int, now: datetime | None = None) -> bool:
    if opportunity["status"] != "open" or opportunity.get("last_activity_at") is None:
        return False
    now = now or datetime.now(UTC)
    last = opportunity["last_activity_at"]
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return now - last > timedelta(days=stale_after_days)


def weighted(amount: Decimal, probability: int) -> Decimal:
    return (Decimal(amount) * Decimal(probability) / Decimal(100))
