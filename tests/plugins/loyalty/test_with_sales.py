"""Loyalty beside the sales plugin, through sales' own API and durable events (loyalty never
imports sales): an order earns (once, with its reason), Gold is reached and its multiplier
applies to the next order, a redeemed voucher is taken off a quote and used when the quote is
accepted, a return takes the points back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core import jobs
from plugins.loyalty import ledger, rewards, tiers
from plugins.loyalty.tables import Ledger, Voucher
from tests.conftest import app_client, csrf_headers, make_user, sign_in
from tests.plugins.loyalty.conftest import balance, enrolled, new_program


@pytest.fixture
async def shop(make_rapport):
    # No background worker: the test delivers events itself (jobs.run_pending), in order.
    instance = await make_rapport(["sales", "loyalty"], {}, debug=True,
                                  extra={"worker": "off"})
    async with app_client(instance) as client:
        client.user_id = await make_user("boss@example.test")
        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


async def widget() -> int:
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    book = (await PriceBook.insert(PriceBook(name="Standard", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    product = (await Product.insert(Product(sku="W-1", name="Widget")).returning(
        Product.id).run())[0]["id"]
    await ProductPrice.insert(ProductPrice(price_book=book, product=product, currency="EUR",
                                           unit_price=Decimal("20.00"))).run()
    return product


async def test_orders_earn_gold_multiplies_a_voucher_pays_and_a_return_takes_back(shop):
    rapport = shop.rapport
    program = await new_program()
    await tiers.save_tier(None, program["id"], {"name": "Gold", "threshold": 30,
                                                "multiplier": "1.5"})
    member = await enrolled(rapport, program, name="Grace Hopper")
    product = await widget()
    first = (await shop.post("/api/v1/sales/orders", json={
        "customer": member["customer"], "lines": [{"product": product, "quantity": "2",
                                                   "tax_percent": "19"}]})).json()
    await jobs.run_pending(rapport)
    await jobs.run_pending(rapport)  # nothing more: earned once
    assert await balance(member["id"]) == (40, 0)
    [row] = await Ledger.select().where(Ledger.member == member["id"]).run()
    assert row["explanation"] == f"40 points: 1 per euro on {first['number']}"

    await tiers.evaluate_all(rapport)
    second = (await shop.post("/api/v1/sales/orders", json={
        "customer": member["customer"], "lines": [{"product": product, "quantity": "1",
                                                   "tax_percent": "19"}]})).json()
    await jobs.run_pending(rapport)
    latest = await Ledger.select().where(Ledger.member == member["id"]).order_by(
        Ledger.id, ascending=False).first().run()
    assert latest["explanation"] == (f"30 points: 1 per euro on {second['number']}, "
                                     f"×1.5 Gold multiplier")

    reward = await rewards.save_reward(None, program["id"], {"name": "€10 off", "cost": 50,
                                                             "value": "10.00"})
    voucher = await rewards.redeem(rapport, None, member["id"], reward["id"])
    quote = (await shop.post("/api/v1/sales/quotes", json={
        "customer": member["customer"], "currency": "EUR",
        "lines": [{"product": product, "quantity": "1", "tax_percent": "19"}]})).json()
    assert Decimal(quote["adjustment_amount"]) == Decimal("10.00")
    await shop.post(f"/api/v1/sales/quotes/{quote['id']}/send")
    token = (await csrf_headers(shop))["x-csrftoken"]
    accepted = await shop.post(f"/sales/quotes/{quote['id']}/accept", data={
        "by": "Grace Hopper", "via": "phone", "_csrf_token": token})
    assert accepted.status_code == 303, accepted.text
    await jobs.run_pending(rapport)
    used = await Voucher.select().where(Voucher.id == voucher["id"]).first().run()
    assert used["status"] == "used" and used["used_ref"] and used["used_by"] == "sales order"
    # The accepted order earned on what was paid after the voucher: 23.80 - 10 of 23.80.
    earned = await Ledger.select().where((Ledger.member == member["id"])
                                         & (Ledger.source_ref != "")).order_by(
        Ledger.id, ascending=False).first().run()
    assert "on the total after vouchers" in earned["explanation"]

    # The first order ships and one widget comes back: 20 points go.
    before = (await balance(member["id"]))[0]
    oid = first["id"]
    await shop.post(f"/api/v1/sales/orders/{oid}/confirm")
    line = first["lines"][0]["id"]
    await shop.post(f"/api/v1/sales/orders/{oid}/shipments",
                    json={"lines": [{"line_id": line, "quantity": "2"}]})
    back = await shop.post(f"/api/v1/sales/orders/{oid}/returns", json={
        "lines": [{"line_id": line, "quantity": "1"}], "reason": "Too small"})
    assert back.status_code in (200, 201), back.text
    await jobs.run_pending(rapport)
    await jobs.run_pending(rapport)
    assert (await balance(member["id"]))[0] == before - 20
    reversal = await Ledger.select().where((Ledger.member == member["id"])
                                           & (Ledger.kind == "reverse")).first().run()
    assert reversal["explanation"].startswith("20 points taken back: return R-")
    await ledger.expire_lots()


async def test_the_app_runs_without_sales(loyalty_client):
    for path in ("/loyalty/members", "/loyalty/programs", "/"):
        assert (await loyalty_client.get(path)).status_code == 200

