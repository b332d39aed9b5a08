"""Sales' public surface as another plugin uses it: a configured line with its parts and
configuration, a loyalty voucher bounded by the total, buttons on deals and quotes, a portal
customer's quote request, and the catalogue and order read API."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal

import pytest

from tests.conftest import make_user, sign_in
from tests.plugins.sales import hooks_plugin
from tests.plugins.sales.conftest import new_customer, post_form
from tests.plugins.sales.test_quotes import as_portal_customer, catalogue


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture
def bikes(sales_client):
    module = hooks_plugin.make()
    sales_client.rapport.pm.register(module, name="loyalty_and_bikes")
    return module


async def test_a_configured_line_with_parts_and_a_voucher_appear_on_the_quote(sales_client,
                                                                            bikes):
    customer = await new_customer("Rider Ltd")
    response = await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "currency": "EUR",
        "lines": [{"source": "bikes", "source_ref": "cfg-1", "quantity": "2"}]})
    assert response.status_code == 201, response.text
    quote = response.json()
    from plugins.sales.tables import QuoteAdjustment, QuoteLine

    lines = await QuoteLine.select().where(QuoteLine.quote == quote["id"]).order_by(
        QuoteLine.position).run()
    assert [(li["description"], li["parent_position"], li["quantity"]) for li in lines] == [
        ("City bike, configured", None, Decimal("2")), ("Frame, 54 cm", 1, Decimal("2")),
        ("Dynamo lights", 1, Decimal("4"))]
    bike = lines[0]
    assert bike["source"] == "bikes" and bike["source_ref"] == "cfg-1"
    assert bike["sku"] == "BIKE-CFG"
    assert json.loads(bike["context"])["colour"] == "blue"
    # The source heard who and what the line is for.
    context = bikes.calls[-1]
    assert (context.customer_id, context.quantity, context.currency) == (
        customer, Decimal("2"), "EUR")
    assert context.user.id == sales_client.user_id
    # 2 x 900 + 4 x 25 = 1,900 net, 380 tax, 2,280 with tax; the voucher takes 50 off.
    [voucher] = await QuoteAdjustment.select().where(QuoteAdjustment.quote == quote["id"]).run()
    assert (voucher["label"], voucher["amount"]) == ("Loyalty voucher", Decimal("50.00"))
    assert Decimal(quote["total_amount"]) == Decimal("2230.00")
    assert Decimal(quote["adjustment_amount"]) == Decimal("50.00")
    again = (await sales_client.get(f"/api/v1/sales/quotes/{quote['id']}")).json()
    assert again["lines"][0]["context"]["frame_size"] == "54 cm"
    assert again["adjustments"][0]["label"] == "Loyalty voucher"
    assert Decimal(again["adjustments"][0]["amount"]) == Decimal("50")

    page = _text((await sales_client.get(f"/sales/quotes/{quote['id']}")).text)
    assert "Colour blue" in page and "Frame size 54 cm" in page
    assert "Configuration" not in page  # the plugin's own keys (_...) are not shown
    assert "Loyalty voucher 500 points redeemed −€50.00" in page
    assert "Total €2,230.00" in page
    assert "Redeem points" in page  # record_actions on the quote
    printable = _text((await sales_client.get(f"/sales/quotes/{quote['id']}/print")).text)
    assert "Loyalty voucher" in printable and "Colour blue" in printable


async def test_a_new_version_keeps_the_configuration_and_the_voucher(sales_client, bikes):
    customer = await new_customer("Rider Ltd")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"source": "bikes", "source_ref": "cfg-1"}]})).json()
    await post_form(sales_client, f"/sales/quotes/{quote['id']}/version", {})
    from plugins.sales.tables import Quote, QuoteAdjustment, QuoteLine

    latest = await Quote.select().where(Quote.number == quote["number"]).order_by(
        Quote.version, ascending=False).first().run()
    assert latest["version"] == 2
    assert await QuoteLine.count().where(QuoteLine.quote == latest["id"]).run() == 3
    assert await QuoteAdjustment.count().where(QuoteAdjustment.quote == latest["id"]).run() == 1


async def test_adjustments_never_take_a_quote_below_zero(sales_client):
    sales_client.rapport.pm.register(hooks_plugin.make(voucher="100000"), name="big_voucher")
    product = await catalogue()
    customer = await new_customer()
    response = await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"product": product, "quantity": "3"}]})
    quote = response.json()
    assert Decimal(quote["total_amount"]) == Decimal("0")
    assert Decimal(quote["adjustment_amount"]) == Decimal("59.97")
    page = _text((await sales_client.get(f"/sales/quotes/{quote['id']}")).text)
    assert "(limited to the quote's total; €100,000.00 offered) −€59.97" in page
    assert "Total €0.00" in page


def test_malformed_adjustments_are_skipped_and_the_rest_bounded_in_order():
    from plugins.sales.quotes import bound_adjustments

    kept = bound_adjustments([
        {"source": "a", "label": "", "amount": "5"},  # no name
        {"source": "a", "label": "Negative", "amount": "-5"},
        {"source": "a", "label": "Not a number", "amount": "lots"},
        {"source": "a", "label": "First", "amount": "7.005"},
        {"source": "b", "label": "Second", "amount": "10"},
        {"source": "c", "label": "Third", "amount": "1"},
    ], Decimal("12.00"), "EUR")
    assert [(a["label"], a["amount"]) for a in kept] == [
        ("First", Decimal("7.00")), ("Second", Decimal("5.00"))]


async def test_deal_pages_offer_other_plugins_buttons(sales_client, bikes):
    deal = (await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Fleet of bikes", "amount": "10000.00"})).json()
    page = await sales_client.get(f"/sales/opportunities/{deal['id']}")
    assert "Configure a bike" in page.text and f"/bikes/new?deal={deal['id']}" in page.text


async def test_a_portal_customer_asks_for_a_quote_and_it_reaches_staff_as_a_deal(
        sales_client, bikes, monkeypatch):
    rapport = sales_client.rapport
    events = []

    async def listen(event):
        events.append(event)

    rapport.event_listeners.append(listen)
    rep = await make_user("rep@example.test")
    customer = await new_customer("Rider Ltd", owner=rep)
    portal_user = await make_user("rider@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, customer)
    await sign_in(sales_client, "rider@example.test")
    unknown = await post_form(sales_client, "/portal/sales/quote-requests", {
        "source": "bikes", "source_ref": "nope", "back": "/portal/bikes"})
    assert unknown.status_code == 400 and "source ref: not found" in unknown.text
    offsite = await post_form(sales_client, "/portal/sales/quote-requests", {
        "source": "bikes", "source_ref": "cfg-1", "quantity": "1",
        "note": "Can it be delivered in May?", "back": "https://evil.example/"})
    assert offsite.status_code == 303
    thanks = await sales_client.get(offsite.headers["location"])
    assert "reached us" in thanks.text and "evil.example" not in thanks.text
    from plugins.sales.tables import Opportunity, Quote, QuoteLine

    [deal] = await Opportunity.select().where(Opportunity.customer == customer).run()
    assert deal["name"] == "Quote request: City bike, configured" and deal["owner"] == rep
    [quote] = await Quote.select().where(Quote.opportunity == deal["id"]).run()
    assert quote["status"] == "draft" and quote["owner"] == rep
    assert "delivered in May" in quote["notes"]
    assert await QuoteLine.count().where(QuoteLine.quote == quote["id"]).run() == 3
    # The draft is staff's to finish: the customer does not see it yet.
    assert (await sales_client.get(f"/portal/sales/quotes/{quote['id']}")).status_code == 404
    requested = [e for e in events if e.name == "sales.quote.requested"]
    assert len(requested) == 1
    payload = requested[0].payload
    assert payload["opportunity_id"] == deal["id"] and payload["customer_id"] == customer
    assert payload["lines"][0]["context"]["colour"] == "blue"
    assert [li["parent_position"] for li in payload["lines"]] == [None, 1, 1]
    assert rapport.event_types["sales.quote.requested"].durable


async def test_other_plugins_read_the_catalogue_and_orders_through_the_hook(sales_client):
    rapport = sales_client.rapport
    product = await catalogue()
    api = rapport.hook.sales_read_api(rapport=rapport)
    [found] = await api.products()
    assert (found["id"], found["sku"]) == (product, "W-1")
    assert (await api.product(sku="W-1"))["name"] == "Widget"
    assert await api.price(product_id=product, currency="EUR") == Decimal("19.99")
    assert await api.prices([product], "JPY") == {product: Decimal("2999")}
    assert await api.price(product_id=product, currency="USD") is None
    assert [b["name"] for b in await api.price_books()] == ["Standard"]
    assert await api.orders() == [] and await api.order(1) is None
    from plugins.sales.tables import OrderLine, SalesOrder

    customer = await new_customer()
    order = (await SalesOrder.insert(SalesOrder(
        number="O-1", customer=customer, currency="EUR",
        total_amount=Decimal("19.99"))).returning(SalesOrder.id).run())[0]["id"]
    await OrderLine.insert(OrderLine(sales_order=order, product=product, description="Widget",
                                     unit_price=Decimal("19.99"))).run()
    [listed] = await api.orders(customer_id=customer)
    assert listed["number"] == "O-1"
    one = await api.order(order)
    assert one["lines"][0]["description"] == "Widget"
    # A shop's idempotency key and request digest stay the orders API's own business.
    for row in (listed, one):
        assert "idempotency_key" not in row and "request_digest" not in row


async def test_the_configured_line_and_the_voucher_survive_acceptance_into_the_order(
        sales_client, bikes, monkeypatch):
    rapport = sales_client.rapport
    events = []

    async def listen(event):
        events.append(event)

    rapport.event_listeners.append(listen)
    customer = await new_customer("Rider Ltd")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"source": "bikes", "source_ref": "cfg-1"}]})).json()
    assert (await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")).status_code \
        == 200
    portal_user = await make_user("rider@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, customer)
    await sign_in(sales_client, "rider@example.test")
    page = _text((await sales_client.get(f"/portal/sales/quotes/{quote['id']}")).text)
    assert "Colour blue" in page and "Loyalty voucher 500 points redeemed −€50.00" in page
    accepted = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/decision",
                               {"decision": "accept"})
    assert accepted.status_code == 303, accepted.text
    from plugins.sales.tables import OrderLine

    lines = await OrderLine.select().order_by(OrderLine.position).run()
    bike = next(li for li in lines if li["source"] == "bikes" and li["parent_position"] is None)
    assert json.loads(bike["context"])["colour"] == "blue" and bike["source_ref"] == "cfg-1"
    created = [e for e in events if e.name == "sales.order.created"]
    assert created, [e.name for e in events]
    line = next(li for li in created[0].payload["lines"] if li["source"] == "bikes"
                and li.get("parent_position") is None)
    assert line["context"]["frame_size"] == "54 cm"
    quote_accepted = [e for e in events if e.name == "sales.quote.accepted"]
    assert quote_accepted and quote_accepted[0].payload["adjustments"][0]["label"] == \
        "Loyalty voucher"
