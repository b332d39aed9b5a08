"""The quote editor in a real browser (Debian's Chromium) on demo data: the customer is picked
by name, lines are added and removed in place, each line's net and the totals follow what is
typed (priced by the server), and the quote is created. Then the staff quote, the printable
quote and the portal quote the customer accepts, at 1366x800 and 390x844, with nothing wider
than the window; screenshots go to the test's temporary folder (or RAPPORT_SCREENSHOTS)."""

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
def quote_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("sales-quote-browser"), ["sales"],
                 demo_customers=30) as server:
        yield server


async def _setup(rapport) -> dict:
    """A customer with a portal login and a sent quote for them (10 % off, 20 % VAT)."""
    from core import records
    from core.customers.tables import Customer
    from core.identity.tables import User
    from core.identity.users import load_actor
    from core.permissions import Actor
    from core.portal.identities import accept_invitation, invite
    from plugins.sales import quotes
    from plugins.sales.tables import Product

    staff = Actor(kind="staff", id=None, name="setup", grants={})
    customer = await records.create(staff, Customer, {
        "kind": "account", "name": "Quintessa Quotes Ltd", "primary_email": "q@example.test"})
    _, token = await invite(rapport, staff, customer["id"], "q@example.test")
    await accept_invitation(token, PASSWORD, PASSWORD)
    admin = await User.select(User.id).where(User.email == "admin@example.com").first().run()
    actor = await load_actor(rapport, admin["id"])  # references are checked: a real grant
    products = {p["sku"]: p["id"] for p in await Product.select(Product.id, Product.sku).run()}
    quote = await quotes.create_quote(rapport, actor, {
        "customer": customer["id"], "valid_until": "2099-12-31",
        "notes": "Prices include onboarding for your whole team.",
        "lines": [{"product": products["CRM-PRO"], "quantity": "25", "discount_percent": "10",
                   "tax_percent": "20"},
                  {"product": products["SVC-ONBOARD"], "quantity": "1", "tax_percent": "20"}]})
    await quotes.send_quote(actor, {**quote, "status": "draft", "superseded": False})
    return {"customer": customer["id"], "quote": quote["id"],
            "products": sorted(products)}


def _axe(page, name: str, found: dict[str, list[str]]) -> None:
    """axe-core's WCAG 2.1 A/AA checks on the page as it is (as the accessibility test)."""
    from tests.core.test_accessibility_browser import AXE, CHECK, RULES

    if AXE.exists():
        page.evaluate(AXE.read_text())
        found[name] = page.evaluate(CHECK, RULES)


def _shots(page, folder: Path, name: str) -> None:
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} overflows by {overflow}px at {width}x{height}"
        if name.startswith("quote-") or name.startswith("portal-quote"):
            # The total is on the page and within the window's width.
            box = page.locator(".quote-total td, #quote-total").last.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width + 1, name
    page.set_viewport_size({"width": 1366, "height": 800})


def test_staff_write_a_quote_with_live_totals_and_the_customer_reads_it_on_a_phone(
        quote_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from core.identity.demo import DEMO_PASSWORD

    folder = Path(os.environ.get("RAPPORT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    base = quote_server.url
    data = quote_server.run(_setup)
    found: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 800}).new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login?next=/sales/quotes/new")
            page.fill("#email", "admin@example.com")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/sales/quotes/new")

            page.fill("#customer_search", "Quintessa")
            page.get_by_label(re.compile("Quintessa Quotes Ltd")).check()
            page.select_option("#l1-product", label="Professional licence (CRM-PRO)")
            page.fill("#l1-qty", "3")
            page.fill("#l1-tax", "20")
            # The net of the line and the total, priced by the server, follow the typing.
            expect(page.locator("#line1-net")).to_have_text(re.compile(r"^€[\d,]+\.\d\d$"))
            expect(page.locator("#quote-totals")).to_contain_text("Subtotal (1 line)")
            first_total = page.inner_text("#quote-total")

            page.get_by_role("button", name="Add line").click()
            page.locator("#l4-product").wait_for()
            assert page.url.endswith("/sales/quotes/new")  # in place, no reload
            page.select_option("#l4-product", label="Onboarding package (SVC-ONBOARD)")
            expect(page.locator("#quote-totals")).to_contain_text("Subtotal (2 lines)")
            assert page.inner_text("#quote-total") != first_total
            page.get_by_role("button", name="Add line").click()
            page.locator("#l5-product").wait_for()  # the button knows the next line

            page.locator("#line1").get_by_role("button", name="Remove this line").click()
            expect(page.locator("#line1")).to_have_count(0)
            expect(page.locator("#quote-totals")).to_contain_text("Subtotal (1 line)")
            _shots(page, folder, "editor")
            _axe(page, "quote editor", found)

            page.get_by_role("button", name="Create quote").click()
            page.wait_for_url(re.compile(r"/sales/quotes/\d+$"))
            assert "Onboarding package" in page.inner_text("main")

            page.goto(f"{base}/sales/quotes/{data['quote']}")
            main = page.inner_text("main")
            assert "10%" in main and "20%" in main and "E+" not in main
            _shots(page, folder, "quote-staff")
            _axe(page, "staff quote", found)
            page.goto(f"{base}/sales/quotes/{data['quote']}/print")
            _shots(page, folder, "quote-print")
            _axe(page, "printable quote", found)
            deal = quote_server.run(_a_deal)
            page.goto(f"{base}/sales/opportunities/{deal}/edit")
            _shots(page, folder, "deal-edit")
            _axe(page, "deal edit", found)

            customer = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            customer.set_default_timeout(15_000)
            customer.goto(f"{base}/portal/login")
            customer.fill("#email", "q@example.test")
            customer.fill("#password", PASSWORD)
            customer.click("button[type=submit]")
            customer.wait_for_url(f"{base}/portal/")
            customer.goto(f"{base}/portal/sales/quotes/{data['quote']}")
            assert "Accept quote" in customer.inner_text("main")
            _shots(customer, folder, "portal-quote")
            _axe(customer, "portal quote", found)
        finally:
            browser.close()
    problems = {name: issues for name, issues in found.items() if issues}
    assert not problems, problems


async def _a_deal(rapport) -> int:
    from plugins.sales.tables import Opportunity

    return (await Opportunity.select(Opportunity.id).where(
        Opportunity.status == "open").first().run())["id"]
