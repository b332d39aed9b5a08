"""The agent's queue in a real browser: a case opened in another tab through the form (with
the customer picker) appears without a reload (live updates), and can be answered."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cases_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("service-cases-live"), ["service"]) as server:
        yield server


async def seed(rapport):
    from tests.conftest import make_user
    from tests.plugins.service.conftest import new_customer

    await make_user("agent@example.test")
    return await new_customer("Grace Hopper")


def test_queue_updates_live_and_a_new_case_is_answered(cases_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import DEMO_PASSWORD

    cases_server.run(seed)
    base = cases_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login?next=/service/cases")
            page.fill("#email", "agent@example.test")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/service/cases")
            page.wait_for_selector("text=No cases in this view")
            # The queue page listens; a colleague opens a case in another tab.
            # Not wait_for_function: the page's CSP forbids the eval a polled string needs.
            page.wait_for_selector("[data-live-connected]", state="attached")
            page.wait_for_timeout(500)
            other = context.new_page()
            other.goto(f"{base}/service/cases/new")
            other.locator("#customer_search").press_sequentially("Gra", delay=30)
            other.check("#customer-choices >> text=Grace Hopper")
            other.fill("#subject", "Printer jams")
            other.fill("#description", "Every page since Monday.")
            other.select_option("#priority", "high")
            other.click("button:has-text('Open case')")
            other.wait_for_selector("h1 >> text=Printer jams")
            # ...and it appears in the queue without a reload.
            page.wait_for_selector("#case-results >> text=Printer jams")

            page.click("#case-results tr:has-text('Printer jams') a")
            page.fill("#body", "Please send a photo of the tray.")
            page.click("button:has-text('Send')")
            page.wait_for_selector(".case-message-reply >> text=Please send a photo")
            assert "Waiting on customer" in page.inner_text(".case-badges")
            page.screenshot(path=str(tmp_path / "case.png"), full_page=True)
        finally:
            browser.close()
