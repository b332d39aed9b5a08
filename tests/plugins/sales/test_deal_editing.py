"""Editing a deal on its page: product lines priced from the price book, competitors, and
moving a deal to another pipeline (its stage mapped)."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import post_form


async def _product(sku: str, price: str | None = None) -> int:
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    pid = (await Product.insert(Product(sku=sku, name=sku.title())).returning(
        Product.id).run())[0]["id"]
    if price is not None:
        book = await PriceBook.select().where(PriceBook.is_default == True).first().run()  # noqa: E712
        if book is None:
            book = (await PriceBook.insert(PriceBook(name="List", is_default=True)).returning(
                PriceBook.id).run())[0]
        await ProductPrice.insert(ProductPrice(price_book=book["id"], product=pid,
                                               currency="EUR", unit_price=Decimal(price))).run()
    return pid


async def _deal(client, name: str = "Fleet deal") -> int:
    created = await client.post("/api/v1/sales/opportunities", json={
        "name": name, "amount": "0", "currency": "EUR"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_product_lines_take_the_price_book_price_and_total_up(sales_client):
    truck = await _product("TRUCK", "40000.00")
    trailer = await _product("TRAILER")  # no price anywhere
    deal = await _deal(sales_client)
    added = await post_form(sales_client, f"/sales/opportunities/{deal}/products",
                            {"product": str(truck), "quantity": "2"},
                            headers={"hx-request": "true"})
    assert added.status_code == 200
    assert 'id="deal-products"' in added.text and "80,000.00 EUR" in added.text
    assert "<html" not in added.text  # htmx gets the section only
    refused = await post_form(sales_client, f"/sales/opportunities/{deal}/products",
                              {"product": str(trailer), "quantity": "1"},
                              headers={"hx-request": "true"})
    assert "no price in EUR in the price books" in refused.text
    assert 'aria-describedby="err-dp-price"' in refused.text
    refused = await post_form(sales_client, f"/sales/opportunities/{deal}/products",
                              {"product": str(truck), "quantity": "-1"})
    assert refused.status_code == 400 and "must be more than zero" in refused.text
    await post_form(sales_client, f"/sales/opportunities/{deal}/products",
                    {"product": str(trailer), "quantity": "1", "unit_price": "5000"})
    page = await sales_client.get(f"/sales/opportunities/{deal}")
    assert "85,000.00 EUR" in page.text
    moved = await post_form(sales_client, f"/sales/opportunities/{deal}/amount-from-products",
                            {})
    assert moved.status_code == 303
    api = (await sales_client.get(f"/api/v1/sales/opportunities/{deal}")).json()
    assert Decimal(api["amount"]["amount"]) == Decimal("85000")
    lines = (await sales_client.get(f"/api/v1/sales/opportunities/{deal}/products")).json()
    assert [(x["name"], x["quantity"], x["total"]) for x in lines["items"]] == [
        ("Truck", "2", "80000.00"), ("Trailer", "1", "5000.00")]
    gone = await sales_client.delete(
        f"/api/v1/sales/opportunities/{deal}/products/{lines['items'][1]['id']}")
    assert gone.status_code == 204
    bad = await sales_client.post(f"/api/v1/sales/opportunities/{deal}/products",
                                  json={"product": truck, "quantity": 1.5})
    assert bad.status_code == 422 and bad.json()["field"] == "quantity"
    from core.audit import AuditEntry

    assert await AuditEntry.count().where(
        AuditEntry.record_type == "sales_opportunity_product").run() == 3


async def test_competitors_are_cleaned_and_validated(sales_client):
    deal = await _deal(sales_client)
    saved = await post_form(sales_client, f"/sales/opportunities/{deal}/competitors",
                            {"competitors": "Acme,  acme , Globex\nInitech"},
                            headers={"hx-request": "true"})
    assert "<li>Acme</li>" in saved.text and "<li>Initech</li>" in saved.text
    assert saved.text.count("<li>") == 3
    refused = await post_form(sales_client, f"/sales/opportunities/{deal}/competitors",
                              {"competitors": ",".join(f"C{i}" for i in range(11))})
    assert refused.status_code == 400 and "name at most 10 competitors" in refused.text
    api = (await sales_client.get(f"/api/v1/sales/opportunities/{deal}")).json()
    assert api["competitors"] == "Acme, Globex, Initech"


async def test_someone_elses_deal_cannot_be_edited(sales_client):
    truck = await _product("TRUCK", "1.00")
    deal = await _deal(sales_client)
    await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(sales_client, "rep@example.test")
    denied = await post_form(sales_client, f"/sales/opportunities/{deal}/products",
                             {"product": str(truck), "quantity": "1"})
    assert denied.status_code == 404
    denied = await post_form(sales_client, f"/sales/opportunities/{deal}/competitors",
                             {"competitors": "Sneaky"})
    assert denied.status_code == 404


async def test_moving_a_deal_to_another_pipeline_maps_its_stage(sales_client):
    from plugins.sales.tables import Pipeline, Stage

    deal = await _deal(sales_client)
    stages = {s["name"]: s["id"] for s in (await sales_client.get("/api/v1/sales/stages")).json()}
    await sales_client.post(f"/api/v1/sales/opportunities/{deal}/stage",
                            json={"stage": stages["Proposal"]})  # 50 %
    other = (await Pipeline.insert(Pipeline(name="Renewals")).returning(Pipeline.id).run())[0]
    await Stage.insert(
        Stage(pipeline=other["id"], name="Contacted", position=0, probability=20),
        Stage(pipeline=other["id"], name="Offer out", position=1, probability=60),
        Stage(pipeline=other["id"], name="Renewed", position=2, probability=100,
              outcome="won")).run()
    moved = await post_form(sales_client, f"/sales/opportunities/{deal}/pipeline",
                            {"pipeline": str(other["id"])})
    assert moved.status_code == 303
    page = await sales_client.get(f"/sales/opportunities/{deal}")
    assert "Proposal → Offer out" in page.text  # nearest probability, kept in the history
    row = (await sales_client.get(f"/api/v1/sales/opportunities/{deal}")).json()
    assert row["pipeline"] == other["id"]
    # Lost deals need a lost stage in the target pipeline.
    lost = await _deal(sales_client, "Lost one")
    await sales_client.post(f"/api/v1/sales/opportunities/{lost}/stage",
                            json={"stage": stages["Lost"], "reason": "price"})
    refused = await sales_client.post(f"/api/v1/sales/opportunities/{lost}/pipeline",
                                      json={"pipeline": other["id"]})
    assert refused.status_code == 422 and "no lost stage" in refused.json()["detail"]
