"""The product catalogue: pages, prices per price book and currency, and global search."""

from __future__ import annotations

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import post_form


async def test_staff_adds_a_product_with_specifications_and_prices(sales_client):
    from plugins.sales.tables import PriceBook

    await PriceBook.insert(PriceBook(name="Standard", is_default=True)).run()
    created = await post_form(sales_client, "/sales/products", {
        "sku": "BK-54", "name": "Touring bike", "category": "Bikes",
        "description": "Steel frame touring bike", "specifications": "Frame: steel\nGears: 18"})
    assert created.status_code == 303
    url = created.headers["location"]
    book = (await PriceBook.select().first().run())["id"]
    priced = await post_form(sales_client, f"{url}/prices", {
        "price_book": str(book), "currency": "eur", "unit_price": "1,299.00"})
    assert priced.status_code == 303
    page = await sales_client.get(url)
    assert "Bikes" in page.text and "<dt>Frame</dt><dd> steel</dd>" in page.text
    assert "1,299.00 EUR" in page.text
    duplicate = await post_form(sales_client, "/sales/products", {"sku": "BK-54", "name": "X"})
    assert duplicate.status_code == 400 and "sku" in duplicate.text
    api = (await sales_client.get("/api/v1/sales/products?q=touring")).json()
    assert api["items"][0]["prices"][0]["currency"] == "EUR"


async def test_global_search_finds_products_leads_and_deals_within_scope(sales_client):
    from core.identity.users import load_actor

    await post_form(sales_client, "/sales/products", {"sku": "CAM-1", "name": "Camera"})
    await sales_client.post("/api/v1/sales/leads", json={"last_name": "Cameron",
                                                         "email": "c@example.test"})
    rapport = sales_client.rapport
    providers = {p.kind: p for p in rapport.collect("register_search_providers",
                                                    rapport=rapport)}
    admin = await load_actor(rapport, sales_client.user_id)
    found = await providers["sales.product"].search(rapport, admin, "camera", 10)
    assert [r.title for r in found] == ["Camera (CAM-1)"]
    leads = await providers["sales.lead"].search(rapport, admin, "camer", 10)
    assert [r.title for r in leads] == ["Cameron"]
    rep_id = await make_user("rep@example.test", roles=["field_representative"])
    rep = await load_actor(rapport, rep_id)
    assert await providers["sales.lead"].search(rapport, rep, "camer", 10) == []
    await sign_in(sales_client, "rep@example.test")
    assert (await sales_client.get("/sales/products?q=cam")).status_code == 200
