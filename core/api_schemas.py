"""What every API operation accepts and answers, declared once and enforced.

An API handler declares the JSON body it accepts as a JSON Schema with :func:`accepts`:

    @accepts(obj({"name": text(300), "amount": MONEY, "owner": nullable(ID)},
                 required=["name"]))
    @post("/api/v1/sales/opportunities", opt=perm("sales.opportunity.create"))
    async def api_opportunity_create(request, data: JSONBody[dict[str, Any]]) -> Response: ...

That schema is both

- **documented**: it replaces the free-form ``object`` Litestar would put in the OpenAPI
  document, so clients (and fuzzers) know what is valid; and
- **enforced**: :func:`body_guard`, one of the app's guards, validates the decoded body before
  the handler runs and answers 422 ``application/problem+json`` naming the first field found
  wrong (``lines[2].quantity: must be at least 0``).

:func:`complete_document` also gives every API operation its error answers (400, 401, 403,
404, 409 on writes, 422), all ``application/problem+json`` with the ``Problem`` schema, so no
answer a client can get is undeclared.

The validator understands the JSON Schema keywords these helpers produce (``type`` (one or a
list), ``properties``, ``required``, ``additionalProperties: false``, ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern``, ``minimum``/``maximum``,
``enum``, ``format: date | date-time``, ``anyOf``); hand-written schemas should keep to them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from core.input_limits import MAX_DEPTH, UnacceptableInput
from core.problems import PROBLEM

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

# --- building schemas --------------------------------------------------------------------------

INT32_MAX = 2**31 - 1
ID = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
COUNT = {"type": "integer", "minimum": 0, "maximum": INT32_MAX}
BOOLEAN = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
# Amounts travel as strings ("1200.50"): at most 13 digits before the point, 4 after.
MONEY = {"type": "string", "pattern": r"^-?[0-9]{1,13}(\.[0-9]{1,4})?$",
         "description": 'a decimal amount as a string, e.g. "1200.50"'}
POSITIVE_MONEY = {**MONEY, "pattern": r"^[0-9]{1,13}(\.[0-9]{1,4})?$"}
DECIMAL = {"anyOf": [{"type": "string", "pattern": r"^-?[0-9]{1,9}(\.[0-9]{1,6})?$"},
                     {"type": "integer", "minimum": -999_999_999, "maximum": 999_999_999}],
           "description": 'a decimal number, as a string ("2.5") or a whole number'}
QUANTITY = {"anyOf": [{"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,6})?$"},
                      {"type": "integer", "minimum": 0, "maximum": 999_999_999}],
            "description": "a quantity, as a string or a whole number"}
PERCENT = {"anyOf": [{"type": "string", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,4})?$"},
                     {"type": "integer", "minimum": 0, "maximum": 100}],
           "description": "a percentage from 0 to 100"}
CURRENCY = {"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "ISO 4217 code"}
EMAIL = {"type": "string", "maxLength": 254}


def text(max_length: int = 200, min_length: int = 0, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, **extra}
    if min_length:
        schema["minLength"] = min_length
    return schema


def enum(*values: Any) -> dict[str, Any]:
    return {"enum": list(values)}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema and "anyOf" not in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: dict[str, Any], max_items: int = 500, min_items: int = 0, *,
          first_index: int = 0) -> dict[str, Any]:
    """A list; ``first_index=1`` names items from 1 in error messages (``lines[1]`` is the
    first line), for APIs whose own messages count that way."""
    schema: dict[str, Any] = {"type": "array", "items": items, "maxItems": max_items}
    if min_items:
        schema["minItems"] = min_items
    if first_index:
        schema["x-first-index"] = first_index
    return schema


def obj(properties: dict[str, Any], *, required: list[str] | tuple[str, ...] = (),
        closed: bool = False, **extra: Any) -> dict[str, Any]:
    """An object with these ``properties``; ``closed`` refuses any other key."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


EMPTY = obj({}, description="no fields are needed; an empty object")


def accepts(schema: dict[str, Any]):
    """Declare the JSON body a route handler accepts (documented and validated)."""

    def declare(handler):
        handler.opt["body_schema"] = schema
        return handler

    return declare


# --- validating --------------------------------------------------------------------------------

_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "text",
               "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "null": "null"}


def _is(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


@lru_cache(maxsize=512)
def _pattern(source: str) -> re.Pattern:
    return re.compile(source)


def _child(field: str, key: str) -> str:
    return key if field == "body" else f"{field}.{key}"


def validate(schema: dict[str, Any], value: Any, field: str = "body", depth: int = 0) -> None:
    """Raise :class:`UnacceptableInput` naming the first part of ``value`` that ``schema``
    does not allow."""
    if depth > MAX_DEPTH:
        raise UnacceptableInput(field, f"is nested more than {MAX_DEPTH} levels deep")
    if "anyOf" in schema:
        problems = []
        for option in schema["anyOf"]:
            try:
                validate(option, value, field, depth)
                break
            except UnacceptableInput as exc:
                problems.append(exc)
        else:
            described = schema.get("description")
            if described:
                raise UnacceptableInput(field, f"must be {described}")
            # The first alternative that is not null says best what was meant.
            meant = [p for option, p in zip(schema["anyOf"], problems, strict=True)
                     if option != {"type": "null"}]
            raise (meant or problems)[0]
    if "enum" in schema and value not in schema["enum"]:
        shown = ", ".join("null" if v is None else str(v) for v in schema["enum"])
        raise UnacceptableInput(field, f"must be one of {shown}")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, kind) for kind in kinds):
            raise UnacceptableInput(field, "must be " + " or ".join(
                _TYPE_WORDS.get(k, k) for k in kinds))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise UnacceptableInput(field, "must not be empty" if schema["minLength"] == 1
                                    else f"must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise UnacceptableInput(field, f"must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            raise UnacceptableInput(field, f"must be {schema.get('description') or 'in the documented format'}")
        fmt = schema.get("format")
        if fmt == "date":
            try:
                date.fromisoformat(value)
            except ValueError:
                raise UnacceptableInput(field, "must be a date like 2026-12-31") from None
        elif fmt == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise UnacceptableInput(
                    field, "must be a date and time like 2026-12-31T09:30:00Z") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise UnacceptableInput(field, f"must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise UnacceptableInput(field, f"must be at most {schema['maximum']}")
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise UnacceptableInput(field, f"must have at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise UnacceptableInput(field, f"must have at most {schema['maxItems']} items")
        items = schema.get("items")
        if items:
            for index, item in enumerate(value, start=schema.get("x-first-index", 0)):
                validate(items, item, f"{field}[{index}]", depth + 1)
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise UnacceptableInput(_child(field, name), "is required")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                validate(properties[key], item, _child(field, key), depth + 1)
            elif extra is False:
                raise UnacceptableInput(_child(field, key), "is not a field here")
            elif isinstance(extra, dict):
                validate(extra, item, _child(field, key), depth + 1)


async def body_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The app-wide guard validating a JSON body against its handler's declared schema."""
    schema = handler.opt.get("body_schema")
    if schema is None or connection.scope.get("method") in ("GET", "HEAD", "OPTIONS", None):
        return
    body = connection.scope.get("rapport_input", {}).get("body", _MISSING)
    if body is _MISSING:
        try:
            body = await connection.json()
        except Exception:
            return  # unreadable JSON: Litestar's 400 (a problem naming the body) follows
    validate(schema, body)


_MISSING = object()


# --- the document ------------------------------------------------------------------------------

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document; field names what to fix.",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "field": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}
ERRORS = {
    "400": "The request could not be read (a malformed parameter or body)",
    "401": "Not signed in: send Authorization: Bearer <token>",
    "403": "The token or its user lacks the permission this operation needs",
    "404": "No such record, or one out of the caller's reach",
    "409": "The record's state does not allow this change",
    "422": "A field is invalid; field names it",
}


def _route_key(path: str) -> str:
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def complete_document(document: dict[str, Any], handlers: dict[tuple[str, str], Any]
                      ) -> dict[str, Any]:
    """Add declared request bodies and problem answers to every operation of ``document``;
    ``handlers`` maps ``(path, METHOD)`` (path parameters without types) to route handlers."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            handler = handlers.get((path, method.upper()))
            schema = handler.opt.get("body_schema") if handler is not None else None
            if schema is not None:
                operation["requestBody"] = {
                    "required": True, "content": {"application/json": {"schema": schema}}}
            responses = operation["responses"]
            if method.lower() == "post":
                # A POST answers 201 when it creates and 200 when it changes, or when a retry
                # with the same idempotency key or client id finds what it made before.
                for have, also in (("201", "200"), ("200", "201")):
                    if have in responses and also not in responses:
                        responses[also] = {**responses[have], "description": (
                            "Created" if also == "201" else "Done, or already done before")}
            for code, description in ERRORS.items():
                if code == "409" and method.lower() == "get":
                    continue
                responses[code] = {"description": description,
                                   "content": {PROBLEM: {"schema": ref}}}
    return document


def handler_map(routes: dict[str, Any]) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for path, route in routes.items():
        for method, (handler, _) in route.route_handler_map.items():
            found[(_route_key(path), str(method).upper())] = handler
    return found
