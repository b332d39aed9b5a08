"""Quotes and orders: exact money, versions, the printable view, the portal decision, the
order event, and quote lines from another plugin through the sales hook."""

from __future__ import annotations

import types
from decimal import Decimal

import pytest

from core.permissions import Actor
from core.plugin import hookimpl
from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import new_customer, post_form


async def catalogue(currency_prices=(("EUR", "19.99"), ("JPY", "2999"))) -> int:
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    book = (await PriceBook.insert(PriceBook(name="Standard", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    product = (await Product.insert(Product(sku="W-1", name="Widget",
                                            description="A very good widget")).returning(
        Product.id).run())[0]["id"]
    for currency, price in currency_prices:
        await ProductPrice.insert(ProductPrice(price_book=book, product=product,
                                               currency=currency,
                                               unit_price=Decimal(price))).run()
    return product


def test_line_totals_are_rounded_per_currency_and_add_up():
    from plugins.sales.quotes import price_line, totals

    lines = [price_line(Decimal(3), Decimal("19.99"), Decimal("10"), Decimal("20"), "EUR"),
             price_line(Decimal("0.5"), Decimal("0.05"), Decimal(0), Decimal("7.7"), "EUR")]
    assert [line.net for line in lines] == [Decimal("53.97"), Decimal("0.02")]
    assert [line.tax for line in lines] == [Decimal("10.79"), Decimal("0.00")]
    result = totals(lines, "EUR")
    assert str(result.subtotal) == "59.99 EUR" and str(result.discount) == "6.00 EUR"
    assert str(result.total) == "64.78 EUR"
    yen = price_line(Decimal(3), Decimal("2999"), Decimal("5"), Decimal("10"), "JPY")
    assert (yen.net, yen.tax) == (Decimal("8547"), Decimal("855"))


async def test_quote_is_built_from_products_with_discounts_and_taxes(sales_client):
    product = await catalogue()
    customer = await new_customer()
    response = await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "currency": "EUR",
        "lines": [{"product": product, "quantity": "3", "discount_percent": "10",
                   "tax_percent": "20"}]})
    assert response.status_code == 201, response.text
    quote = response.json()
    assert quote["number"].startswith("Q-") and Decimal(quote["total_amount"]) == Decimal(
        "64.76")
    page = await sales_client.get(f"/sales/quotes/{quote['id']}/print")
    assert "€64.76" in page.text and "quote-print.css" in page.text
    bad = await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "currency": "USD", "lines": [{"product": product}]})
    assert bad.status_code == 422 and bad.json()["field"] == "lines[1].unit_price"


async def test_quote_form_creates_a_quote_and_shows_line_errors_inline(sales_client):
    product = await catalogue()
    customer = await new_customer()
    refused = await post_form(sales_client, "/sales/quotes", {
        "customer": str(customer), "currency": "EUR", "line1_product": str(product),
        "line1_quantity": "-1"})
    assert refused.status_code == 400 and "quantity: must be at least" in refused.text
    created = await post_form(sales_client, "/sales/quotes", {
        "customer": str(customer), "currency": "EUR", "line1_product": str(product),
        "line1_quantity": "2", "line1_discount": "0", "line1_tax": "0"})
    assert created.status_code == 303
    page = await sales_client.get(created.headers["location"])
    assert "€39.98" in page.text and "Send to the customer portal" in page.text


async def test_new_version_keeps_the_sent_version_unchanged(sales_client):
    product = await catalogue()
    customer = await new_customer()
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"product": product}]})).json()
    await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")
    response = await post_form(sales_client, f"/sales/quotes/{quote['id']}/version", {})
    assert response.status_code == 303
    from plugins.sales.tables import Quote, QuoteLine

    versions = await Quote.select().where(Quote.number == quote["number"]).order_by(
        Quote.version).run()
    assert [(v["version"], v["status"], v["superseded"]) for v in versions] == [
        (1, "sent", True), (2, "draft", False)]
    assert await QuoteLine.count().where(QuoteLine.quote == versions[1]["id"]).run() == 1


def as_portal_customer(monkeypatch, client, staff_user_id: int, customer_id: int) -> None:
    """Make the client act as a portal customer of ``customer_id``. The portal's own sign-in
    belongs to another area; the sales pages rely only on ``Actor(kind="portal", ...)``."""
    actor = Actor(kind="portal", id=staff_user_id, name="Customer", customer_id=customer_id,
                  grants={"sales.portal.view": "customer"})
    try:
        import core.portal.middleware as portal_middleware
    except ImportError:  # no portal middleware: the staff session stands in for the portal one
        import core.identity.middleware as middleware

        real = middleware.load_actor

        async def load(rapport, user_id):
            return actor if user_id == staff_user_id else await real(rapport, user_id)

        monkeypatch.setattr(middleware, "load_actor", load)
        return

    async def session_actor(rapport, key):
        return actor if key == "test-portal-session" else None

    monkeypatch.setattr(portal_middleware, "session_actor", session_actor)
    client.cookies.set(portal_middleware.COOKIE if hasattr(portal_middleware, "COOKIE")
                       else "rapport_portal", "test-portal-session", path="/portal")


async def test_customer_accepts_a_quote_in_the_portal_and_it_becomes_an_order(
        sales_client, monkeypatch):
    rapport = sales_client.rapport
    events = []

    async def listen(event):
        events.append(event)

    rapport.event_listeners.append(listen)
    product = await catalogue()
    mine = await new_customer("Mine Ltd")
    other = await new_customer("Other Ltd")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": mine, "lines": [{"product": product, "quantity": "2"}]})).json()
    draft = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": mine, "lines": [{"product": product}]})).json()
    foreign = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": other, "lines": [{"product": product}]})).json()
    for q in (quote, foreign):
        sent = await sales_client.post(f"/api/v1/sales/quotes/{q['id']}/send")
        assert sent.status_code == 200
    portal_user = await make_user("customer@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, mine)
    await sign_in(sales_client, "customer@example.test")
    listing = await sales_client.get("/portal/sales/quotes")
    assert listing.status_code == 200, listing.text
    assert quote["number"] in listing.text
    assert foreign["number"] not in listing.text and draft["number"] not in listing.text
    card = await sales_client.get("/portal/sales/quotes/card")
    assert quote["number"] in card.text
    assert (await sales_client.get(f"/portal/sales/quotes/{foreign['id']}")).status_code == 404
    assert (await sales_client.get(f"/portal/sales/quotes/{draft['id']}")).status_code == 404
    refused = await post_form(sales_client, f"/portal/sales/quotes/{foreign['id']}/decision",
                              {"decision": "accept"})
    assert refused.status_code == 404
    # Staff pages stay closed to a portal customer.
    assert (await sales_client.get("/sales/quotes")).status_code in (401, 403)
    accepted = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/decision",
                               {"decision": "accept"})
    assert accepted.status_code == 303
    again = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/decision",
                            {"decision": "accept"})
    assert again.status_code == 409
    from plugins.sales.tables import OrderLine, SalesOrder

    orders = await SalesOrder.select().run()
    assert len(orders) == 1 and orders[0]["customer"] == mine
    assert Decimal(str(orders[0]["total_amount"])) == Decimal("39.98")
    assert await OrderLine.count().run() == 1
    created = [e for e in events if e.name == "sales.order.created"]
    assert len(created) == 1 and created[0].payload["product_ids"] == [product]
    history = await sales_client.get("/portal/sales/orders")
    assert orders[0]["number"] in history.text


async def test_customer_declines_a_quote_with_a_reason(sales_client, monkeypatch):
    product = await catalogue()
    mine = await new_customer("Mine Ltd")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": mine, "lines": [{"product": product}]})).json()
    await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")
    portal_user = await make_user("customer@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, mine)
    await sign_in(sales_client, "customer@example.test")
    response = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/decision",
                               {"decision": "decline", "reason": "Too expensive"})
    assert response.status_code == 303
    from plugins.sales.tables import Quote, SalesOrder

    stored = await Quote.select().where(Quote.id == quote["id"]).first().run()
    assert stored["status"] == "declined" and stored["decline_reason"] == "Too expensive"
    assert await SalesOrder.count().run() == 0


@pytest.fixture
def configurator_plugin():
    """Another plugin offering quote lines through the sales hook."""
    from plugins.sales.quotes import LineSource

    async def resolve(rapport, ref, currency):
        if ref != "cfg-7":
            raise LookupError(ref)
        return {"description": "Configured bike (blue, 54 cm)", "unit_price": "1499.00"}

    module = types.ModuleType("fake_configurator")

    @hookimpl(optionalhook=True)
    def sales_quote_line_sources(rapport):
        return [LineSource("configurator", "Configurations", resolve)]

    module.sales_quote_line_sources = sales_quote_line_sources
    return module


async def test_quote_lines_can_come_from_another_plugin_through_the_hook(
        sales_client, configurator_plugin):
    rapport = sales_client.rapport
    rapport.pm.register(configurator_plugin, name="configurator")
    customer = await new_customer()
    response = await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "currency": "EUR",
        "lines": [{"source": "configurator", "source_ref": "cfg-7", "quantity": "2"}]})
    assert response.status_code == 201, response.text
    line = response.json()["lines"][0]
    assert line["description"] == "Configured bike (blue, 54 cm)"
    assert Decimal(line["net_amount"]) == Decimal("2998.00")
    unknown = await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"source": "configurator", "source_ref": "nope"}]})
    assert unknown.json()["field"] == "lines[1].source_ref"
    form = await sales_client.get(f"/sales/quotes/new?customer={customer}")
    assert "Configurations" in form.text


async def test_quotes_and_orders_panels_on_the_360_view_respect_scopes(sales_client):
    product = await catalogue()
    customer = await new_customer()
    await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"product": product}]})
    await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Panel deal", "customer": customer, "amount": "10.00"})
    rapport = sales_client.rapport
    from core.identity.users import load_actor

    admin = await load_actor(rapport, sales_client.user_id)
    panels = rapport.collect("customer_panels", rapport=rapport, customer={"id": customer},
                             user=admin)
    urls = {p.id: p.url for p in panels if p.id.startswith("sales-")}
    assert set(urls) == {"sales-opportunities", "sales-quotes", "sales-orders",
                         "sales-suggestions"}
    deals = await sales_client.get(urls["sales-opportunities"])
    assert "Panel deal" in deals.text
    quotes = await sales_client.get(urls["sales-quotes"])
    assert "Q-" in quotes.text
    await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(sales_client, "rep@example.test")
    hidden = await sales_client.get(urls["sales-quotes"])
    assert hidden.status_code == 404  # the customer is not theirs


async def test_portal_customer_browses_the_catalogue_and_compares_products(
        sales_client, monkeypatch):
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    book = (await PriceBook.insert(PriceBook(name="Std", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    ids = []
    for sku, name, specs, price in (("B1", "City bike", "Gears: 3\nWeight: 15 kg", "500"),
                                    ("B2", "Road bike", "Gears: 22", "1500")):
        pid = (await Product.insert(Product(sku=sku, name=name, specifications=specs)).returning(
            Product.id).run())[0]["id"]
        await ProductPrice.insert(ProductPrice(price_book=book, product=pid, currency="EUR",
                                               unit_price=Decimal(price))).run()
        ids.append(pid)
    await Product.insert(Product(sku="OLD", name="Retired bike", active=False)).run()
    customer = await new_customer("Rider Ltd")
    portal_user = await make_user("rider@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, customer)
    await sign_in(sales_client, "rider@example.test")
    listing = await sales_client.get("/portal/sales/products")
    assert "City bike" in listing.text and "Retired bike" not in listing.text
    compare = await sales_client.get(
        f"/portal/sales/products/compare?ids={ids[0]}&ids={ids[1]}")
    assert compare.status_code == 200, compare.text
    assert "1,500.00 EUR" in compare.text and "15 kg" in compare.text
    assert "<th scope=\"row\">Weight</th>" in compare.text
