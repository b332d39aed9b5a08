"""The quote editor: any number of lines (added and removed without JavaScript too), live
totals priced by the server, the customer picker instead of a customer number, editing a
draft (and only a draft)."""

from __future__ import annotations

import html
import re
from decimal import Decimal

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import new_customer, post_form
from tests.plugins.sales.test_quotes import catalogue


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


async def test_the_form_picks_the_customer_by_name_not_by_number(sales_client):
    await new_customer("Mine Ltd")
    await new_customer("Other Ltd")
    form = await sales_client.get("/sales/quotes/new")
    assert "Customer id" not in form.text
    assert 'hx-get="/sales/customer-options?field=customer"' in form.text
    choices = await sales_client.get("/sales/customer-options?field=customer&customer_search=Mi")
    assert "Mine Ltd" in choices.text and "Other Ltd" not in choices.text
    assert 'type="radio" name="customer"' in choices.text


async def test_the_picker_offers_only_customers_the_user_may_see(sales_client):
    await new_customer("Hidden Ltd")
    await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(sales_client, "rep@example.test")
    choices = await sales_client.get("/sales/customer-options?customer_search=Hi")
    assert choices.status_code == 200 and "Hidden Ltd" not in choices.text


async def test_lines_are_added_and_removed_without_javascript_keeping_what_was_typed(
        sales_client):
    product = await catalogue()
    customer = await new_customer("Mine Ltd")
    values = {"customer": str(customer), "currency": "EUR", "line1_product": str(product),
              "line1_quantity": "2", "line2_product": "", "line3_product": ""}
    added = await post_form(sales_client, "/sales/quotes", {**values,
                                                           "editor_action": "add_line"})
    assert added.status_code == 200
    assert 'name="line4_product"' in added.text  # one more line
    assert 'value="2"' in added.text and "Mine Ltd" in added.text  # nothing typed was lost
    # The totals come back with the page, priced by the server.
    assert "€39.98" in _text(added.text)
    removed = await post_form(sales_client, "/sales/quotes", {
        **values, "line4_product": str(product), "line4_quantity": "5",
        "editor_action": "remove:1"})
    page = _text(removed.text)
    assert 'name="line1_product"' not in removed.text and 'name="line4_product"' in removed.text
    assert "€99.95" in page  # only the remaining line: 5 x 19.99
    from plugins.sales.tables import Quote

    assert await Quote.count().run() == 0  # nothing is stored until "Create quote"


async def test_a_quote_has_as_many_lines_as_needed(sales_client):
    product = await catalogue()
    customer = await new_customer()
    values = {"customer": str(customer), "currency": "EUR"}
    for i in range(1, 26):
        values[f"line{i}_product"] = str(product)
        values[f"line{i}_quantity"] = "1"
    created = await post_form(sales_client, "/sales/quotes", values)
    assert created.status_code == 303, created.text
    from plugins.sales.tables import Quote, QuoteLine

    quote = await Quote.select().first().run()
    assert await QuoteLine.count().where(QuoteLine.quote == quote["id"]).run() == 25
    assert quote["total_amount"] == Decimal("499.75")


async def test_live_totals_and_line_nets_come_from_the_server(sales_client):
    product = await catalogue()
    response = await post_form(sales_client, "/sales/quotes/preview", {
        "currency": "EUR", "line1_product": str(product), "line1_quantity": "3",
        "line1_discount": "10", "line1_tax": "20", "line7_product": str(product)},
        headers={"HX-Request": "true"})
    assert response.status_code == 200
    text = _text(response.text)
    # 3 x 19.99 = 59.97, less 10 % = 53.97, 20 % tax 10.79; line 7: 19.99 without tax.
    assert "Subtotal (2 lines) €79.96" in text and "Total €84.75" in text
    assert '<output id="line1-net" hx-swap-oob="true">€53.97</output>' in response.text
    assert '<output id="line7-net" hx-swap-oob="true">€19.99</output>' in response.text
    wrong = await post_form(sales_client, "/sales/quotes/preview", {
        "currency": "EUR", "line2_product": str(product), "line2_quantity": "lots"},
        headers={"HX-Request": "true"})
    assert "line 2: quantity: is not a number" in _text(wrong.text)
    line = await sales_client.get("/sales/quotes/editor/line?index=9")
    assert 'name="line9_product"' in line.text
    assert 'id="add-line" ' in line.text and "index=10" in line.text  # the next "Add line"


async def test_an_error_is_shown_beside_the_line_it_belongs_to(sales_client):
    product = await catalogue()
    customer = await new_customer()
    refused = await post_form(sales_client, "/sales/quotes", {
        "customer": str(customer), "currency": "EUR", "line4_product": str(product),
        "line4_quantity": "0"})
    assert refused.status_code == 400
    line = refused.text[refused.text.index('id="line4"'):]
    assert "quantity: must be at least 0.001" in line[:line.index('id="quote-totals"')]


async def test_a_draft_is_edited_and_a_sent_quote_is_not(sales_client):
    product = await catalogue()
    customer = await new_customer()
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"product": product}]})).json()
    form = await sales_client.get(f"/sales/quotes/{quote['id']}/edit")
    assert form.status_code == 200 and f'value="{product}" selected' in form.text
    saved = await post_form(sales_client, f"/sales/quotes/{quote['id']}/edit", {
        "currency": "EUR", "line1_product": str(product), "line1_quantity": "4",
        "line2_product": str(product), "line2_quantity": "1", "line2_discount": "50"})
    assert saved.status_code == 303
    from core.audit import AuditEntry
    from plugins.sales.tables import Quote, QuoteLine

    stored = await Quote.select().where(Quote.id == quote["id"]).first().run()
    assert stored["total_amount"] == Decimal("89.96")  # 4 x 19.99 + 9.995 rounded to 10.00
    assert await QuoteLine.count().where(QuoteLine.quote == quote["id"]).run() == 2
    assert await AuditEntry.exists().where(
        (AuditEntry.record_type == "sales_quote") & (AuditEntry.action == "update")
        & (AuditEntry.record_id == str(quote["id"]))).run()
    await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")
    locked = await sales_client.get(f"/sales/quotes/{quote['id']}/edit")
    assert locked.status_code == 409 and "make a new version" in locked.text
    refused = await post_form(sales_client, f"/sales/quotes/{quote['id']}/edit", {
        "currency": "EUR", "line1_product": str(product)})
    assert refused.status_code == 409
    assert (await Quote.select().where(Quote.id == quote["id"]).first().run())[
        "total_amount"] == Decimal("89.96")
