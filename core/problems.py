"""API errors as RFC 9457 problem documents, naming the field to fix.

One way for core and every plugin's API to answer errors (plugins import these instead of
writing their own): ``problem`` builds the document; ``bad_request`` and ``forbidden`` are
exception handlers for Litestar's own parameter/body checks and for permission refusals.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import ClientException, PermissionDeniedException

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, field: str | None = None,
            errors: dict[str, str] | None = None) -> Response:
    """An RFC 9457 problem document; ``field`` names what to fix, ``errors`` lists every
    field found wrong."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if field:
        body["field"] = field
        body["errors"] = [{"field": f, "message": m}
                          for f, m in (errors or {field: detail}).items()]
    return Response(body, status_code=status, media_type=PROBLEM)


def bad_request(request: Request, exc: ClientException) -> Response:
    """Litestar's own parameter and body checks (bad query values, malformed JSON), as a
    problem naming the parameter (``body`` for the request body)."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = {str(e.get("key") or "body"): str(e.get("message", "is invalid"))
              for e in extra if isinstance(e, dict)}
    if "data" in errors:  # Litestar names a missing or unreadable body after the argument
        errors = {"body": "send a JSON body" if errors.pop("data") == "'data'" else
                  "is not what this operation accepts", **errors}
    field = next(iter(errors), "body")
    return problem(exc.status_code, "Bad request", f"{field}: {errors.get(field, exc.detail)}",
                   field=field, errors=errors or {field: str(exc.detail)})


def forbidden(request: Request, exc: PermissionDeniedException) -> Response:
    return problem(403, "Forbidden", str(exc.detail))
