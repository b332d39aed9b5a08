"""Service setup in a real browser (Debian's Chromium through Playwright): an administrator
sets up business hours, is told which field is wrong, and sets an SLA policy on them."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import chromium, serving  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

EMAIL = "setup@example.test"


@pytest.fixture(scope="module")
def service_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("service-live"), ["service"],
                 settings="[plugins.service]\nsla_check_seconds = 0\nmail_poll_seconds = 0\n"
                 ) as server:
        yield server


async def _seed(rapport) -> None:
    from tests.conftest import make_user

    await make_user(EMAIL)


def test_administrator_sets_up_business_hours_and_an_sla(service_server, chromium):  # noqa: F811
    from tests.conftest import DEMO_PASSWORD

    service_server.run(_seed)
    base = service_server.url
    page = chromium.new_page()
    page.goto(f"{base}/login?next=/service/admin")
    page.fill("#email", EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/service/admin")
    assert page.locator("text=No calendars").is_visible()

    page.click("summary:has-text('New calendar')")
    page.fill("#calendar-name", "Paris office")
    page.fill("#calendar-timezone", "Europe/Pariss")
    page.click("button:has-text('Add calendar')")
    error = page.locator("#calendar-timezone-error")
    error.wait_for()
    assert "not a known IANA time zone" in error.inner_text()
    assert page.locator("#calendar-timezone").get_attribute("aria-invalid") == "true"
    assert page.locator("#calendar-name").input_value() == "Paris office"  # kept

    page.fill("#calendar-timezone", "Europe/Paris")
    page.click("button:has-text('Add calendar')")
    page.wait_for_selector("h1:has-text('Business hours: Paris office')")
    page.fill("#holiday-day", "2026-12-25")
    page.fill("#holiday-name", "Christmas")
    page.click("button:has-text('Add holiday')")
    page.wait_for_selector("td:has-text('Christmas')")

    page.goto(f"{base}/service/admin")
    page.click("summary:has-text('Set the policy of a priority')")
    page.select_option("#policy-priority", "high")
    page.fill("#policy-first_response_minutes", "60")
    page.fill("#policy-resolution_minutes", "480")
    page.select_option("#policy-calendar", label="Paris office")
    page.click("button:has-text('Save policy')")
    row = page.locator("tr:has(th:text-is('high'))")
    row.wait_for()
    assert "60 min" in row.inner_text() and "Paris office" in row.inner_text()
