"""The staff shell in a real browser (Debian's Chromium through Playwright): "/" jumps to the
search box; on a phone-sized screen the search box gets a row of its own, and list filters fold
away unless some are in use."""

from __future__ import annotations

import pytest

from tests.core.test_live_lists_browser import _seed, sign_in
from tests.pwa.conftest import chromium, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_on_a_phone_search_is_usable_and_filters_fold(live_server, chromium):  # noqa: F811
    live_server.run(_seed)
    base = live_server.url
    page = chromium.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, "/contacts")
    search = page.locator("#topsearch-q").bounding_box()
    assert search["width"] > 300  # was squeezed to a few pixels beside the buttons
    filters = page.locator("details.filters")
    assert not filters.evaluate("box => box.open")
    assert page.locator("#stage").is_hidden()
    page.click("details.filters > summary")
    page.select_option("#stage", "customer")
    page.wait_for_url(lambda url: "stage=customer" in url)
    # A filtered list keeps its filters in view, also after a reload.
    page.reload()
    assert filters.evaluate("box => box.open")
    # On a wide screen too, unused filters stay folded (the rows come first).
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/contacts")
    assert not page.locator("details.filters").evaluate("box => box.open")


def test_slash_jumps_to_search_except_while_typing(live_server, chromium):  # noqa: F811
    live_server.run(_seed)
    page = chromium.new_page()
    sign_in(page, live_server.url, "/contacts")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "topsearch-q"
    page.focus("#q")  # typing in a field: "/" is a character like any other
    page.keyboard.type("a/b")
    assert page.input_value("#q") == "a/b"
    assert page.evaluate("document.activeElement.id") == "q"
