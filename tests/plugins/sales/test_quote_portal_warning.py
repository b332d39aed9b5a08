"""A quote is sent to the customer portal only: staff are warned when the customer cannot
sign in to it, before and after sending, and not once they can."""

from __future__ import annotations

from core.permissions import Actor
from core.portal.identities import invite
from tests.plugins.sales.conftest import new_customer
from tests.plugins.sales.test_quotes import catalogue

WARNING = "has no portal access"


async def test_quote_to_a_customer_without_portal_access_warns_before_and_after_sending(
        sales_client):
    product = await catalogue()
    customer = await new_customer("Mary Somerville", kind="contact")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"product": product}]})).json()
    draft = await sales_client.get(f"/sales/quotes/{quote['id']}")
    assert WARNING in draft.text and f'href="/customers/{customer}/portal"' in draft.text
    assert (await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")).status_code == 200
    sent = await sales_client.get(f"/sales/quotes/{quote['id']}")
    assert WARNING in sent.text and "this quote is not seen by them" in sent.text


async def test_no_warning_once_the_customer_can_sign_in_to_the_portal(sales_client):
    product = await catalogue()
    customer = await new_customer("Mary Somerville", kind="contact")
    await invite(sales_client.rapport, Actor(kind="staff", id=None, name="setup"), customer,
                 "mary@example.test")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"product": product}]})).json()
    page = await sales_client.get(f"/sales/quotes/{quote['id']}")
    assert page.status_code == 200 and WARNING not in page.text


async def test_quote_to_an_account_says_only_people_sign_in_to_the_portal(sales_client):
    product = await catalogue()
    account = await new_customer("Acme Ltd", kind="account")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": account, "lines": [{"product": product}]})).json()
    page = await sales_client.get(f"/sales/quotes/{quote['id']}")
    assert "only people sign in to the portal" in page.text
    assert f'href="/customers/{account}/portal"' not in page.text
