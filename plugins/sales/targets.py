"""Sales targets per period and representative or team, and the "Forecast vs target" widget.

A target says what a representative (or a team) should win in one month or quarter, in one
currency. The widget sets it against what is already won in the period plus the weighted
pipeline (amount x stage probability) of open deals expected to close in it, for every
target the user may see (targets are row-scoped like opportunities: own, team, all).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Response, Template
from piccolo.query.functions.aggregate import Sum

from core import records
from core.api_schemas import accepts
from core.audit import client_ip
from core.identity.tables import Team, User
from core.money import Money
from core.permissions import Actor, current_actor, scoped
from plugins.sales import api_bodies as bodies
from plugins.sales.controllers import form_data, perm, settings_of, staff_choices
from plugins.sales.forecast import Period, _bounds, period_of
from plugins.sales.tables import Opportunity, SalesTarget, Stage

KINDS = ("month", "quarter")


class TargetError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _int(raw: Any) -> int | None:
    return int(raw) if str(raw or "").strip().isdigit() else None


async def check_target(data: dict[str, Any], default_currency: str) -> dict[str, Any]:
    """Validated column values for a target, or :class:`TargetError` naming the field."""
    kind = str(data.get("period_kind") or "quarter")
    if kind not in KINDS:
        raise TargetError("period_kind", "choose month or quarter")
    raw_start = str(data.get("period_start") or "").strip()
    try:
        day = date.fromisoformat(raw_start[:7] + "-01" if len(raw_start) == 7 else raw_start)
    except ValueError:
        raise TargetError("period_start", "give the period's first day (YYYY-MM-DD)") from None
    period = period_of(kind, day)
    owner, team = _int(data.get("owner")), _int(data.get("team"))
    if (owner is None) == (team is None):
        raise TargetError("owner", "choose either a representative or a team")
    if owner is not None and not await User.exists().where(User.id == owner).run():
        raise TargetError("owner", "no such representative")
    if team is not None and not await Team.exists().where(Team.id == team).run():
        raise TargetError("team", "no such team")
    currency = str(data.get("currency") or default_currency).strip().upper()
    raw_amount = data.get("amount")
    if isinstance(raw_amount, float):
        raise TargetError("amount", "give the amount as a string, not a float")
    try:
        money = Money.parse(str(raw_amount or "").strip(), currency)
    except (ValueError, InvalidOperation, TypeError, ArithmeticError):
        field = "currency" if len(currency) != 3 or not currency.isalpha() else "amount"
        raise TargetError(field, "is not an ISO 4217 currency code" if field == "currency"
                          else "is not an amount of money") from None
    if money.amount <= 0:
        raise TargetError("amount", "must be more than zero")
    return {"period_kind": kind, "period_start": period.start, "owner": owner, "team": team,
            "currency": money.currency, "amount": money.rounded().amount}


async def save_target(actor: Actor, values: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    """Create the target, or change the amount of the one for the same period, person or team
    and currency (one target per key)."""
    key = ((SalesTarget.period_kind == values["period_kind"])
           & (SalesTarget.period_start == values["period_start"])
           & (SalesTarget.currency == values["currency"]))
    key &= (SalesTarget.owner == values["owner"]) if values["owner"] is not None else (
        SalesTarget.team == values["team"])
    async with SalesTarget._meta.db.transaction():
        existing = await SalesTarget.select(SalesTarget.id).where(key).first().run()
        if existing:
            return await records.update(actor, SalesTarget, existing["id"],
                                        {"amount": values["amount"]}, ip=ip)
        return await records.create(actor, SalesTarget, values, ip=ip)


async def attainment(rapport, actor: Actor, period: Period) -> list[dict[str, Any]]:
    """Each visible target of ``period`` with won, weighted pipeline and their sum.

    Two grouped queries (open deals by stage, owner, team; won deals by owner, team), both
    within the user's scope and on indexes: bounded by reps x stages, not by deals.
    """
    targets = await scoped(SalesTarget.select().where(
        (SalesTarget.period_kind == period.kind) & (SalesTarget.period_start == period.start)),
        rapport, actor, "sales.opportunity.view", SalesTarget).order_by(SalesTarget.id).limit(
        200).run()
    if not targets:
        return []
    currencies = sorted({t["currency"] for t in targets})
    probabilities = {s["id"]: s["probability"] for s in await Stage.select(
        Stage.id, Stage.probability).run()}
    open_query = scoped(Opportunity.select(
        Opportunity.stage, Opportunity.owner, Opportunity.team, Opportunity.amount_currency,
        Sum(Opportunity.amount_amount, alias="amount")).where(
        (Opportunity.status == "open") & (Opportunity.expected_close >= period.start)
        & (Opportunity.expected_close < period.end)
        & Opportunity.amount_currency.is_in(currencies)),
        rapport, actor, "sales.opportunity.view", Opportunity)
    start, end = _bounds(period)
    won_query = scoped(Opportunity.select(
        Opportunity.owner, Opportunity.team, Opportunity.amount_currency,
        Sum(Opportunity.amount_amount, alias="amount")).where(
        (Opportunity.status == "won") & (Opportunity.closed_at >= start)
        & (Opportunity.closed_at < end) & Opportunity.amount_currency.is_in(currencies)),
        rapport, actor, "sales.opportunity.view", Opportunity)
    weighted: dict[tuple[str, int | None, str], Decimal] = {}
    won: dict[tuple[str, int | None, str], Decimal] = {}
    for row in await open_query.group_by(Opportunity.stage, Opportunity.owner, Opportunity.team,
                                         Opportunity.amount_currency).run():
        value = Decimal(str(row["amount"] or 0)) * probabilities.get(row["stage"], 0) / 100
        for key in (("owner", row["owner"], row["amount_currency"]),
                    ("team", row["team"], row["amount_currency"])):
            weighted[key] = weighted.get(key, Decimal(0)) + value
    for row in await won_query.group_by(Opportunity.owner, Opportunity.team,
                                        Opportunity.amount_currency).run():
        value = Decimal(str(row["amount"] or 0))
        for key in (("owner", row["owner"], row["amount_currency"]),
                    ("team", row["team"], row["amount_currency"])):
            won[key] = won.get(key, Decimal(0)) + value
    users = {u["id"]: u["name"] for u in await User.select(User.id, User.name).where(
        User.id.is_in(sorted({t["owner"] for t in targets if t["owner"]}) or [0])).run()}
    teams = {t["id"]: t["name"] for t in await Team.select(Team.id, Team.name).where(
        Team.id.is_in(sorted({t["team"] for t in targets if t["team"]}) or [0])).run()}
    result = []
    for target in targets:
        key = (("owner", target["owner"]) if target["owner"] else ("team", target["team"])) + (
            target["currency"],)
        amount = Decimal(str(target["amount"]))
        w, done = weighted.get(key, Decimal(0)), won.get(key, Decimal(0))
        currency = target["currency"]
        result.append({
            "id": target["id"],
            "name": users.get(target["owner"], "?") if target["owner"]
            else f"Team {teams.get(target['team'], '?')}",
            "kind": key[0], "target": Money(amount, currency).rounded(),
            "won": Money(done, currency).rounded(), "weighted": Money(w, currency).rounded(),
            "expected": Money(done + w, currency).rounded(),
            "won_percent": int(100 * done / amount) if amount else 0,
            "expected_percent": int(100 * (done + w) / amount) if amount else 0,
        })
    return result


def _current(kind: str, offset: int = 0) -> Period:
    kind = kind if kind in KINDS else "quarter"
    return period_of(kind, datetime.now(UTC).date()).shifted(max(-24, min(24, offset)))


# --- Pages -----------------------------------------------------------------------------------


async def _page(request: Request, kind: str, offset: int, values: dict[str, Any] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> Template:
    period = _current(kind, offset)
    rows = await attainment(request.app.state.rapport, current_actor(request), period)
    users, teams = await staff_choices()
    periods = [_current(period.kind, offset + n) for n in range(-1, 5)]
    return Template("sales/targets.html", status_code=status, context={
        "rows": rows, "period": period, "kind": period.kind, "offset": offset,
        "users": users, "teams": teams, "periods": periods, "values": values or {},
        "errors": errors or {}, "default_currency": settings_of(request).default_currency})


@get("/sales/targets", opt=perm("sales.target.manage"))
async def targets_page(request: Request, period: FromQuery[str] = "quarter",
                       offset: FromQuery[int] = 0) -> Template:
    return await _page(request, period, offset)


@post("/sales/targets", opt=perm("sales.target.manage"), status_code=303)
async def target_save(request: Request) -> Response:
    data = await form_data(request)
    kind = data.get("period_kind", "quarter")
    try:
        values = await check_target(data, settings_of(request).default_currency)
    except TargetError as exc:
        return await _page(request, kind, 0, data, {exc.field: exc.message}, status=400)
    await save_target(current_actor(request), values, ip=client_ip(request))
    offset = _offset_of(values["period_kind"], values["period_start"])
    return Redirect(f"/sales/targets?period={values['period_kind']}&offset={offset}",
                    status_code=303)


def _offset_of(kind: str, start: date) -> int:
    now = _current(kind).start
    months = (start.year - now.year) * 12 + start.month - now.month
    return months // 3 if kind == "quarter" else months


@post("/sales/targets/{target_id:int}/delete", opt=perm("sales.target.manage"),
      status_code=303)
async def target_delete(request: Request, target_id: FromPath[int]) -> Response:
    try:
        row = await records.delete(current_actor(request), SalesTarget, target_id,
                                   ip=client_ip(request))
    except records.RecordNotFound:
        raise NotFoundException("not found") from None
    kind = (row or {}).get("period_kind", "quarter")
    return Redirect(f"/sales/targets?period={kind}", status_code=303)


@get("/sales/widgets/forecast-target", opt=perm("sales.opportunity.view"),
     include_in_schema=False)
async def widget_forecast_target(request: Request) -> Template:
    period = _current(settings_of(request).target_period)
    rows = await attainment(request.app.state.rapport, current_actor(request), period)
    return Template("sales/widget_forecast_target.html", context={
        "rows": rows, "period": period,
        "can_manage": current_actor(request).can("sales.target.manage")})


# --- API -------------------------------------------------------------------------------------


def _problem(exc: TargetError) -> Response:
    return Response({"type": "about:blank", "title": "Invalid input", "status": 422,
                     "detail": f"{exc.field}: {exc.message}", "field": exc.field},
                    status_code=422, media_type="application/problem+json")


@get("/api/v1/sales/targets", opt=perm("sales.opportunity.view"))
async def api_targets(request: Request, period: FromQuery[str] = "quarter",
                      offset: FromQuery[int] = 0) -> dict[str, Any]:
    """Forecast vs target for one period: each visible target with won, weighted pipeline
    and won + weighted (amounts as strings)."""
    span = _current(period, offset)
    rows = await attainment(request.app.state.rapport, current_actor(request), span)
    return {"period": span.label, "start": span.start.isoformat(), "items": [{
        "id": r["id"], "name": r["name"], "kind": r["kind"], "currency": r["target"].currency,
        **{k: str(r[k].amount) for k in ("target", "won", "weighted", "expected")}}
        for r in rows]}


@accepts(bodies.TARGET)
@post("/api/v1/sales/targets", opt=perm("sales.target.manage"))
async def api_target_save(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Set a target: ``period_kind``, ``period_start``, ``owner`` or ``team``, ``currency``,
    ``amount`` (a string). Setting it again for the same key changes the amount."""
    try:
        values = await check_target(data, settings_of(request).default_currency)
    except TargetError as exc:
        return _problem(exc)
    row = await save_target(current_actor(request), values, ip=client_ip(request))
    return Response({"id": row["id"], "period_start": values["period_start"].isoformat(),
                     "amount": str(values["amount"]), "currency": values["currency"]},
                    status_code=201)


ROUTES = [targets_page, target_save, target_delete, widget_forecast_target, api_targets,
          api_target_save]
