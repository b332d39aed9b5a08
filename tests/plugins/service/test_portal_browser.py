"""The portal request flow in a real browser: suggestions appear while typing, "this answered
my question" opens no case, and a request sent after all becomes a case."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser

PASSWORD = "tea at four o'clock"


@pytest.fixture(scope="module")
def service_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("service-live"), ["service"]) as server:
        yield server



async def seed(rapport):
    from core import records
    from core.customers.tables import Customer
    from core.permissions import Actor
    from core.portal.identities import accept_invitation, invite
    from plugins.service import kb

    staff = Actor(kind="staff", id=None, name="setup",
                  grants={"service.article.view": "all", "service.article.edit": "all"})
    customer = await records.create(staff, Customer, {
        "kind": "contact", "name": "Ada Lovelace", "first_name": "Ada",
        "last_name": "Lovelace", "primary_email": "ada@example.test"})
    _, token = await invite(rapport, staff, customer["id"], "ada@example.test")
    await accept_invitation(token, PASSWORD, PASSWORD)
    article = await kb.create_article(staff, {
        "title": "Resetting your password", "audience": "public", "published": True,
        "keywords": "password, forgot, sign in",
        "body": "Use the 'Forgot password' link on the sign-in page."})
    return customer["id"], article["id"]


async def outcome(rapport):
    from plugins.service.tables import ArticleFeedback, Case

    return {"cases": await Case.select(Case.subject, Case.channel, Case.customer).run(),
            "deflections": await ArticleFeedback.count().where(
                ArticleFeedback.deflected == True).run()}  # noqa: E712


def test_portal_request_with_deflection_then_a_real_request(service_server, tmp_path):
    from playwright.sync_api import sync_playwright

    customer_id, _ = service_server.run(seed)
    base = service_server.url
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
            page.click("nav >> text=Requests")
            page.click("text=New request")
            page.locator("#r-subject").press_sequentially("I forgot my password", delay=20)
            suggestion = page.locator("#suggestions >> text=Resetting your password")
            suggestion.wait_for()
            page.click("#suggestions >> text=This answered my question")
            page.wait_for_selector("text=No request was sent")
            assert service_server.run(outcome) == {"cases": [], "deflections": 1}

            page.goto(f"{base}/portal/service/requests/new")
            page.fill("#r-subject", "The dishwasher leaks")
            page.fill("#r-description", "Water on the floor after every wash.")
            page.click("#send-request")
            page.wait_for_selector("text=we received your request")
            assert "The dishwasher leaks" in page.inner_text("h1")
        finally:
            browser.close()
    result = service_server.run(outcome)
    assert result["cases"] == [{"subject": "The dishwasher leaks", "channel": "portal",
                                "customer": customer_id}]


async def seed_case(rapport):
    from core.customers.tables import Customer
    from plugins.service import cases
    from tests.conftest import make_user

    await make_user("agent@example.test")
    customer = await Customer.select(Customer.id).where(
        Customer.primary_email == "ada@example.test").first().run()
    case = await cases.open_case(rapport, None, customer_id=customer["id"],
                                 subject="Cannot sign in: forgot password",
                                 description="I forgot my password again.")
    return case["id"]


def test_agent_inserts_a_suggested_article_into_the_reply(service_server):
    from playwright.sync_api import sync_playwright

    from tests.conftest import DEMO_PASSWORD

    if not service_server.run(_has_customer):
        service_server.run(seed)
    case_id = service_server.run(seed_case)
    base = service_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/login?next=/service/cases/{case_id}")
            page.fill("#email", "agent@example.test")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/service/cases/{case_id}")
            page.fill("#body", "Hello Ada,")
            page.click(".case-kb >> text=Insert link in reply")
            value = page.input_value("#body")
            assert value.startswith("Hello Ada,\n\nResetting your password: ")
            assert value.endswith("/portal/service/help/resetting-your-password")
        finally:
            browser.close()


async def _has_customer(rapport):
    from core.customers.tables import Customer

    return await Customer.exists().where(Customer.primary_email == "ada@example.test").run()
