"""A return recorded in the sales plugin opens a product_return case in the service plugin,
through sales' API and its durable event only (service never imports sales): once per event,
however often the event is delivered. Both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import jobs
from core.plugin import Event
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.conftest import new_customer


@pytest.fixture
async def shop(make_rapport):
    instance = await make_rapport(["sales", "service"], {}, debug=True)
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


async def _shipped_order(shop) -> dict:
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    book = (await PriceBook.insert(PriceBook(name="Standard", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    product = (await Product.insert(Product(sku="TH-2", name="Thermostat")).returning(
        Product.id).run())[0]["id"]
    await ProductPrice.insert(ProductPrice(price_book=book, product=product, currency="EUR",
                                           unit_price=Decimal("80.00"))).run()
    customer = await new_customer("Grace Hopper")
    order = (await shop.post("/api/v1/sales/orders", json={
        "customer": customer, "lines": [{"product": product, "quantity": "2",
                                         "tax_percent": "19"}]})).json()
    await shop.post(f"/api/v1/sales/orders/{order['id']}/confirm")
    line = order["lines"][0]["id"]
    shipped = await shop.post(f"/api/v1/sales/orders/{order['id']}/shipments",
                              json={"lines": [{"line_id": line, "quantity": "2"}]})
    assert shipped.status_code in (200, 201), shipped.text
    return {**order, "customer_id": customer, "line_id": line}


async def test_a_sales_return_opens_one_product_return_case(shop):
    import json

    from core.jobs_tables import OutboxEvent
    from plugins.service import returns
    from plugins.service.tables import Case, CaseMessage

    rapport = shop.rapport
    order = await _shipped_order(shop)
    await jobs.run_pending(rapport)
    assert await Case.count().run() == 0  # orders and shipments open no case
    back = await shop.post(f"/api/v1/sales/orders/{order['id']}/returns", json={
        "lines": [{"line_id": order["line_id"], "quantity": "1"}], "reason": "Stopped working"})
    assert back.status_code in (200, 201), back.text
    await jobs.run_pending(rapport)
    await jobs.run_pending(rapport)
    [case] = await Case.select().run()
    assert case["case_type"] == "product_return"
    assert case["customer"] == order["customer_id"]
    assert case["subject"].endswith(f"of order {order['number']}")
    assert case["product"] == order["lines"][0]["description"]
    [opening] = await CaseMessage.select().where(CaseMessage.case == case["id"]).run()
    assert "Reason: Stopped working" in opening["body"]
    assert "1 × " in opening["body"]

    # The same event delivered again (a worker died after opening the case): no second case.
    row = await OutboxEvent.select().where(OutboxEvent.name == "sales.order.returned").first(
    ).run()
    again = Event(name=row["name"], payload=json.loads(row["payload"]), actor_id=None,
                  id=row["id"])
    assert (await returns.open_return_case(rapport, again))["id"] == case["id"]
    assert await Case.count().run() == 1
