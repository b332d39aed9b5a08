"""Dashboard widgets for the program owner (``loyalty.report.view``): outstanding liability,
earn and burn per month, redemption rate and breakage, active members, members by tier; and
the months as CSV.

They read the month totals (``loyalty_month``, kept as ledger rows are written) and the
members' summary rows, never the ledger: the outstanding points are the sum of every month's
earned less spent, expired and taken back.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from litestar import Request, get
from litestar.response import Response, Template
from piccolo.query.functions.aggregate import Count, Sum

from plugins.loyalty.tables import Member, MonthlyStat, Program, Tier

REPORT = {"permission": "loyalty.report.view"}
MONTHS = 12


def _months(now: datetime, count: int = MONTHS) -> list[str]:
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(out))


async def figures(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per program: outstanding points and their value, the last 12 months' earn, burn,
    expiry, redemption rate and breakage, active members."""
    now = now or datetime.now(UTC)
    months = _months(now)
    out = []
    for program in await Program.select().order_by(Program.name).limit(20).run():
        totals = await MonthlyStat.select(
            Sum(MonthlyStat.earned, alias="earned"), Sum(MonthlyStat.spent, alias="spent"),
            Sum(MonthlyStat.expired, alias="expired"),
            Sum(MonthlyStat.reversed, alias="reversed")).where(
            MonthlyStat.program == program["id"]).first().run() or {}
        outstanding = sum(int(totals.get(k) or 0) * sign for k, sign in (
            ("earned", 1), ("spent", -1), ("expired", -1), ("reversed", -1)))
        rows = {r["month"]: r for r in await MonthlyStat.select().where(
            (MonthlyStat.program == program["id"]) & MonthlyStat.month.is_in(months)).run()}
        series = [{"month": m, "label": datetime.strptime(m, "%Y-%m").strftime("%b %Y"),
                   "earned": rows.get(m, {}).get("earned", 0),
                   "spent": rows.get(m, {}).get("spent", 0),
                   "expired": rows.get(m, {}).get("expired", 0),
                   "reversed": rows.get(m, {}).get("reversed", 0),
                   "vouchers_issued": rows.get(m, {}).get("vouchers_issued", 0),
                   "vouchers_used": rows.get(m, {}).get("vouchers_used", 0)} for m in months]
        earned = sum(s["earned"] for s in series)
        spent = sum(s["spent"] for s in series)
        expired = sum(s["expired"] for s in series)
        active = await Member.count().where(
            (Member.program == program["id"])
            & (Member.updated_at >= now - timedelta(days=90))).run()
        peak = max([max(s["earned"], s["spent"]) for s in series] + [1])
        out.append({
            "program": program, "outstanding": outstanding,
            "liability": Decimal(outstanding) * Decimal(program["point_value"]),
            "series": series, "peak": peak, "earned": earned, "spent": spent,
            "redemption_rate": 100 * Decimal(spent) / earned if earned else None,  # percent
            "breakage": 100 * Decimal(expired) / earned if earned else None,
            "active": active,
        })
    return out


@get("/loyalty/widgets/liability", opt=REPORT, name="loyalty-widget-liability")
async def liability_widget(request: Request) -> Template:
    return Template("loyalty/widgets/liability.html", context={"programs": await figures()})


@get("/loyalty/widgets/activity", opt=REPORT, name="loyalty-widget-activity")
async def activity_widget(request: Request) -> Template:
    return Template("loyalty/widgets/activity.html", context={"programs": await figures()})


@get("/loyalty/widgets/tiers", opt=REPORT, name="loyalty-widget-tiers")
async def tiers_widget(request: Request) -> Template:
    rows = await Member.select(Member.program, Member.tier, Count(Member.id, alias="n")).where(
        Member.status == "active").group_by(Member.program, Member.tier).run()
    names = {t["id"]: (t["name"], t["threshold"]) for t in await Tier.select(
        Tier.id, Tier.name, Tier.threshold).run()}
    programs = {p["id"]: p["name"] for p in await Program.select(Program.id, Program.name).run()}
    grouped: dict[str, list[tuple[str, int, int]]] = {}
    for row in rows:
        name, threshold = names.get(row["tier"], ("No tier", -1))
        grouped.setdefault(programs.get(row["program"], ""), []).append(
            (name, threshold, row["n"]))
    for items in grouped.values():
        items.sort(key=lambda item: item[1])
    return Template("loyalty/widgets/tiers.html", context={"grouped": grouped})


@get("/loyalty/reports/months.csv", opt=REPORT, name="loyalty-months-csv")
async def months_csv(request: Request) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Program", "Month", "Points earned", "Points spent", "Points expired",
                     "Points taken back", "Vouchers issued", "Vouchers used"])
    for item in await figures():
        for s in item["series"]:
            writer.writerow([item["program"]["name"], s["month"], s["earned"], s["spent"],
                             s["expired"], s["reversed"], s["vouchers_issued"],
                             s["vouchers_used"]])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="loyalty-months.csv"'})


ROUTES = [liability_widget, activity_widget, tiers_widget, months_csv]
