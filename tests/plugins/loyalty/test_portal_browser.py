"""A customer in a real browser: joins the program in the portal accepting its terms, sees an
order's points with their reason, redeems a reward and opens the voucher with its QR code;
staff see the member page. Screenshots at 1366x800 and 390x844, checked for sideways
overflow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser

PASSWORD = "points at the till"
# Screenshots go to RAPPORT_SHOTS_DIR when set (to look at them), else the test's tmp dir.
SHOTS_DIR = os.environ.get("RAPPORT_SHOTS_DIR", "")


@pytest.fixture(scope="module")
def loyalty_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("loyalty-live"), ["loyalty"]) as server:
        yield server


async def seed(rapport):
    from core import records
    from core.customers.tables import Customer
    from core.permissions import Actor
    from core.portal.identities import accept_invitation, invite
    from plugins.loyalty import rewards, tiers
    from plugins.loyalty.programs import create_program
    from plugins.loyalty.rules import create_rule
    from tests.conftest import make_user

    await make_user("staff@example.test")
    program = await create_program(None, {"name": "Club", "currency": "EUR",
                                          "point_value": "0.01", "terms_version": "2026-1",
                                          "terms": "Points are worth a cent each."})
    await create_rule(None, program["id"], {"kind": "per_currency_unit", "points": "1"})
    await tiers.save_tier(None, program["id"], {"name": "Gold", "threshold": 500,
                                                "multiplier": "1.5"})
    await rewards.save_reward(None, program["id"], {"name": "€5 voucher", "cost": 40,
                                                    "value": "5.00"})
    staff = Actor(kind="staff", id=None, name="setup", grants={})
    customer = await records.create(staff, Customer, {
        "kind": "contact", "name": "Ada Lovelace", "first_name": "Ada",
        "last_name": "Lovelace", "primary_email": "ada@example.test"})
    _, token = await invite(rapport, staff, customer["id"], "ada@example.test")
    await accept_invitation(token, PASSWORD, PASSWORD)
    return customer["id"]


async def order(rapport, customer_id):
    from core.plugin import Event
    from plugins.loyalty import purchases

    await purchases.on_order_event(rapport, Event("sales.order.created", {
        "order_id": 1042, "number": "SO-1042", "customer_id": customer_id, "currency": "EUR",
        "total": "71.40", "lines": [{"line_id": 1, "net": "60.00", "gross": "71.40",
                                     "quantity": "2"}]}, None, 1))


async def member_id(rapport, customer_id):
    from plugins.loyalty.tables import Member

    return (await Member.select(Member.id).where(Member.customer == customer_id).first(
    ).run())["id"]


def shots(page, folder: Path, name: str):
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in ((1366, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth"), (
            name, width)


def test_customer_joins_earns_redeems_and_shows_the_voucher(loyalty_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import DEMO_PASSWORD

    folder = Path(SHOTS_DIR) if SHOTS_DIR else tmp_path
    customer_id = loyalty_server.run(seed)
    base = loyalty_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/portal/login")
            page.fill("#email", "ada@example.test")
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/portal/")
            page.click("nav >> text=Loyalty")
            page.click("button:has-text('Join Club')")
            page.wait_for_selector("text=must accept the program's terms")
            page.check("text=I accept the terms of Club")
            page.click("button:has-text('Join Club')")
            page.wait_for_selector("text=Welcome! You are a member")
            assert page.locator("img.loyalty-qr").is_visible()

            loyalty_server.run(order, customer_id)
            page.reload()
            assert "60 points: 1 per euro on SO-1042" in page.inner_text("main")
            assert "440 points to Gold" in page.inner_text("main")
            shots(page, folder, "portal-loyalty")
            page.click("button:has-text('Redeem')")
            page.wait_for_selector("text=Reward redeemed")
            page.click(".loyalty-voucher a")
            page.wait_for_selector("img.loyalty-qr")
            code = page.inner_text("main code")
            assert code.startswith("LV-") and "Valid until" in page.inner_text("main")
            shots(page, folder, "portal-voucher")

            member = loyalty_server.run(member_id, customer_id)
            staff = browser.new_page()
            staff.set_default_timeout(15_000)
            staff.goto(f"{base}/login?next=/loyalty/members/{member}")
            staff.fill("#email", "staff@example.test")
            staff.fill("#password", DEMO_PASSWORD)
            staff.click("button[type=submit]")
            staff.wait_for_url(f"{base}/loyalty/members/{member}")
            assert code in staff.inner_text("main") and "20 points" in staff.inner_text("main")
            staff.fill("#adjust-points", "15")
            staff.fill("#adjust-reason", "Sorry for the late parcel")
            staff.click("button:has-text('Change points')")
            staff.wait_for_selector("text=Points changed.")
            assert "Sorry for the late parcel" in staff.inner_text("main")
            shots(staff, folder, "staff-member")
        finally:
            browser.close()
