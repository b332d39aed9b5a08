"""What no route accepts, checked once for every route before its handler runs: integers the
database cannot hold and NUL characters. Both are refused with 422 naming the parameter or
field, instead of reaching the database (where they were a 500 on PostgreSQL, or stored).

- **Integers.** Ids are ``Serial``/``Integer`` columns: 32-bit (``INTEGER``) on PostgreSQL,
  64-bit on SQLite. An integer path parameter, or a query parameter the handler declares as an
  integer, must fit that range. Integers in a JSON body must fit 64 bits everywhere (no column
  holds more); one that passes that but still overflows a 32-bit column on PostgreSQL is caught
  where the database refuses it (:func:`integer_overflow`) and named the same way.
- **NUL** (``\\x00``) cannot be stored in PostgreSQL text at all, and SQLite would keep it: it is
  refused in path and query parameters, form fields (and upload file names) and JSON strings
  and keys.

The check runs as the app's second guard, after the permission guard, so an anonymous caller
learns nothing from it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from litestar.exceptions import HTTPException

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
INTEGER = re.compile(r"\s*[+-]?\d+\s*")
MAX_DEPTH = 64  # deeper JSON is refused (no body the API accepts nests half as deep)


class UnacceptableInput(HTTPException):
    """A value no route accepts; answered 422 naming ``field``."""

    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(detail=f"{field}: {message}")
        self.field = field
        self.message = message


def integer_range(connection: ASGIConnection) -> tuple[int, int]:
    """What an id or integer column holds on this instance's database."""
    rapport = connection.app.state.rapport
    return INT32 if rapport.settings.database_url.startswith("postgres") else INT64


def _out_of_range(value: int, bounds: tuple[int, int]) -> bool:
    return not bounds[0] <= value <= bounds[1]


def _range_message(bounds: tuple[int, int]) -> str:
    return f"must be a whole number between {bounds[0]} and {bounds[1]}"


NUL_MESSAGE = "must not contain NUL characters"

_INT_QUERY: dict[Any, frozenset[str]] = {}


def _declares_int(field) -> bool:
    if field.is_optional:
        return any(_declares_int(t) for t in field.inner_types if t.annotation is not type(None))
    if field.is_non_string_sequence:
        return any(_declares_int(t) for t in field.inner_types)
    return field.annotation is int


def int_query_parameters(handler: BaseRouteHandler) -> frozenset[str]:
    """The query parameter names (aliases included) the handler declares as integers."""
    key = handler.fn
    names = _INT_QUERY.get(key)
    if names is None:
        path_names = {p for h in [handler] for path in h.paths for p in
                      re.findall(r"\{(\w+):", path)}
        found = set()
        for name, field in handler.parsed_fn_signature.parameters.items():
            if name in path_names or name in {"data", "request", "socket", "state", "scope",
                                              "headers", "cookies", "query", "body"}:
                continue
            definition = field.kwarg_definition
            if getattr(definition, "header", None) or getattr(definition, "cookie", None):
                continue
            kind = str(getattr(getattr(definition, "param_type", None), "value", "query"))
            if kind.lower() not in ("query", "none"):
                continue
            if _declares_int(field):
                found.add(getattr(definition, "name", None) or getattr(definition, "query", None)
                          or name)
        names = _INT_QUERY[key] = frozenset(found)
    return names


def check_text(field: str, value: str) -> None:
    if "\x00" in value:
        raise UnacceptableInput(field, NUL_MESSAGE)


def check_json(value: Any, field: str = "body", depth: int = 0) -> None:
    """NUL in strings or keys, integers beyond 64 bits, anywhere in a decoded JSON body."""
    if depth > MAX_DEPTH:
        raise UnacceptableInput(field, f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        check_text(field, value)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if _out_of_range(value, INT64):
            raise UnacceptableInput(field, _range_message(INT64))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key if field == "body" else f"{field}.{key}"
            check_text(name, str(key))
            check_json(item, name, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{field}[{index}]", depth + 1)


async def input_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The app-wide guard refusing out-of-range integers and NUL characters (see module doc)."""
    bounds = integer_range(connection)
    # Kept for integer_overflow, which names the field when the database still refuses one.
    values: dict[str, Any] = dict(connection.path_params)
    connection.scope["rapport_input"] = values
    for name, value in connection.path_params.items():
        if isinstance(value, int) and not isinstance(value, bool):
            if _out_of_range(value, bounds):
                raise UnacceptableInput(name, _range_message(bounds))
        elif isinstance(value, str):
            check_text(name, value)
    int_names = int_query_parameters(handler)
    for name, value in connection.query_params.multi_items():
        values.setdefault(name, value)
        check_text(name, name)
        check_text(name, value)
        if name in int_names and INTEGER.fullmatch(value) and _out_of_range(int(value), bounds):
            raise UnacceptableInput(name, _range_message(bounds))
    if connection.scope["type"] != "http" or connection.scope.get("method") in (
            "GET", "HEAD", "OPTIONS"):
        return
    content_type = (connection.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await connection.form()  # cached: the handler reads the same parsed form
        for name, value in form.multi_items():
            check_text(name, name)
            if isinstance(value, str):
                values.setdefault(name, value)
                check_text(name, value)
            elif getattr(value, "filename", None):
                check_text(name, value.filename)
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            body = await connection.json()
        except RecursionError:  # the decoder gives up on deep nesting: refuse it here
            raise UnacceptableInput("body", f"is nested more than {MAX_DEPTH} levels deep"
                                    ) from None
        except Exception:
            return  # malformed JSON is the handler's (or Litestar's) 400 to give
        check_json(body)
        values["body"] = body


def offending_field(values: dict[str, Any], bounds: tuple[int, int]) -> str | None:
    """The first field among decoded request values holding an integer beyond ``bounds``."""
    for name, value in values.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and _out_of_range(value, bounds):
            return name
        if isinstance(value, str) and INTEGER.fullmatch(value) and len(value) < 400 and \
                _out_of_range(int(value), bounds):
            return name
        if isinstance(value, dict):
            found = offending_field({f"{name}.{k}" if name != "body" else k: v
                                     for k, v in value.items()}, bounds)
            if found:
                return found
        if isinstance(value, list):
            found = offending_field({f"{name}[{i}]": v for i, v in enumerate(value)}, bounds)
            if found:
                return found
    return None


def is_integer_overflow(exc: BaseException) -> bool:
    """Whether the database refused an integer it cannot hold."""
    text = str(exc)
    if isinstance(exc, OverflowError):
        return "too large to convert" in text or "int too big" in text
    return any(marker in text for marker in (
        "out of int32 range", "out of int64 range", "out of int16 range",
        "integer out of range", "bigint out of range", "value out of range"))


# --- customer import (core.customers.importing) ----------------------------------------------
# The largest file the import page accepts, streamed to disk, never held in memory whole.
IMPORT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
# The longest value one CSV cell may hold; a longer one makes its row bad (named by line),
# it is not read into memory whole. No importable field is longer than notes (20,000).
IMPORT_MAX_CELL_CHARS = 65_536
# Uploads not imported are deleted this many hours after their last step (a recurring job).
IMPORT_KEEP_HOURS = 24
