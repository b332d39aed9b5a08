"""What makes Rapport an installable app: the manifest, the icons, the service worker (served
from the site root so its scope covers every page) and the offline fallback page."""

from __future__ import annotations

import json
from pathlib import Path

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Response, Template

from pwa.icons import SIZES, app_icon

STATIC = Path(__file__).resolve().parent / "static"
FIELD_START = "/field/"

DEFAULT_THEME_COLOUR = "#1f4e79"  # --brand in the default theme's rapport.css
DEFAULT_BACKGROUND = "#f6f8fa"  # --bg


def colours(rapport) -> tuple[str, str]:
    extra = rapport.settings.extra or {}
    return (extra.get("theme_color", DEFAULT_THEME_COLOUR),
            extra.get("background_color", DEFAULT_BACKGROUND))


def manifest_for(rapport) -> dict:
    name = rapport.settings.instance_name
    theme, background = colours(rapport)
    icons = []
    for purpose in ("any", "maskable"):
        for size in SIZES:
            icons.append({"src": f"/pwa/icons/{purpose}-{size}.png", "sizes": f"{size}x{size}",
                          "type": "image/png", "purpose": purpose})
    return {
        "id": FIELD_START,
        "name": f"{name} Field",
        "short_name": name[:12],
        "description": f"{name} for field work: agenda, customers and visit reports, offline.",
        "start_url": FIELD_START,
        "scope": FIELD_START,
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": theme,
        "background_color": background,
        "icons": icons,
        "shortcuts": [
            {"name": "Today", "url": FIELD_START},
            {"name": "My customers", "url": f"{FIELD_START}#/customers"},
        ],
    }


@get("/manifest.webmanifest", opt={"public": True}, include_in_schema=False)
async def manifest(request: Request) -> Response:
    body = json.dumps(manifest_for(request.app.state.rapport), indent=1)
    return Response(body, media_type="application/manifest+json",
                    headers={"cache-control": "no-cache"})


@get("/pwa/icons/{name:str}", opt={"public": True}, include_in_schema=False)
async def icon(request: Request, name: FromPath[str]) -> Response:
    purpose, _, rest = name.partition("-")
    size_text = rest.removesuffix(".png")
    if purpose not in {"any", "maskable"} or not size_text.isdigit() or int(size_text) not in SIZES:
        raise NotFoundException()
    theme, _ = colours(request.app.state.rapport)
    return Response(app_icon(int(size_text), theme), media_type="image/png",
                    headers={"cache-control": "public, max-age=86400"})


@get("/favicon.ico", opt={"public": True}, include_in_schema=False)
async def favicon(request: Request) -> Response:
    """The app icon where browsers look when a page names none (portal, print and public
    pages): a PNG, which every current browser accepts under this name."""
    theme, _ = colours(request.app.state.rapport)
    return Response(app_icon(192, theme), media_type="image/png",
                    headers={"cache-control": "public, max-age=86400"})


@get("/sw.js", opt={"public": True}, include_in_schema=False)
async def service_worker() -> Response:
    # Served from the root (not /static/) so its scope covers the whole site; never cached by
    # HTTP so a new version reaches devices on their next visit.
    return Response((STATIC / "pwa" / "sw.js").read_bytes(), media_type="text/javascript",
                    headers={"service-worker-allowed": "/", "cache-control": "no-cache"})


@get("/field/offline", opt={"public": True}, include_in_schema=False)
async def offline_page() -> Template:
    """Shown by the service worker for a page it has no copy of while offline."""
    return Template("pwa/offline.html")


ROUTES = [manifest, icon, favicon, service_worker, offline_page]
