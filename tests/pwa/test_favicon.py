"""Every page has an icon: browsers ask /favicon.ico where a page names none (the portal,
printable quotes, public forms), and that answered 404."""

from __future__ import annotations

from tests.pwa.test_installable import png_size_and_pixel


async def test_favicon_is_the_app_icon_for_anyone(client):
    response = await client.get("/favicon.ico")  # no session: public pages ask too
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/png")
    width, height, _ = png_size_and_pixel(response.content, 0, 0)
    assert (width, height) == (192, 192)


async def test_portal_pages_name_their_icon(client):
    page = await client.get("/portal/login")
    assert page.status_code == 200
    assert '<link rel="icon"' in page.text
