"""Demo data: a catalogue, scoring rules, leads, a pipeline of deals, a year of orders (so
bundles and cross-sell suggestions exist from the start) with up to two years of purchase
history before it, and this quarter's targets."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.customers.tables import Customer
from core.identity.tables import User
from plugins.sales.bundles import refresh, thresholds_of
from plugins.sales.pipeline import default_pipeline, stages_of
from plugins.sales.tables import (
    Lead,
    Opportunity,
    OrderLine,
    OrderReturn,
    PriceBook,
    Product,
    ProductCategory,
    ProductPrice,
    Refund,
    RelatedProduct,
    ReturnLine,
    SalesOrder,
    SalesTarget,
    ScoringRule,
    Shipment,
    ShipmentLine,
    StageChange,
)

PRODUCTS = [
    ("CRM-START", "Starter licence", "Software", "For teams up to 5.", "Users: 5\nSupport: e-mail",
     "290.00"),
    ("CRM-PRO", "Professional licence", "Software", "For growing teams.",
     "Users: 25\nSupport: phone", "990.00"),
    ("CRM-ENT", "Enterprise licence", "Software", "Unlimited users, SSO.",
     "Users: unlimited\nSupport: 24/7", "4900.00"),
    ("SVC-ONBOARD", "Onboarding package", "Services", "Two days of on-site setup.",
     "Duration: 2 days", "1800.00"),
    ("SVC-TRAIN", "Training day", "Services", "One day of user training.", "Seats: 12",
     "850.00"),
    ("HW-SCAN", "Card scanner", "Hardware", "Scans business cards into leads.",
     "Connection: USB-C", "149.00"),
]

# What demo customers bought together (SKUs), most common first: enough repeats for the
# bundle miner's default thresholds to find "licence + onboarding (+ training)".
# What demo deals are about, so the board reads like a real pipeline ("Deal 38" did not).
DEAL_NEEDS = ["CRM rollout", "Licence renewal", "Upgrade to Enterprise", "Onboarding",
              "Team training", "Card scanners", "Second site", "Support extension"]

BASKETS = [
    ("CRM-PRO", "SVC-ONBOARD"), ("CRM-PRO", "SVC-ONBOARD", "SVC-TRAIN"),
    ("CRM-ENT", "SVC-ONBOARD", "SVC-TRAIN"), ("CRM-START", "HW-SCAN"), ("CRM-PRO",),
    ("SVC-TRAIN",), ("CRM-START",), ("CRM-ENT", "SVC-ONBOARD"),
]


async def seed(rapport, customers: int) -> None:
    if await Product.exists().where(Product.sku == "CRM-START").run():
        return  # already seeded: demo data is idempotent
    rng = random.Random(5)
    pipeline = await default_pipeline()
    stages = await stages_of(pipeline["id"])
    book = (await PriceBook.insert(PriceBook(name="Standard", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    categories: dict[str, int] = {}
    product_ids: list[int] = []
    for sku, name, category, description, specs, price in PRODUCTS:
        if category not in categories:
            categories[category] = (await ProductCategory.insert(
                ProductCategory(name=category)).returning(ProductCategory.id).run())[0]["id"]
        pid = (await Product.insert(Product(
            sku=sku, name=name, category=categories[category], description=description,
            specifications=specs)).returning(Product.id).run())[0]["id"]
        product_ids.append(pid)
        await ProductPrice.insert(
            ProductPrice(price_book=book, product=pid, currency="EUR", unit_price=Decimal(price)),
            ProductPrice(price_book=book, product=pid, currency="USD",
                         unit_price=(Decimal(price) * Decimal("1.1")).quantize(Decimal("0.01"))),
        ).run()
    await RelatedProduct.insert(
        RelatedProduct(product=product_ids[0], related=product_ids[1], kind="alternative"),
        RelatedProduct(product=product_ids[1], related=product_ids[2], kind="alternative"),
        RelatedProduct(product=product_ids[1], related=product_ids[3], kind="related"),
    ).run()
    await ScoringRule.insert(
        ScoringRule(field="job_title", condition="contains", value="director", points=20),
        ScoringRule(field="industry", condition="one_of", value="software,retail", points=15),
        ScoringRule(field="phone", condition="not_empty", value="", points=5),
        ScoringRule(field="email", condition="ends_with", value="@gmail.com", points=-10),
    ).run()
    users = [u["id"] for u in await User.select(User.id).limit(20).run()]
    for i in range(min(40, max(5, customers // 10))):
        await Lead.insert(Lead(
            first_name=rng.choice(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken"]),
            last_name=rng.choice(["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov"]),
            company=f"Prospect {i + 1} Ltd", email=f"lead{i + 1}@example.com",
            source=rng.choice(["web form", "trade fair", "referral"]),
            region=rng.choice(["North", "South", "West"]), score=rng.choice([0, 5, 20, 35]),
            owner=rng.choice(users) if users else None)).run()
    accounts = await Customer.select(Customer.id, Customer.name, Customer.owner, Customer.team).where(
        Customer.kind == "account").limit(min(200, max(10, customers // 5))).run()
    open_stages = [s for s in stages if s["outcome"] == "open"]
    now = datetime.now(UTC)
    for n, account in enumerate(accounts):
        stage = rng.choice(stages if n % 4 == 0 else open_stages)
        last = now - timedelta(days=rng.randint(0, 40))
        row = (await Opportunity.insert(Opportunity(
            name=f"{rng.choice(DEAL_NEEDS)} for {account['name']}"[:300],
            customer=account["id"], pipeline=pipeline["id"],
            stage=stage["id"], status=stage["outcome"],
            amount_amount=Decimal(rng.randint(5, 200) * 100), amount_currency="EUR",
            expected_close=date.today() + timedelta(days=rng.randint(-30, 120)),
            owner=account["owner"], team=account["team"], last_activity_at=last,
            closed_at=last if stage["outcome"] != "open" else None,
            close_reason="Price" if stage["outcome"] == "lost" else "",
        )).returning(Opportunity.id).run())[0]
        await StageChange.insert(StageChange(opportunity=row["id"], to_stage=stage["id"],
                                             changed_at=last)).run()
    await _closed_history(rng, accounts, pipeline["id"], stages, now)
    skus = dict(zip([p[0] for p in PRODUCTS], product_ids, strict=True))
    lapsed = await _purchase_history(rng, accounts, skus, now)
    # Customers who stopped buying have no orders in the last year.
    await _orders(rng, [a for a in accounts if a["id"] not in lapsed], skus, now)
    await _order_roles()
    await _targets(now)
    from plugins.sales.demo_quotes import seed as seed_quotes

    await seed_quotes(rapport)
    await refresh(thresholds_of(rapport))


async def _closed_history(rng: random.Random, accounts: list[dict], pipeline: int,
                          stages: list[dict], now: datetime) -> None:
    """Deals won and lost in each of the past nine months, so the statistical forecast has
    history to average and its accuracy table has periods to measure (all zero before)."""
    if not accounts:
        return
    won = next(s for s in stages if s["outcome"] == "won")
    lost = next(s for s in stages if s["outcome"] == "lost")
    for month in range(1, 10):
        for stage in [won] * rng.randint(3, 5) + [lost] * rng.randint(1, 2):
            account = rng.choice(accounts)
            closed = now - timedelta(days=30 * month - rng.randint(0, 27))
            row = (await Opportunity.insert(Opportunity(
                name=f"{rng.choice(DEAL_NEEDS)} for {account['name']}"[:300],
                customer=account["id"], pipeline=pipeline, stage=stage["id"],
                status=stage["outcome"],
                amount_amount=Decimal(rng.randint(30, 90) * 100), amount_currency="EUR",
                expected_close=closed.date(), owner=account["owner"], team=account["team"],
                last_activity_at=closed, closed_at=closed,
                close_reason="Price" if stage is lost else "Best fit for their team",
                created_at=closed - timedelta(days=rng.randint(20, 90)),
            )).returning(Opportunity.id).run())[0]
            await StageChange.insert(StageChange(opportunity=row["id"], to_stage=stage["id"],
                                                 changed_at=closed)).run()


async def _orders(rng: random.Random, accounts: list[dict], skus: dict[str, int],
                  now: datetime) -> None:
    """One to three orders in the past year for most accounts, from ``BASKETS``, at every
    stage of their lifecycle: old ones completed (a few returned and refunded), recent ones
    shipped in part, confirmed or still open."""
    prices = {p[0]: Decimal(p[-1]) for p in PRODUCTS}
    names = {p[0]: p[1] for p in PRODUCTS}
    weights = [8, 5, 3, 4, 3, 2, 2, 2]
    number = 0
    async with SalesOrder._meta.db.transaction():  # one transaction: seconds, not minutes
        for account in accounts:
            for _ in range(rng.choice([0, 1, 1, 2, 3])):
                number += 1
                basket = rng.choices(BASKETS, weights)[0]
                quantities = {sku: Decimal(rng.choice([1, 1, 2, 5])) for sku in basket}
                net = {sku: prices[sku] * quantities[sku] for sku in basket}
                tax = {sku: (net[sku] * Decimal("0.19")).quantize(Decimal("0.01"))
                       for sku in basket}
                # Most orders are old; every twelfth is at each recent stage.
                age = {0: rng.randint(0, 2), 1: rng.randint(3, 7), 2: rng.randint(8, 30)}.get(
                    number % 12, rng.randint(31, 365))
                placed = now - timedelta(days=age, hours=rng.randint(0, 8))
                status = ("completed" if age > 30 else "fulfilled" if age > 7 else
                          "partly_fulfilled" if age > 2 else rng.choice(["confirmed", "open"]))
                order = (await SalesOrder.insert(SalesOrder(
                    number=f"O-DEMO-{number:05d}", customer=account["id"],
                    owner=account["owner"], team=account["team"], currency="EUR",
                    status=status, channel=rng.choice(["quote", "phone", "web shop"]),
                    net_amount=sum(net.values()), tax_amount=sum(tax.values()),
                    total_amount=sum(net.values()) + sum(tax.values()), ordered_at=placed,
                    updated_at=placed,
                    confirmed_at=placed + timedelta(hours=2) if status != "open" else None,
                    completed_at=placed + timedelta(days=14) if status == "completed"
                    else None)).returning(SalesOrder.id).run())[0]["id"]
                shipped_all = status in ("completed", "fulfilled")
                lines = await OrderLine.insert(*[
                    OrderLine(sales_order=order, position=i, product=skus[sku], sku=sku,
                              description=names[sku], quantity=quantities[sku],
                              unit_price=prices[sku], tax_percent=Decimal(19),
                              net_amount=net[sku], tax_amount=tax[sku],
                              shipped=quantities[sku] if shipped_all or (
                                  status == "partly_fulfilled" and i == 1) else Decimal(0))
                    for i, sku in enumerate(basket, start=1)]).returning(
                    OrderLine.id, OrderLine.shipped, OrderLine.quantity).run()
                if status in ("open", "confirmed"):
                    continue
                shipment = (await Shipment.insert(Shipment(
                    sales_order=order, number=f"S-DEMO-{number:05d}", carrier="DHL",
                    tracking=f"JD{rng.randint(10**9, 10**10 - 1)}",
                    shipped_at=placed + timedelta(days=1))).returning(Shipment.id).run())[0]
                await ShipmentLine.insert(*[
                    ShipmentLine(shipment=shipment["id"], order_line=line["id"],
                                 quantity=line["shipped"])
                    for line in lines if Decimal(str(line["shipped"])) > 0]).run()
                if status == "completed" and number % 9 == 0:
                    await _demo_return(order, number, basket[0], lines[0]["id"], prices,
                                       placed)


async def _purchase_history(rng: random.Random, accounts: list[dict], skus: dict[str, int],
                            now: datetime) -> set[int]:
    """Up to two years of earlier, completed orders with the rhythms real customers have:
    each account buys at its own pace (every few weeks to every few months) and may stop
    for good after any order, so repeat buyers, lapsed regulars and one-time buyers all
    appear (what customer analytics measures). Returns the accounts that stopped."""
    lapsed: set[int] = set()
    prices = {p[0]: Decimal(p[-1]) for p in PRODUCTS}
    names = {p[0]: p[1] for p in PRODUCTS}
    number = 0
    async with SalesOrder._meta.db.transaction():
        for account in accounts:
            if rng.random() < 0.25:
                continue
            interval = rng.choice([14, 30, 30, 45, 60, 90, 120])
            dropout = rng.choice([0.02, 0.05, 0.1, 0.2, 0.35, 0.5])
            day = rng.randint(60, 730)  # days ago of the first order
            for _ in range(30):
                if day < 31:
                    break
                number += 1
                sku = rng.choice(list(prices))
                quantity = Decimal(rng.choice([1, 1, 2, 3]))
                net = prices[sku] * quantity
                tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
                placed = now - timedelta(days=day, hours=rng.randint(0, 8))
                order = (await SalesOrder.insert(SalesOrder(
                    number=f"O-HIST-{number:05d}", customer=account["id"],
                    owner=account["owner"], team=account["team"], currency="EUR",
                    status="completed", channel=rng.choice(["phone", "web shop", "quote"]),
                    net_amount=net, tax_amount=tax, total_amount=net + tax, ordered_at=placed,
                    updated_at=placed, confirmed_at=placed + timedelta(hours=2),
                    completed_at=placed + timedelta(days=14))).returning(
                    SalesOrder.id).run())[0]["id"]
                line = (await OrderLine.insert(OrderLine(
                    sales_order=order, position=1, product=skus[sku], sku=sku,
                    description=names[sku], quantity=quantity, unit_price=prices[sku],
                    tax_percent=Decimal(19), net_amount=net, tax_amount=tax,
                    shipped=quantity)).returning(OrderLine.id).run())[0]["id"]
                shipment = (await Shipment.insert(Shipment(
                    sales_order=order, number=f"S-HIST-{number:05d}", carrier="DHL",
                    tracking=f"JD{rng.randint(10**9, 10**10 - 1)}",
                    shipped_at=placed + timedelta(days=1))).returning(Shipment.id).run())[0]
                await ShipmentLine.insert(ShipmentLine(shipment=shipment["id"], order_line=line,
                                                       quantity=quantity)).run()
                if rng.random() < dropout:
                    if day > 365:
                        lapsed.add(account["id"])
                    break
                day -= max(1, int(rng.expovariate(1 / interval)))
    return lapsed


async def _demo_return(order: int, number: int, sku: str, line_id: int,
                       prices: dict[str, Decimal], placed: datetime) -> None:
    """One unit of the first line came back and was refunded."""
    net = prices[sku]
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
    item = (await OrderReturn.insert(OrderReturn(
        sales_order=order, number=f"R-DEMO-{number:05d}", status="refunded",
        reason="Ordered one too many", requested_via="portal", currency="EUR",
        total_amount=net + tax, refunded_amount=net + tax,
        created_at=placed + timedelta(days=10))).returning(OrderReturn.id).run())[0]["id"]
    await ReturnLine.insert(ReturnLine(sales_return=item, order_line=line_id,
                                       quantity=Decimal(1), net_amount=net,
                                       tax_amount=tax)).run()
    await OrderLine.update({OrderLine.returned: Decimal(1)}).where(
        OrderLine.id == line_id).run()
    await Refund.insert(Refund(sales_return=item, sales_order=order, amount=net + tax,
                               currency="EUR", method="bank transfer",
                               reference=f"TX-{number:05d}",
                               refunded_at=placed + timedelta(days=12))).run()


async def _order_roles() -> None:
    """Demo managers ship and refund their teams' orders (no built-in pattern grants the
    verbs fulfil and refund: a self-hoster decides who does)."""
    from core.identity.tables import Role, RolePermission

    role = await Role.select(Role.id).where(Role.key == "manager").first().run()
    if role is None:
        return
    for permission in ("sales.order.fulfil", "sales.order.refund"):
        if not await RolePermission.exists().where(
                (RolePermission.role == role["id"])
                & (RolePermission.permission == permission)).run():
            await RolePermission.insert(RolePermission(role=role["id"], permission=permission,
                                                       scope="team")).run()


async def _targets(now: datetime) -> None:
    """A quarter target for every active sales user, so the forecast shows progress."""
    quarter = date(now.year, 3 * ((now.month - 1) // 3) + 1, 1)
    users = await User.select(User.id).where(User.is_active == True).run()  # noqa: E712
    if users:
        await SalesTarget.insert(*[
            SalesTarget(period_kind="quarter", period_start=quarter, owner=u["id"],
                        currency="EUR", amount=Decimal(50_000)) for u in users]).run()
