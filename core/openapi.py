"""The API documentation: OpenAPI 3.1 at /schema/openapi.json and a Swagger UI page at
/schema (and /schema/swagger) that loads only local files, so it works without internet
and under the strict Content-Security-Policy (no inline scripts or styles)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Router
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

if TYPE_CHECKING:
    from litestar import Request

    from core.app import Rapport

SWAGGER = "/static/vendor/swagger-ui"


class LocalSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI from ``core/static/vendor/swagger-ui`` (copied there by the Makefile),
    started by ``/static/js/api-docs.js`` instead of an inline script."""

    def __init__(self) -> None:
        super().__init__(js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                         css_url=f"{SWAGGER}/swagger-ui.css",
                         standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
                         path=["/", "/swagger"])

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="stylesheet" href="{self.css_url}">
  <script src="{self.js_url}" defer></script>
  <script src="{self.standalone_preset_js_url}" defer></script>
  <script src="/static/js/api-docs.js" defer></script>
</head>
<body>
  <div id="swagger-ui" data-spec-url="/schema/openapi.json"></div>
</body>
</html>""".encode()


def openapi_config(rapport: Rapport) -> OpenAPIConfig:
    return OpenAPIConfig(
        title=f"{rapport.settings.instance_name} API",
        version="1",
        description="Rapport's REST API. Authenticate with `Authorization: Bearer <token>`; "
                    "see docs/api.md.",
        render_plugins=[LocalSwaggerUI()],
        # The schema and its page are public: the permission guard reads this opt.
        openapi_router=Router(path="/schema", route_handlers=[], opt={"public": True}),
    )


def is_api_route(path: str, handlers: list[Any]) -> bool:
    """What the API document lists: everything under /api/, and any other handler marked
    ``opt={"api": True}`` (a machine endpoint living elsewhere, such as an inbound hook)."""
    return path == "/api" or path.startswith("/api/") or any(
        h.opt.get("api") for h in handlers)


def keep_only_api_routes(app: Litestar) -> None:
    """Leave HTML pages (staff, portal, sign-in) out of the OpenAPI document: a client or a
    fuzzer reading it should see the API's operations, not every form post of the web UI.
    Done once after the app is built, so no page handler needs to remember a flag."""
    plugin = app.plugins.get(OpenAPIPlugin)
    for path, route in list(plugin.included_routes.items()):
        handlers = [handler for handler, _ in route.route_handler_map.values()]
        if not is_api_route(path, handlers):
            del plugin.included_routes[path]
    plugin._openapi = None  # built lazily on the first request, from what is left
    # The document also declares each operation's body schema and problem answers
    # (core.api_schemas); the plugin keeps its slots, only the schema method differs.
    plugin.__class__ = CompletedOpenAPIPlugin


class CompletedOpenAPIPlugin(OpenAPIPlugin):
    """Litestar's OpenAPI plugin whose document is completed by
    :func:`core.api_schemas.complete_document` when first built."""

    __slots__ = ()

    def provide_openapi_schema(self) -> dict[str, Any]:
        if not self._openapi_schema:
            from core.api_schemas import complete_document, handler_map

            self._openapi_schema = complete_document(
                self.provide_openapi().to_schema(), handler_map(self.included_routes))
        return self._openapi_schema
