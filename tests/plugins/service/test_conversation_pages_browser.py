"""A long conversation in a real browser: "Show earlier messages" puts the earlier page above
the messages shown, in place of the button, and moves focus to the first message it
brought, for an agent on the case page and for the customer on their request page."""

from __future__ import annotations

import pytest

from tests.plugins.service.test_conversation_pages import PAGE, long_case
from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser

PASSWORD = "tea at four o'clock"
COUNT = 2 * PAGE + 7  # three pages for the agent
VISIBLE = COUNT - COUNT // 5  # the customer's view: every fifth message is a note
assert PAGE < VISIBLE <= 2 * PAGE  # two pages for the customer


@pytest.fixture(scope="module")
def conversation_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("service-conversation-live"), ["service"]) as server:
        yield server


async def seed(rapport):
    from core import records
    from core.customers.tables import Customer
    from core.permissions import Actor
    from core.portal.identities import accept_invitation, invite
    from tests.conftest import make_user

    agent = await make_user("agent@example.test")
    staff = Actor(kind="staff", id=None, name="setup", grants={})
    customer = await records.create(staff, Customer, {
        "kind": "contact", "name": "Ada Lovelace", "first_name": "Ada",
        "last_name": "Lovelace", "primary_email": "ada@example.test"})
    _, token = await invite(rapport, staff, customer["id"], "ada@example.test")
    await accept_invitation(token, PASSWORD, PASSWORD)
    case_id, _ = await long_case(customer["id"], COUNT, agent=agent)
    return case_id


def _show_all_earlier(page, message_selector: str) -> list[int]:
    """Click "Show earlier messages" until it is gone; the message count after each load."""
    from playwright.sync_api import expect

    counts = [page.locator(message_selector).count()]
    while page.locator("text=Show earlier messages").count():
        page.click("text=Show earlier messages")
        page.locator(message_selector).nth(counts[-1]).wait_for()
        counts.append(page.locator(message_selector).count())
        # Focus moves to the first message the click brought (now the first of the list)
        # once htmx has settled the swap, a moment after the rows appear: wait for it.
        expect(page.locator(message_selector).first).to_be_focused()
    return counts


def test_show_earlier_messages_loads_pages_in_place(conversation_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import DEMO_PASSWORD

    case_id = conversation_server.run(seed)
    base = conversation_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            staff = browser.new_context().new_page()
            staff.set_default_timeout(15_000)
            staff.goto(f"{base}/login?next=/service/cases/{case_id}")
            staff.fill("#email", "agent@example.test")
            staff.fill("#password", DEMO_PASSWORD)
            staff.click("button[type=submit]")
            staff.wait_for_url(f"{base}/service/cases/{case_id}")
            staff.locator("text=Show earlier messages").scroll_into_view_if_needed()
            staff.screenshot(path=str(tmp_path / "earlier.png"))
            assert _show_all_earlier(staff, ".case-conversation > .case-message") == [
                PAGE, 2 * PAGE, COUNT]
            bodies = staff.locator(".case-message-body").all_text_contents()
            assert [b[:8] for b in bodies] == [f"MSG-{i:04d}" for i in range(COUNT)]
            assert staff.url == f"{base}/service/cases/{case_id}"  # no navigation
            staff.screenshot(path=str(tmp_path / "case.png"), full_page=True)

            customer = browser.new_context().new_page()
            customer.set_default_timeout(15_000)
            customer.goto(f"{base}/portal/login")
            customer.fill("#email", "ada@example.test")
            customer.fill("#password", PASSWORD)
            customer.click("button[type=submit]")
            customer.wait_for_url(f"{base}/portal/")
            customer.goto(f"{base}/portal/service/requests/{case_id}")
            selector = "#request-conversation > li:not(.portal-earlier)"
            assert _show_all_earlier(customer, selector) == [PAGE, VISIBLE]
            text = customer.inner_text("#request-conversation")
            assert "SECRET" not in text and text.count("MSG-") == VISIBLE
        finally:
            browser.close()
