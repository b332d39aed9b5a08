"""The notification bell in a real browser: a follow-up reminder falls due while a page is
open, and the bell's unread count appears without a reload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.pwa.conftest import chromium, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

EMAIL = "bell@example.test"


async def _seed(rapport) -> int:
    from tests.conftest import make_user

    return await make_user(EMAIL)


POST = """async ([path, body]) => {
  const token = JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"];
  const response = await fetch(path, {method: "POST", body: JSON.stringify(body),
    headers: {"content-type": "application/json", "x-csrftoken": token}});
  return [response.status, await response.json()];
}"""


def test_bell_counts_a_reminder_that_falls_due_while_the_page_is_open(live_server, chromium):  # noqa: F811
    from tests.conftest import DEMO_PASSWORD

    user_id = live_server.run(_seed)
    base = live_server.url
    page = chromium.new_page()
    page.goto(f"{base}/login?next=/contacts")
    page.fill("#email", EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/contacts")
    page.wait_for_selector("#bell[data-live-ready] a.bell", state="attached")
    assert page.locator("#bell .badge").count() == 0

    status, customer = page.evaluate(POST, ["/api/v1/contacts", {"first_name": "Ada"}])
    assert status == 201
    status, _ = page.evaluate(POST, ["/api/v1/interactions", {
        "customer_id": customer["id"], "channel": "call",
        "followup_due": datetime.now(UTC).isoformat(), "followup_assignee": user_id}])
    assert status == 201
    # The reminder worker sends it; the inbox keeps it (this user has no push device).
    page.wait_for_selector("#bell .badge:has-text('1')")
    page.click("#bell a.bell")
    page.wait_for_url(f"{base}/notifications")
    assert "Follow up: Ada" in page.locator("main").inner_text()
