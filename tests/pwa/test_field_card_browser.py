"""What a field representative meets on a new phone: the customer card whole (plugin panels
included) and the field app ready offline after the first visit. Real Chromium."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import serving
from tests.pwa.test_browser import _seed_rep, sign_in_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def service_server(tmp_path_factory):
    # The service plugin adds a panel ("Cases and satisfaction") to every customer card.
    with serving(tmp_path_factory.mktemp("field-card"), ["service"]) as server:
        yield server


def sign_in_without_a_page(context, page, base: str, email: str) -> None:
    from tests.conftest import DEMO_PASSWORD

    page.request.get(f"{base}/login")
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    answer = page.request.post(f"{base}/login", max_redirects=0, form={
        "email": email, "password": DEMO_PASSWORD, "next": "/field/", "_csrf_token": token})
    assert answer.status == 303, answer.text()


def test_customer_card_on_a_phone_shows_plugin_panels_not_object_text(service_server,
                                                                        chromium, tmp_path):
    _, (acme,) = service_server.run(_seed_rep, "card@example.test", ["Acme"])
    page = chromium.new_page()
    page.set_viewport_size(PHONE)
    sign_in_browser(page, service_server.url, "card@example.test")
    page.wait_for_selector("#field-last-synced:has-text('Last synced')")
    page.goto(f"{service_server.url}/field/#/customers/{acme}")
    page.wait_for_selector("#field-view h1:has-text('Acme')")
    panel = page.locator("#field-view section.field-panel")
    assert panel.count() == 1
    assert panel.locator("h2").inner_text() == "Cases and satisfaction"
    # The panel's own content, loaded from the plugin (not a link to a bare fragment).
    page.wait_for_selector("#field-view section.field-panel >> text=Satisfaction")
    text = page.locator("#field-view").inner_text()
    assert "[object" not in text and "HTMLElement" not in text
    page.screenshot(path=str(tmp_path / "field-card-phone.png"), full_page=True)


def test_field_app_opens_offline_after_the_first_visit_on_a_new_phone(service_server,
                                                                        chromium):
    _, (acme,) = service_server.run(_seed_rep, "newphone@example.test", ["Globex"])
    page = chromium.new_page()
    page.set_viewport_size(PHONE)
    # Signed in without loading a page (so no service worker yet), then the very first visit
    # to the field app: the worker installs during it, too late to see its navigation.
    sign_in_without_a_page(chromium, page, service_server.url, "newphone@example.test")
    page.goto(f"{service_server.url}/field/")
    page.wait_for_selector("#field-last-synced:has-text('Last synced')")
    page.wait_for_function("() => !!navigator.serviceWorker.controller")

    chromium.set_offline(True)
    page.goto("about:blank")  # a new document, not a jump within the page already open
    page.goto(f"{service_server.url}/field/#/customers/{acme}")
    page.wait_for_selector("#field-view h1:has-text('Globex')")
    assert page.locator("text=You are offline").count() == 0
    chromium.set_offline(False)


def test_offline_page_says_the_field_app_is_not_saved_yet_instead_of_looping(service_server,
                                                                              chromium):
    page = chromium.new_page()
    page.set_viewport_size(PHONE)
    page.goto(f"{service_server.url}/login")  # not signed in: the worker saves no field app
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    chromium.set_offline(True)
    page.goto(f"{service_server.url}/customers")
    page.wait_for_selector("h1:has-text('You are offline')")
    page.wait_for_selector("#offline-field-missing:visible")
    assert not page.locator("#offline-field").is_visible()
    chromium.set_offline(False)
