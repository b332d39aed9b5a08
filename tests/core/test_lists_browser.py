"""Customer and interaction lists in a real browser (Debian's Chromium through Playwright) on
a 1366x800 laptop: the first rows show without scrolling (unused filters folded, the bulk box
only once a row is selected), with the count of matches."""

from __future__ import annotations

import pytest

from tests.core.test_live_lists_browser import sign_in
from tests.pwa.conftest import chromium, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

EMAIL = "lists@example.test"


async def _seed(rapport) -> None:
    from core.customers import service
    from core.identity.tables import User
    from tests.conftest import make_user

    if await User.exists().where(User.email == EMAIL).run():  # one server per module
        return
    await make_user(EMAIL)
    for i in range(60):
        await service.create_customer(rapport, None, {
            "kind": "contact", "first_name": "Person", "last_name": f"Number {i:02d}",
            "emails": [f"p{i}@example.test"]})


def test_first_rows_show_on_a_laptop_and_bulk_actions_appear_on_selection(
        live_server, chromium):  # noqa: F811
    live_server.run(_seed)
    page = chromium.new_page()
    page.set_viewport_size({"width": 1366, "height": 800})
    sign_in(page, live_server.url, "/contacts")
    assert "60 contacts" in page.locator("#list-total").inner_text()
    bulk = page.locator("fieldset.bulk-actions")
    assert bulk.is_hidden()
    rows = page.locator("table.customer-list tbody tr")
    # At least the first three rows are on the first screen, without scrolling.
    third = rows.nth(2).bounding_box()
    assert third["y"] + third["height"] <= 800
    rows.nth(0).locator("input[type=checkbox]").check()
    bulk.wait_for(state="visible")
    rows.nth(0).locator("input[type=checkbox]").uncheck()
    bulk.wait_for(state="hidden")
    # Sorting from a column header, then paging there and back.
    page.click("th >> text=Updated")
    page.wait_for_url(lambda url: "sort=updated" in url)
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Updated")
    page.click("a[rel=next]")
    page.wait_for_url(lambda url: "after=" in url)
    page.click("a[rel=prev]")
    page.wait_for_url(lambda url: "before=" in url)
    assert "Number 59" in page.locator("table.customer-list tbody tr").first.inner_text()
