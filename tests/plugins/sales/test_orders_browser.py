"""Orders in a real browser (Debian's Chromium), on demo data: a representative picks the
caller with the customer picker and places an order, confirms it, is told beside the form
when shipping more than is left, ships part of it; the customer sees it in the portal and
sends a line back. Screenshots of every page at 1366x800 and 390x844 go to the test's
temporary folder (or RAPPORT_SCREENSHOTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser
PASSWORD = "portal-pass-1234"
SIZES = {"desktop": (1366, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def orders_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("sales-orders-browser"), ["sales"],
                 demo_customers=30) as server:
        yield server


async def _caller(rapport) -> dict:
    """A customer with a portal login (the one who phones in)."""
    from core import records
    from core.customers.tables import Customer
    from core.permissions import Actor
    from core.portal.identities import accept_invitation, invite

    staff = Actor(kind="staff", id=None, name="setup", grants={})
    customer = await records.create(staff, Customer, {
        "kind": "contact", "name": "Zelda Caller", "first_name": "Zelda",
        "last_name": "Caller", "primary_email": "zelda@example.test"})
    _, token = await invite(rapport, staff, customer["id"], "zelda@example.test")
    await accept_invitation(token, PASSWORD, PASSWORD)
    return {"id": customer["id"], **await _quotes(rapport, customer["id"])}


async def _quotes(rapport, customer_id: int) -> dict:
    """A quote waiting for Zelda's answer and one that expired yesterday."""
    from datetime import date, timedelta

    from core.identity.tables import User
    from core.identity.users import load_actor
    from plugins.sales import quotes
    from plugins.sales.tables import Product

    admin = await User.select(User.id).where(User.email == "admin@example.com").first().run()
    actor = await load_actor(rapport, admin["id"])  # references are checked: a real grant
    product = await Product.select(Product.id).where(Product.sku == "CRM-PRO").first().run()
    found = {}
    for key, valid in (("waiting", date.today() + timedelta(days=30)),
                       ("expired", date.today() - timedelta(days=1))):
        quote = await quotes.create_quote(rapport, actor, {
            "customer": customer_id, "valid_until": valid.isoformat(),
            "lines": [{"product": product["id"], "quantity": "2", "tax_percent": "19"}]})
        await quotes.send_quote(actor, {**quote, "status": "draft", "superseded": False})
        found[key] = quote["id"]
    return found


def _shots(page, folder: Path, name: str) -> None:
    """The page as it is, at both sizes (then back to the desktop size)."""
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
        # Nothing may be wider than the window (a table scrolls inside its own box).
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} overflows by {overflow}px at {width}x{height}"
    page.set_viewport_size({"width": 1366, "height": 800})


def test_staff_take_confirm_and_ship_an_order_and_the_customer_returns_a_line(
        orders_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from core.identity.demo import DEMO_PASSWORD

    folder = Path(os.environ.get("RAPPORT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    caller = orders_server.run(_caller)
    base = orders_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 800}).new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login?next=/sales/orders")
            page.fill("#email", "admin@example.com")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/sales/orders")
            assert page.locator(".order-table tbody tr").count() > 0  # demo orders
            _shots(page, folder, "orders-list")

            page.get_by_role("link", name="Take an order").click()
            page.wait_for_url(f"{base}/sales/orders/new")
            page.fill("#customer_search", "Zelda")
            page.get_by_label(re.compile("Zelda Caller")).wait_for()
            page.select_option("#l1-product", label="Training day (SVC-TRAIN)")
            page.fill("#l1-qty", "3")
            page.fill("#l1-tax", "19")
            _shots(page, folder, "order-new")
            page.get_by_role("button", name="Place order").click()
            page.wait_for_url(re.compile(rf"{base}/sales/orders/\d+$"))
            order_url = page.url
            assert "Open" in page.inner_text("h1")
            assert "3,034.50" in page.inner_text(".order-total")  # 3 x 850.00 + 19 %

            page.get_by_role("button", name="Confirm").click()
            page.get_by_text("Order confirmed.").wait_for()
            ship = page.locator("#ship")
            ship.get_by_role("textbox").first.fill("5")
            ship.get_by_role("button", name="Record shipment").click()
            alert = page.locator("#ship [role=alert]")
            alert.wait_for()
            assert "only 3 of “Training day” left to ship" in alert.inner_text()
            page.locator("#ship").get_by_role("textbox").first.fill("2")
            page.fill("#ship-carrier", "DHL")
            page.fill("#ship-tracking", "JD0042")
            page.locator("#ship").get_by_role("button", name="Record shipment").click()
            page.get_by_text("Shipment recorded.").wait_for()
            assert "Partly fulfilled" in page.inner_text("h1")
            assert "JD0042" in page.inner_text("main")
            _shots(page, folder, "order-detail")

            customer = browser.new_context(viewport={"width": 1366, "height": 800}).new_page()
            customer.set_default_timeout(15_000)
            customer.goto(f"{base}/portal/login")
            customer.fill("#email", "zelda@example.test")
            customer.fill("#password", PASSWORD)
            customer.click("button[type=submit]")
            customer.wait_for_url(f"{base}/portal/")
            customer.goto(f"{base}/portal/sales/orders")
            _shots(customer, folder, "portal-orders")
            customer.get_by_role("link", name="Status, shipments and returns").click()
            customer.get_by_label(re.compile("Training day")).fill("1")
            customer.fill("#return-reason", "We need only one day")
            _shots(customer, folder, "portal-order")
            customer.get_by_role("button", name="Send return request").click()
            customer.get_by_text("your return is registered").wait_for()

            customer.goto(f"{base}/portal/sales/quotes/{caller['expired']}")
            customer.get_by_role("button", name="Request a new quote").wait_for()
            _shots(customer, folder, "portal-quote-expired")
            customer.get_by_role("button", name="Request a new quote").click()
            customer.get_by_text("we will send you a new quote").wait_for()

            page.goto(f"{base}/sales/quotes/{caller['waiting']}/accept")
            page.fill("#a-by", "Zelda Caller")
            _shots(page, folder, "quote-accept")
            page.get_by_role("button", name="Record acceptance and place the order").click()
            page.get_by_text("The customer's acceptance is recorded").wait_for()
            assert "Zelda Caller (phone)" in page.inner_text(".order-facts")

            page.goto(order_url)
            assert "We need only one day" in page.inner_text("main")
            page.locator("text=Record refund").scroll_into_view_if_needed()
            _shots(page, folder, "order-returned")
        finally:
            browser.close()
    assert caller["id"]
