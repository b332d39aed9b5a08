"""How large a request carrying attachments may be, for each app from its settings.

Litestar refuses a body over its route's ``request_max_body_size`` before the handler runs
(``Request.stream`` checks the announced length, then the bytes read). Each file is checked
against ``attachment_max_bytes`` by the attachment service, which names the field; a body
bound fixed when the module is imported would refuse the files an administrator allowed by
raising that setting. So the routes that take files say so (``opt={"uploads": "form"}`` or
``"json"``) and :func:`sized` gives each app copies of them bounded by its own settings,
when the plugin's routes are registered. Their handlers for ``RequestEntityTooLarge`` explain
the refusal with :func:`too_large_message`, naming the attachments.
"""

from __future__ import annotations

from copy import copy
from typing import TYPE_CHECKING, Any

from litestar.handlers import HTTPRouteHandler

from plugins.service.attachments import megabytes

if TYPE_CHECKING:
    from core.app import Rapport

UPLOAD_FILES = 5  # files of the largest allowed size that one form or API call may carry
OTHER_FIELDS = 1024 * 1024  # the text of the form or JSON body besides its files
ENCODINGS = ("form", "json")  # multipart bytes; base64 in JSON (4 bytes for every 3)


def body_limit(settings: Any, encoding: str) -> int:
    """The largest body a route taking files as ``encoding`` accepts under ``settings``:
    51 MB for a form and about 68 MB for JSON with the default 10 MB per file."""
    per_file = settings.attachment_max_bytes
    if encoding == "json":
        per_file = -(-per_file // 3) * 4
    return UPLOAD_FILES * per_file + OTHER_FIELDS


def sized(rapport: Rapport, routes: list[Any]) -> list[Any]:
    """``routes`` with every handler that takes files replaced by a copy bounded by this
    app's ``attachment_max_bytes`` (the module's handlers stay untouched: several apps, with
    different settings, may register them)."""
    settings = rapport.plugin_settings("service")
    result = []
    for handler in routes:
        encoding = handler.opt.get("uploads") if isinstance(handler, HTTPRouteHandler) else None
        if encoding is not None:
            if encoding not in ENCODINGS:
                raise ValueError(f"{handler.handler_name}: opt 'uploads' must be one of "
                                 f"{ENCODINGS}, not {encoding!r}")
            handler = copy(handler)
            handler.request_max_body_size = body_limit(settings, encoding)
        result.append(handler)
    return result


def too_large_message(rapport: Rapport, encoding: str = "form") -> str:
    """Why a body over the bound was refused, for the Attachments field (or the API's
    problem document naming ``attachments``)."""
    settings = rapport.plugin_settings("service")
    limit = megabytes(body_limit(settings, encoding))
    if encoding == "json":
        return (f"the request is larger than {limit}; send fewer or smaller files (each at "
                f"most {megabytes(settings.attachment_max_bytes)})")
    return (f"The files are too large together: at most {limit} per form. Send fewer or "
            f"smaller files.")
