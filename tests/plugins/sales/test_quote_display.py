"""What a person reads on a quote: percentages, quantities and money formatted the same way on
the staff page, the printable view, the customer's portal page and the lists (issue: a 10 %
discount showed as ``1E+1%``, money as ``7506 EUR``)."""

from __future__ import annotations

import re
from decimal import Decimal

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import new_customer, post_form
from tests.plugins.sales.test_quotes import as_portal_customer


async def _quote(client) -> dict:
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    book = (await PriceBook.insert(PriceBook(name="Standard", is_default=True)).returning(
        PriceBook.id).run())[0]["id"]
    product = (await Product.insert(Product(sku="SRV-9", name="Server rack")).returning(
        Product.id).run())[0]["id"]
    await ProductPrice.insert(ProductPrice(price_book=book, product=product, currency="EUR",
                                           unit_price=Decimal("2502.00"))).run()
    customer = await new_customer("Mine Ltd")
    response = await client.post("/api/v1/sales/quotes", json={
        "customer": customer, "currency": "EUR",
        "lines": [{"product": product, "quantity": "3", "discount_percent": "10",
                   "tax_percent": "20"}]})
    assert response.status_code == 201, response.text
    return {**response.json(), "customer_id": customer}


def _visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def assert_reads_well(html: str) -> None:
    text = _visible_text(html)
    assert "E+" not in text, "a number printed in scientific notation"
    assert "10%" in text and "20%" in text  # the line's discount and tax
    assert "€7,506.00" in text  # subtotal: 3 x 2,502.00, grouped
    assert "€2,502.00" in text  # unit price
    assert "€6,755.40" in text  # net after 10 %
    assert "€8,106.48" in text  # total with 20 % tax
    assert "Subtotal (1 line)" in text


async def test_staff_and_printable_quote_show_percentages_and_grouped_money(sales_client):
    quote = await _quote(sales_client)
    staff = await sales_client.get(f"/sales/quotes/{quote['id']}")
    assert staff.status_code == 200
    assert_reads_well(staff.text)
    printable = await sales_client.get(f"/sales/quotes/{quote['id']}/print")
    assert_reads_well(printable.text)
    listing = _visible_text((await sales_client.get("/sales/quotes")).text)
    assert "€8,106.48" in listing and "8106.48" not in listing.replace("€8,106.48", "")
    panel = await sales_client.get(f"/sales/panels/customer/{quote['customer_id']}/quotes")
    assert "€8,106.48" in _visible_text(panel.text)


async def test_portal_quote_the_customer_accepts_is_formatted_the_same(sales_client,
                                                                       monkeypatch):
    quote = await _quote(sales_client)
    assert (await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")).status_code \
        == 200
    portal_user = await make_user("customer@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, quote["customer_id"])
    await sign_in(sales_client, "customer@example.test")
    page = await sales_client.get(f"/portal/sales/quotes/{quote['id']}")
    assert page.status_code == 200, page.text
    assert_reads_well(page.text)
    listing = _visible_text((await sales_client.get("/portal/sales/quotes")).text)
    assert "€8,106.48" in listing
    card = _visible_text((await sales_client.get("/portal/sales/quotes/card")).text)
    assert "€8,106.48" in card
    # The phone layout labels every value of a line (the table's head is hidden there).
    assert 'data-label="Discount"' in page.text and "quotes.css" in page.text
    refused = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/decision",
                              {"decision": "maybe"})
    assert refused.status_code == 404
