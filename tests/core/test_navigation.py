"""The staff navigation is grouped by area and shows a user only what their role can use."""

from __future__ import annotations

import html
import re

from tests.conftest import app_client, make_user, sign_in


def _navigation(page: str) -> dict[str, list[str]]:
    nav = re.search(r'<nav class="sidenav".*?</nav>', page, re.S).group(0)
    groups: dict[str, list[str]] = {}
    for title, body in re.findall(r'<h2 class="nav-group"[^>]*>([^<]+)</h2>\s*<ul[^>]*>(.*?)</ul>',
                                  nav, re.S):
        groups[html.unescape(title)] = [html.unescape(label) for label in
                                        re.findall(r"<a [^>]*>([^<]+)</a>", body)]
    return groups


async def test_administrator_sees_the_navigation_grouped_by_area(make_rapport):
    rapport = await make_rapport(plugins=["sales", "service"])
    async with app_client(rapport) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        groups = _navigation((await client.get("/")).text)
    assert list(groups)[0] == "Work" and list(groups)[-2:] == ["Administration", "Account"]
    assert {"Accounts", "Contacts", "Import"} <= set(groups["Customers"])
    assert {"Pipeline", "Quotes"} <= set(groups["Sales"])
    assert "Cases" in groups["Service"]
    assert {"Users & teams", "Audit log"} <= set(groups["Administration"])
    assert groups["Account"] == ["My account"]
    # No heading holds more than a short list: the flat 24-item sidebar is gone.
    assert all(len(items) <= 10 for items in groups.values())


async def test_service_agent_sees_no_sales_or_administration_menus(make_rapport):
    rapport = await make_rapport(plugins=["sales", "service"])
    async with app_client(rapport) as client:
        await make_user("agent@example.test", roles=["service_agent"], teams=["Service"])
        await sign_in(client, "agent@example.test")
        groups = _navigation((await client.get("/")).text)
        assert "Sales" not in groups and "Administration" not in groups
        assert "Cases" in groups["Service"] and "Accounts" in groups["Customers"]
        # The role's reach matches its menus: sales pages are refused, not merely unlisted.
        assert (await client.get("/sales/board")).status_code == 403
