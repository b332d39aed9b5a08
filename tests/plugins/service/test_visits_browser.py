"""A repair visit end to end in a real browser: an agent schedules it from the case, the field
representative finds it in the field app's agenda."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def service_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("service-visits-live"), ["service"]) as server:
        yield server


async def seed(rapport):
    from core.customers.tables import Customer
    from plugins.service.tables import Case
    from tests.conftest import make_user

    await make_user("boss@example.test", roles=["administrator"], name="Bo Boss")
    field = await make_user("fei@example.test", roles=["field_representative"],
                            name="Fei Field")
    customer = (await Customer.insert(Customer(kind="contact", name="Mrs Boiler",
                                               owner=field)).returning(Customer.id).run()
                )[0]["id"]
    case = (await Case.insert(Case(number="CS-900001", subject="Boiler makes a noise",
                                   case_type="maintenance", status="open", is_open=True,
                                   customer=customer)).returning(Case.id).run())[0]["id"]
    return case


async def visits_of(rapport):
    from plugins.service.tables import Visit

    return await Visit.select(Visit.status, Visit.assignee.email).run()


def sign_in(page, base: str, email: str, next_url: str) -> None:
    from tests.conftest import DEMO_PASSWORD

    page.goto(f"{base}/login?next={next_url}")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_url}")


def test_scheduled_visit_reaches_the_field_agenda(service_server):
    from playwright.sync_api import sync_playwright

    case_id = service_server.run(seed)
    base = service_server.url
    today = datetime.now(UTC).date().isoformat()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            agent = browser.new_context(timezone_id="UTC").new_page()
            agent.set_default_timeout(15_000)
            sign_in(agent, base, "boss@example.test", f"/service/cases/{case_id}/visits/new")
            agent.select_option("#v-assignee", label="Fei Field (fei@example.test)")
            agent.fill("#v-starts", f"{today}T12:00")
            agent.fill("#v-ends", f"{today}T11:00")
            agent.fill("#v-notes", "Bring a spare valve")
            agent.click("button:has-text('Schedule the visit')")
            # The server's answer names the field and keeps what was typed.
            assert "must be after the start" in agent.inner_text("#err-ends_at")
            assert agent.input_value("#v-notes") == "Bring a spare valve"
            agent.fill("#v-ends", f"{today}T13:30")
            agent.click("button:has-text('Schedule the visit')")
            agent.wait_for_url(f"{base}/service/cases/{case_id}")
            assert service_server.run(visits_of) == [
                {"status": "scheduled", "assignee.email": "fei@example.test"}]

            field = browser.new_context(timezone_id="UTC").new_page()
            field.set_default_timeout(15_000)
            sign_in(field, base, "fei@example.test", "/field/")
            row = field.locator(".field-row", has_text="Visit: Mrs Boiler")
            row.wait_for()
            assert "CS-900001: Boiler makes a noise" in row.inner_text()
        finally:
            browser.close()
