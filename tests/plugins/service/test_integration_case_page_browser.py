"""The case page in a real browser: the repair visits section loads in place (htmx) and a
failed reply is sent again with its button."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def case_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("service-case-page"), ["service"]) as server:
        yield server


async def seed(rapport):
    from plugins.service import cases, visits
    from plugins.service.tables import CaseMessage
    from tests.conftest import make_user
    from tests.plugins.service.conftest import new_customer

    agent = await make_user("fixer@example.test")
    customer = await new_customer("Grace Hopper", email="grace@example.test")
    case = await cases.open_case(rapport, None, customer_id=customer, subject="Boiler leaks",
                                 case_type="maintenance")
    await visits.schedule(rapport, None, case["id"], assignee=agent,
                          starts_at="2030-03-04T09:00", ends_at="2030-03-04T10:00",
                          notes="Bring a new gasket")
    rows = await CaseMessage.insert(CaseMessage(
        case=case["id"], kind="reply", body="A fitter comes on Monday.", author_user=agent,
        delivery="failed", delivery_detail="SMTPConnectError: connection refused",
    )).returning(CaseMessage.id).run()
    return case["id"], rows[0]["id"]


def test_visits_load_in_place_and_a_failed_reply_is_sent_again(case_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import DEMO_PASSWORD

    case_id, reply_id = case_server.run(seed)
    base = case_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login?next=/service/cases/{case_id}")
            page.fill("#email", "fixer@example.test")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/service/cases/{case_id}")
            # The fragment replaced the placeholder: one section, with the visit in it.
            page.wait_for_selector(f"#case-visits-{case_id} >> text=Bring a new gasket")
            assert page.locator(f"#case-visits-{case_id}").count() == 1
            assert page.locator(f"#case-visits-{case_id} >> text=Show the visits").count() == 0

            reply = page.locator(f"#message-{reply_id}")
            assert "SMTPConnectError: connection refused" in reply.inner_text()
            reply.locator("button:has-text('Send again')").click()
            # This server has no mail server set up: the reply is handed over to the outbox
            # folder, and the page says so rather than claiming it was e-mailed.
            page.wait_for_selector(f"#message-{reply_id} >> text=saved in the outbox folder")
            assert "SMTPConnectError" not in page.locator(f"#message-{reply_id}").inner_text()
            assert page.locator(f"#message-{reply_id} >> text=Send again").count() == 0
            page.screenshot(path=str(tmp_path / "case.png"), full_page=True)
        finally:
            browser.close()
