"""Sales targets (admin form and API) and the "Forecast vs target" dashboard widget."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import post_form
from tests.plugins.sales.test_forecast_and_suggestions import deal


def _quarter_start() -> str:
    today = date.today()
    return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1).isoformat()


async def test_widget_sets_won_and_weighted_pipeline_against_the_target(sales_client):
    await deal(sales_client, "1000.00", "Proposal")  # 50%: weighted 500
    await deal(sales_client, "300.00", "Won")
    saved = await post_form(sales_client, "/sales/targets", {
        "period_kind": "quarter", "period_start": _quarter_start(),
        "owner": str(sales_client.user_id), "amount": "2000", "currency": "EUR"})
    assert saved.status_code == 303
    widget = await sales_client.get("/sales/widgets/forecast-target")
    assert "Boss" in widget.text or "boss" in widget.text
    assert "300.00 EUR" in widget.text and "500.00 EUR" in widget.text
    assert "2,000.00 EUR" in widget.text and "15% won, 40% expected" in widget.text
    # Setting it again changes the amount instead of adding a second target.
    await post_form(sales_client, "/sales/targets", {
        "period_kind": "quarter", "period_start": _quarter_start(),
        "owner": str(sales_client.user_id), "amount": "1000", "currency": "EUR"})
    api = (await sales_client.get("/api/v1/sales/targets")).json()
    assert len(api["items"]) == 1
    item = api["items"][0]
    assert (Decimal(item["target"]), Decimal(item["won"]), Decimal(item["weighted"]),
            Decimal(item["expected"])) == (Decimal(1000), Decimal(300), Decimal(500),
                                           Decimal(800))
    from core.audit import AuditEntry

    actions = [r["action"] for r in await AuditEntry.select(AuditEntry.action).where(
        AuditEntry.record_type == "sales_target").order_by(AuditEntry.id).run()]
    assert actions == ["create", "update"]

    page = await sales_client.get("/sales/targets")
    assert page.status_code == 200 and "1,000.00 EUR" in page.text


async def test_target_form_names_the_field_that_is_wrong(sales_client):
    bad = await post_form(sales_client, "/sales/targets", {
        "period_kind": "quarter", "period_start": _quarter_start(), "amount": "100"})
    assert bad.status_code == 400 and "choose either a representative or a team" in bad.text
    bad = await post_form(sales_client, "/sales/targets", {
        "period_kind": "quarter", "period_start": _quarter_start(),
        "owner": str(sales_client.user_id), "amount": "lots"})
    assert bad.status_code == 400 and "is not an amount of money" in bad.text
    assert 'aria-invalid="true" aria-describedby="err-t-amount"' in bad.text
    api = await sales_client.post("/api/v1/sales/targets", json={
        "period_kind": "quarter", "period_start": _quarter_start(),
        "owner": sales_client.user_id, "amount": 12.5})
    assert api.status_code == 422 and api.json()["field"] == "amount"
    api = await sales_client.post("/api/v1/sales/targets", json={
        "period_kind": "week", "period_start": _quarter_start(),
        "owner": sales_client.user_id, "amount": "12.50"})
    assert api.json()["field"] == "period_kind"
    widget = await sales_client.get("/sales/widgets/forecast-target")
    assert "No targets for" in widget.text and "Set targets" in widget.text


async def test_representatives_see_only_their_own_target_and_cannot_set_targets(sales_client):
    rep = await make_user("rep@example.test", roles=["field_representative"])
    other = await make_user("other@example.test", roles=["field_representative"])
    for owner, amount in ((rep, "700"), (other, "900")):
        created = await sales_client.post("/api/v1/sales/targets", json={
            "period_kind": "quarter", "period_start": _quarter_start(), "owner": owner,
            "amount": amount, "currency": "EUR"})
        assert created.status_code == 201, created.text
    await deal(sales_client, "5000.00", "Won")  # the administrator's deal: not the rep's
    await sign_in(sales_client, "rep@example.test")
    sales_client.headers["x-csrftoken"] = sales_client.cookies["csrftoken"]
    await deal(sales_client, "70.00", "Won")
    api = (await sales_client.get("/api/v1/sales/targets")).json()
    assert [(Decimal(i["target"]), Decimal(i["won"])) for i in api["items"]] == [
        (Decimal(700), Decimal(70))]
    widget = await sales_client.get("/sales/widgets/forecast-target")
    assert "700.00 EUR" in widget.text and "900.00 EUR" not in widget.text
    assert "Set targets" not in widget.text
    assert (await sales_client.get("/sales/targets")).status_code == 403
    denied = await sales_client.post("/api/v1/sales/targets", json={
        "period_kind": "quarter", "period_start": _quarter_start(), "owner": rep,
        "amount": "1"})
    assert denied.status_code == 403


async def test_team_target_counts_the_teams_deals(sales_client):
    from core.identity.tables import Team
    from plugins.sales.tables import Opportunity

    team = (await Team.insert(Team(name="North")).returning(Team.id).run())[0]["id"]
    row = await deal(sales_client, "400.00", "Won")
    await Opportunity.update({Opportunity.team: team}).where(Opportunity.id == row["id"]).run()
    await sales_client.post("/api/v1/sales/targets", json={
        "period_kind": "quarter", "period_start": _quarter_start(), "team": team,
        "amount": "800", "currency": "EUR"})
    widget = await sales_client.get("/sales/widgets/forecast-target")
    assert "Team North" in widget.text and "50% won" in widget.text
