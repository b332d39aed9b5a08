"""The field app: one page (the shell) whose views are drawn on the device from the snapshot
kept in IndexedDB, so that it works the same online and offline."""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Template

FIELD = {"permission": "core.field.view"}


@get("/field/", opt=FIELD, include_in_schema=False)
async def field_shell(request: Request) -> Template:
    return Template("pwa/field.html")


ROUTES = [field_shell]
