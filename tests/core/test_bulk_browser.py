"""Bulk actions in a real browser: submitting the bulk box raises no script error (the
sign-out helper read ``form.action``, which the box's "action" field shadows)."""

from __future__ import annotations

import pytest

from tests.core.test_live_lists_browser import _seed, sign_in
from tests.pwa.conftest import chromium, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


async def _contacts(rapport) -> None:
    from core.customers.tables import Customer

    await _seed(rapport)
    if not await Customer.exists().where(Customer.name == "Bulk Tagged").run():
        await Customer.insert(Customer(kind="contact", name="Bulk Tagged",
                                       first_name="Bulk", last_name="Tagged")).run()


def test_bulk_submit_runs_without_a_script_error(live_server, chromium):  # noqa: F811
    live_server.run(_contacts)
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server.url, "/contacts")
    page.locator("tr:has-text('Bulk Tagged') input[type=checkbox]").check()
    page.select_option("#bulk-action", "add_tag")
    page.fill("#bulk-tag", "spring-fair")
    with page.expect_navigation():
        page.click("#bulk-form button[type=submit]")
    page.wait_for_load_state()
    assert errors == []
    assert page.locator("tr:has-text('Bulk Tagged')").inner_text().count("spring-fair") == 1
