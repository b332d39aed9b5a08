"""A marketer in a real browser builds a segment with the rule editor: changing a criterion
redraws the condition (htmx), typing updates the live count, Add group adds an OR group, and
saving keeps it all. Screenshots at 1366x800 and 390x844, checked for sideways overflow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser
SHOTS_DIR = os.environ.get("RAPPORT_SHOTS_DIR", "")


@pytest.fixture(scope="module")
def campaigns_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("campaigns-live"), ["campaigns"]) as server:
        yield server


async def seed(rapport):
    from tests.conftest import make_user
    from tests.plugins.campaigns.conftest import new_customer

    await make_user("marketer@example.test")
    await new_customer("Ada Lovelace", tags=("vip",))
    await new_customer("Bob Byron", stage="customer")
    await new_customer("Cy Quiet")


def shots(page, folder: Path, name: str):
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in ((1366, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth"), (
            name, width)


def test_a_marketer_builds_a_segment_with_the_live_count(campaigns_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import DEMO_PASSWORD

    folder = Path(SHOTS_DIR) if SHOTS_DIR else tmp_path
    campaigns_server.run(seed)
    base = campaigns_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login?next=/campaigns/segments/new")
            page.fill("#email", "marketer@example.test")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/campaigns/segments/new")
            count = page.locator("#segment-count")
            expect(count).to_contain_text("2 customers match")  # leads: Ada and Cy
            page.fill("#f-name", "VIPs")
            page.select_option("#g0_c0_criterion", "core.tag")
            expect(page.locator("#g0_c0_op")).to_contain_text("does not have")
            page.fill("#g0_c0_value", "vip")
            expect(count).to_contain_text("1 customer matches")
            expect(count).to_contain_text("Ada Lovelace")
            page.click("button:has-text('Add group')")
            expect(page.locator("#g1-h")).to_have_text("Group 2")
            page.select_option("#f-match", "any")
            page.select_option("#g1_c0_value", "customer")
            expect(count).to_contain_text("2 customers match")  # vip, or a customer
            shots(page, folder, "segment-editor")
            page.click("button:has-text('Save segment')")
            expect(page.locator(".flash")).to_have_text("Saved.")
            expect(count).to_contain_text("2 customers match")
            expect(page.locator("#g1_c0_value")).to_have_value("customer")
        finally:
            browser.close()
