"""The field app in a real browser: Debian's Chromium driven through Playwright and CDP."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def wait_for_service_worker(page) -> None:
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null"
                           " || navigator.serviceWorker.ready.then(() => true)")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")


def test_app_is_installable_from_the_sign_in_page(live_server, chromium):
    page = chromium.new_page()
    page.goto(f"{live_server.url}/login")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = chromium.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"].endswith("/manifest.webmanifest")
    assert not manifest.get("errors"), manifest.get("errors")
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == []
