"""The portal's navigation is the same on every portal page, core's and each plugin's."""

from __future__ import annotations

import re

import pytest

from tests.conftest import app_client
from tests.core.portal.conftest import make_person, portal_sign_in

CORE_PAGES = {"Home": "/portal/", "History": "/portal/history", "Profile": "/portal/profile",
              "Preferences": "/portal/preferences", "My data": "/portal/data"}


def nav_links(html: str) -> list[tuple[str, str]]:
    nav = re.search(r'<nav class="portal-nav".*?</nav>', html, re.S)
    assert nav, "the page has no portal navigation"
    return re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(0))


@pytest.mark.parametrize("page", [
    "/portal/", "/portal/history", "/portal/data",
    "/portal/sales/quotes", "/portal/sales/orders", "/portal/sales/products",
    "/portal/service/help", "/portal/service/requests",
])
async def test_every_portal_page_shows_history_profile_preferences_and_my_data_once(
        make_rapport, page):
    instance = await make_rapport(["sales", "service"])
    async with app_client(instance) as client:
        await make_person(instance, "Ada", "Lovelace", "ada@example.test")
        await portal_sign_in(client, "ada@example.test")
        response = await client.get(page)
    assert response.status_code == 200, response.text
    links = nav_links(response.text)
    for label, href in CORE_PAGES.items():
        assert (href, label) in links, f"{label} missing from the navigation of {page}"
    assert ("/portal/sales/quotes", "Quotes") in links
    assert len(links) == len(set(links)), f"an item shows twice on {page}: {links}"
