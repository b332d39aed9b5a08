"""Forecast (weighted, commit, best case, statistical with accuracy), cross-sell suggestions,
and how sales follows core's customer events (activity, merge, privacy, demo data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tests.conftest import make_user
from tests.plugins.sales.conftest import new_customer


async def deal(client, amount: str, stage: str | None = None, close: date | None = None,
               reason: str = ""):
    created = await client.post("/api/v1/sales/opportunities", json={
        "name": f"Deal {amount}", "amount": amount, "currency": "EUR",
        "expected_close": (close or date.today()).isoformat()})
    assert created.status_code == 201, created.text
    row = created.json()
    if stage:
        stages = {s["name"]: s["id"] for s in (await client.get("/api/v1/sales/stages")).json()}
        moved = await client.post(f"/api/v1/sales/opportunities/{row['id']}/stage",
                                  json={"stage": stages[stage], "reason": reason})
        assert moved.status_code == 200, moved.text
    return row


async def test_forecast_splits_the_pipeline_into_weighted_best_case_and_commit(sales_client):
    await deal(sales_client, "1000.00")  # Prospecting 10%
    await deal(sales_client, "2000.00", "Proposal")  # 50%: best case
    await deal(sales_client, "4000.00", "Negotiation")  # 75%: commit
    await deal(sales_client, "800.00", "Won")
    await deal(sales_client, "9999.00", close=date.today() + timedelta(days=400))
    forecast = (await sales_client.get("/api/v1/sales/forecast?period=month")).json()
    total = forecast["total"]
    assert Decimal(total["pipeline"]) == Decimal("7000")
    assert Decimal(total["weighted"]) == Decimal("100") + Decimal("1000") + Decimal("3000")
    assert Decimal(total["best_case"]) == Decimal("6000")
    assert Decimal(total["commit"]) == Decimal("4000")
    assert Decimal(total["won"]) == Decimal("800")
    assert forecast["by_owner"][0]["owner"] == sales_client.user_id
    page = await sales_client.get("/sales/forecast?period=month")
    assert "4,100.00 EUR" in page.text and "<svg" in page.text
    export = await sales_client.get("/sales/forecast.csv?period=month")
    assert export.headers["content-type"].startswith("text/csv")
    assert "All,EUR,3,7000.00,4100.00,6000.00,4000.00" in export.text


async def test_statistical_forecast_measures_its_accuracy_on_past_periods(sales_client):
    from plugins.sales.tables import Opportunity

    today = date.today().replace(day=15)
    for months_ago, amount in [(1, "100"), (2, "100"), (3, "100"), (4, "100"), (5, "100"),
                               (6, "100"), (7, "100"), (8, "100"), (9, "100")]:
        row = await deal(sales_client, amount, "Won")
        closed = datetime(today.year, today.month, 15, tzinfo=UTC) - timedelta(
            days=30 * months_ago)
        await Opportunity.update({Opportunity.closed_at: closed}).where(
            Opportunity.id == row["id"]).run()
    forecast = (await sales_client.get("/api/v1/sales/forecast?period=month")).json()
    assert Decimal(forecast["statistical"]) == Decimal("100")
    assert Decimal(forecast["accuracy"]) == Decimal("1")
    assert len(forecast["history"]) == 6


async def test_representative_forecast_counts_only_their_deals(sales_client):
    from tests.conftest import sign_in

    await deal(sales_client, "1000.00")
    await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(sales_client, "rep@example.test")
    await deal(sales_client, "250.00")
    forecast = (await sales_client.get("/api/v1/sales/forecast?period=month")).json()
    assert Decimal(forecast["total"]["pipeline"]) == Decimal("250")


async def order(customer: int, products: list[int]) -> None:
    from plugins.sales.tables import OrderLine, SalesOrder

    count = await SalesOrder.count().run()
    row = (await SalesOrder.insert(SalesOrder(number=f"O-{count + 1}", customer=customer,
                                              total_amount=Decimal(1))).returning(
        SalesOrder.id).run())[0]
    if products:
        await OrderLine.insert(*[OrderLine(sales_order=row["id"], product=p, description="x",
                                           unit_price=Decimal(1)) for p in products]).run()


async def test_cross_sell_suggestions_come_with_support_confidence_and_lift(sales_client):
    from plugins.sales.tables import PriceBook, Product, ProductPrice, RelatedProduct

    ids = {}
    for sku in ("BIKE", "HELMET", "LOCK", "BIKE-PRO"):
        ids[sku] = (await Product.insert(Product(sku=sku, name=sku.title())).returning(
            Product.id).run())[0]["id"]
    book = (await PriceBook.insert(PriceBook(name="Std", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    for sku, price in (("BIKE", "500"), ("BIKE-PRO", "900")):
        await ProductPrice.insert(ProductPrice(price_book=book, product=ids[sku], currency="EUR",
                                               unit_price=Decimal(price))).run()
    await RelatedProduct.insert(RelatedProduct(product=ids["BIKE"], related=ids["BIKE-PRO"],
                                               kind="alternative")).run()
    others = [await new_customer(f"Other {i}") for i in range(4)]
    for customer in others[:3]:
        await order(customer, [ids["BIKE"], ids["HELMET"]])
    await order(others[3], [ids["LOCK"]])
    buyer = await new_customer("Buyer")
    await order(buyer, [ids["BIKE"]])
    from plugins.sales import bundles, suggestions

    assert await suggestions.suggest(await suggestions.bought_by(buyer)) == [
        s for s in await suggestions.suggest({ids["BIKE"]}) if s.kind == "up-sell"]
    await bundles.refresh(bundles.Thresholds())  # cross-sell rules come from the mining run
    found = await suggestions.suggest(await suggestions.bought_by(buyer))
    assert [(s.product_name, s.kind) for s in found] == [("Helmet", "cross-sell"),
                                                         ("Bike-Pro", "up-sell")]
    helmet = found[0]
    assert helmet.confidence == Decimal("0.750") and helmet.support == Decimal("0.600")
    assert helmet.lift == Decimal("1.25")
    assert "75% of orders with Bike also had it" in helmet.reason
    panel = await sales_client.get(f"/sales/panels/customer/{buyer}/suggestions")
    assert "Helmet" in panel.text and "lift 1.2" in panel.text
    form = await sales_client.get(f"/sales/quotes/new?customer={buyer}")
    assert "Suggested for this customer" in form.text and "higher-value alternative" in form.text


async def test_an_interaction_with_the_customer_refreshes_their_deals_activity(sales_client):
    from plugins.sales.tables import Opportunity

    customer = await new_customer()
    created = await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Old deal", "customer": customer, "amount": "10.00"})
    deal_id = created.json()["id"]
    long_ago = datetime.now(UTC) - timedelta(days=60)
    await Opportunity.update({Opportunity.last_activity_at: long_ago}).where(
        Opportunity.id == deal_id).run()
    from core.interactions.service import record_interaction

    await record_interaction(sales_client.rapport, None, customer_id=customer, channel="call",
                             subject="Check-in")
    row = await Opportunity.select().where(Opportunity.id == deal_id).first().run()
    assert row["last_activity_at"] > long_ago + timedelta(days=59)


async def test_merging_customers_moves_deals_quotes_and_orders_to_the_survivor(sales_client):
    from plugins.sales.customers import repoint
    from plugins.sales.tables import Opportunity, SalesOrder

    survivor, merged = await new_customer("Keep"), await new_customer("Merge")
    await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Moves", "customer": merged, "amount": "1.00"})
    await order(merged, [])
    await repoint(survivor, merged)
    assert await Opportunity.count().where(Opportunity.customer == survivor).run() == 1
    assert await SalesOrder.count().where(SalesOrder.customer == survivor).run() == 1


async def test_privacy_export_and_erasure_cover_the_lead_a_customer_came_from(sales_client):
    from plugins.sales.tables import Lead

    lead = (await sales_client.post("/api/v1/sales/leads", json={
        "first_name": "Private", "last_name": "Person", "email": "p@example.test",
        "company": "Private Co"})).json()
    result = (await sales_client.post(f"/api/v1/sales/leads/{lead['id']}/convert",
                                      json={"opportunity": False})).json()
    rapport = sales_client.rapport
    exported = await rapport.acollect("privacy_export", rapport=rapport,
                                      customer_id=result["contact_id"])
    sales = [e["sales"] for e in exported if "sales" in e][0]
    assert sales["leads"][0]["email"] == "p@example.test"
    from plugins.sales.customers import erase

    await erase(result["contact_id"])
    stored = await Lead.select().where(Lead.id == lead["id"]).first().run()
    assert stored["email"] == "" and stored["last_name"] == ""
    assert stored["company"] == "Private Co"  # the organisation's name is not personal data


async def test_demo_data_is_seeded_once(make_rapport):
    from tests.conftest import connected

    instance = await make_rapport(["sales"])
    async with connected(instance):
        from plugins.sales.demo import seed
        from plugins.sales.tables import Product

        await seed(instance, 50)
        await seed(instance, 50)
        assert await Product.count().run() == 6


async def test_demo_orders_give_bundles_and_targets_from_the_start(make_rapport):
    """`make run` shows "bought together" suggestions and target progress at once, without
    waiting for real orders."""
    from tests.conftest import connected

    instance = await make_rapport(["sales"])
    async with connected(instance):
        from core.customers.demo import seed_customers
        from core.identity.demo import seed_demo_users
        from plugins.sales.bundles import bundles_for
        from plugins.sales.demo import seed
        from plugins.sales.tables import Bundle, Product, SalesOrder, SalesTarget

        await seed_demo_users(instance)
        await seed_customers(300)
        await seed(instance, 300)
        assert await SalesOrder.count().run() > 20
        assert await SalesTarget.count().run() >= 1
        pro, onboarding = [r["id"] for r in await Product.select(Product.id).where(
            Product.sku.is_in(["CRM-PRO", "SVC-ONBOARD"])).order_by(Product.sku).run()]
        assert await Bundle.count().run() > 0
        suggested = await bundles_for({pro})
        assert any(onboarding in b.product_ids for b in suggested), suggested


async def test_demo_deals_have_real_names_and_a_forecast_with_history(make_rapport):
    """The demo's board reads like a pipeline ("CRM rollout for ...", not "Deal 38") and
    the forecast's statistical figure and accuracy are not all zero."""
    from tests.conftest import connected

    instance = await make_rapport(["sales"])
    async with connected(instance):
        from core.customers.demo import seed_customers
        from core.identity.demo import seed_demo_users
        from core.permissions import Actor
        from plugins.sales.demo import seed
        from plugins.sales.forecast import build_forecast, period_of
        from plugins.sales.tables import Opportunity

        await seed_demo_users(instance)
        await seed_customers(300)
        await seed(instance, 300)
        names = [r["name"] for r in await Opportunity.select(Opportunity.name).run()]
        assert names and not any(n.startswith("Deal ") for n in names)
        assert all(" for " in n for n in names)
        admin = Actor(kind="staff", id=0, grants={"sales.opportunity.view": "all"})
        forecast = await build_forecast(instance, admin, period_of(
            "month", date.today()), "EUR")
        assert forecast.statistical and forecast.statistical > 0
        assert any(row["won"] > 0 for row in forecast.history)
        assert forecast.accuracy is not None and forecast.accuracy > 0
