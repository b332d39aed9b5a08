"""The app can be installed: manifest, icons, service worker, and every page linking them."""

from __future__ import annotations

import struct
import zlib

from tests.conftest import make_user, sign_in


def png_size_and_pixel(data: bytes, x: int, y: int) -> tuple[int, int, tuple[int, int, int]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack("!II", data[16:24])
    raw, pos = b"", 8
    while pos < len(data):
        length = struct.unpack("!I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            raw += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(raw)
    stride = 1 + width * 3
    offset = y * stride + 1 + x * 3
    return width, height, tuple(pixels[offset:offset + 3])


async def test_manifest_names_the_instance_and_offers_maskable_icons(client):
    response = await client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] == "Rapport Field" and manifest["short_name"] == "Rapport"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/field/"
    assert manifest["start_url"].startswith(manifest["scope"])
    assert manifest["theme_color"].startswith("#") and manifest["background_color"].startswith("#")
    maskable = {i["sizes"] for i in manifest["icons"] if i["purpose"] == "maskable"}
    assert {"192x192", "512x512"} <= maskable


async def test_icons_are_real_pngs_of_the_stated_size(client):
    manifest = (await client.get("/manifest.webmanifest")).json()
    for entry in manifest["icons"]:
        response = await client.get(entry["src"])
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        width, height, corner = png_size_and_pixel(response.content, 0, 0)
        assert f"{width}x{height}" == entry["sizes"]
        assert corner == (0x1F, 0x4E, 0x79)  # full-bleed brand colour: safe to mask
    assert (await client.get("/pwa/icons/maskable-64.png")).status_code == 404


async def test_service_worker_is_served_from_the_root_with_root_scope(client):
    response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["service-worker-allowed"] == "/"
    assert "javascript" in response.headers["content-type"]
    assert "addEventListener(\"fetch\"" in response.text
    assert "no-cache" in response.headers["cache-control"]


async def test_sign_in_page_links_the_manifest_and_registers_the_worker(client):
    page = await client.get("/login")
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page.text
    assert '<script src="/static/pwa/register.js" defer></script>' in page.text
    assert (await client.get("/static/pwa/register.js")).status_code == 200
    assert "<script>" not in page.text  # no inline script: the CSP forbids it


async def test_offline_page_is_public(client):
    page = await client.get("/field/offline")
    assert page.status_code == 200 and "You are offline" in page.text


async def test_field_app_needs_sign_in_and_opens_for_a_field_representative(client):
    response = await client.get("/field/", headers={"accept": "text/html"},
                                follow_redirects=False)
    assert response.status_code == 303
    await make_user("rep@example.test", roles=["field_representative"])
    await sign_in(client, "rep@example.test")
    page = await client.get("/field/")
    assert page.status_code == 200 and 'id="field-app"' in page.text
