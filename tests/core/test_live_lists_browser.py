"""The live contact list in a real browser (Debian's Chromium through Playwright): a contact
created elsewhere shows as "1 new", and Refresh brings it in without losing the filter."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import chromium, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

EMAIL = "lists@example.test"


async def _seed(rapport) -> None:
    from core.identity.tables import User
    from tests.conftest import make_user

    if not await User.exists().where(User.email == EMAIL).run():  # one server per module
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


def test_a_file_imported_elsewhere_shows_as_new_contacts(live_server, chromium, tmp_path):  # noqa: F811
    """Upload, map, check and import 40 contacts on one page; the contact list open on another
    says "40 new" (one count, not 40 messages), and Refresh shows them."""
    live_server.run(_seed)
    base = live_server.url
    page = chromium.new_page()
    sign_in(page, base, "/contacts?q=person")
    page.wait_for_selector("#live-list[data-live-ready]", state="attached")
    upload = tmp_path / "people.csv"
    upload.write_text("First name,Last name,Email\n" + "".join(
        f"Person{i},Imported{i},person{i}@example.test\n" for i in range(40)))
    other = chromium.new_page()
    other.goto(f"{base}/customers/import")
    other.set_input_files("#import-file", str(upload))
    other.click("text=Upload and continue")
    other.click("text=Check every row")
    other.click("text=Import the 40 good rows")  # once the check (a job) is done
    notice = page.locator("#live-list")
    notice.wait_for(state="visible")
    assert "40 new" in notice.inner_text()
    notice.locator("button").click()
    page.wait_for_selector("#results >> text=Person39 Imported39")
    assert notice.is_hidden()
