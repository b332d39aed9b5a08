"""The live contact list in a real browser (Debian's Chromium through Playwright): a contact
created elsewhere shows as "1 new", and Refresh brings it in without losing the filter."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import chromium, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

EMAIL = "lists@example.test"


async def _seed(rapport) -> None:
    from tests.conftest import make_user

    await make_user(EMAIL)


def sign_in(page, base: str, target: str) -> None:
    from tests.conftest import DEMO_PASSWORD

    page.goto(f"{base}/login?next={target}")
    page.fill("#email", EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{target}")


CREATE = """async (body) => {
  const token = JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"];
  const response = await fetch("/api/v1/contacts", {method: "POST", body: JSON.stringify(body),
    headers: {"content-type": "application/json", "x-csrftoken": token}});
  return response.status;
}"""


def test_new_contact_is_announced_and_refresh_keeps_the_filter(live_server, chromium):  # noqa: F811
    live_server.run(_seed)
    base = live_server.url
    page = chromium.new_page()
    sign_in(page, base, "/contacts?stage=lead")
    page.wait_for_selector("text=No contacts match these filters")
    # The list's event stream is subscribed once the server said "ready".
    page.wait_for_selector("#live-list[data-live-ready]", state="attached")
    other = chromium.new_page()
    other.goto(f"{base}/contacts")
    assert other.evaluate(CREATE, {"first_name": "Grace", "last_name": "Hopper",
                                   "lifecycle_stage": "lead"}) == 201
    notice = page.locator("#live-list")
    notice.wait_for(state="visible")
    assert "1 new" in notice.inner_text()
    notice.locator("button").click()
    page.wait_for_selector("#results >> text=Grace Hopper")
    assert page.url.endswith("/contacts?stage=lead")
    assert page.locator("#stage").input_value() == "lead"
    assert notice.is_hidden()
