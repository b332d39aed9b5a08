"""REST API for cases under ``/api/v1/service/cases``.

Lists page by keyset (``?after=<cursor>`` from the previous page's ``next``, ``?limit=`` up to
200): cases in queue order, a case's messages newest first (the case itself carries the newest
page). Errors are ``application/problem+json`` naming the offending field; a case outside the
caller's scope answers 404 like one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from litestar.response import File

from core.api_schemas import accepts
from core.audit import client_ip
from core.customers import finding
from core.permissions import current_actor, redact
from core.problems import bad_request, forbidden, problem
from plugins.service import api_bodies as bodies
from plugins.service import attachments as files
from plugins.service import cases as service
from plugins.service.attachments import NewAttachment
from plugins.service.cases_web import (
    creator_default_owner,
    list_query,
    parse_cursor,
)
from plugins.service.tables import CASE_TYPES, PRIORITIES, STATUSES, Case, CaseAttachment
from plugins.service.uploads import too_large_message

MAX_LIMIT = 200
MAX_ATTACHMENTS = 10
MESSAGE_PAGE = service.CONVERSATION_PAGE  # messages a case carries; more through /messages


class CaseNotFound(LookupError):
    pass



def too_large(request: Request, exc: Exception) -> Response:
    return problem(413, "Request too large",
                   f"attachments: {too_large_message(request.app.state.rapport, 'json')}",
                   field="attachments")


def case_error(request: Request, exc: service.CaseError) -> Response:
    return problem(422, "Invalid case", f"{exc.field}: {exc.message}", field=exc.field)


def not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "Not found", str(exc) or "No such case")




API: dict[str, Any] = {
    "exception_handlers": {service.CaseError: case_error, CaseNotFound: not_found,
                           NotFoundException: not_found, PermissionDeniedException: forbidden,
                           ClientException: bad_request},
    "tags": ["service"],
}
# Routes that take files (base64 in JSON): their body bound follows attachment_max_bytes
# (``uploads.sized``, opt "uploads"), and a larger body gets a problem naming "attachments".
API_UPLOAD: dict[str, Any] = {
    **API, "exception_handlers": {**API["exception_handlers"], RequestEntityTooLarge: too_large},
}
CASE_FIELDS = ("id", "number", "subject", "description", "case_type", "priority", "status",
               "is_open", "channel", "customer", "product", "product_ref", "queue", "owner",
               "team", "created_by", "sla_policy", "first_response_due", "resolution_due",
               "first_responded_at", "resolved_at", "closed_at", "first_response_breached",
               "resolution_breached", "reopened_count", "satisfaction", "satisfaction_comment",
               "rated_at", "created_at", "updated_at")


def _case(row: dict[str, Any], actor) -> dict[str, Any]:
    """A case as the API shows it; fields hidden from the caller by field rules are left
    out altogether."""
    row = redact(actor, Case._meta.tablename, row)
    out = {k: row.get(k) for k in CASE_FIELDS if k in row}
    for name in ("customer_name", "owner_name", "queue_name"):
        if name in row:
            out[name] = row[name]
    out["url"] = f"/api/v1/service/cases/{row['id']}"
    return out


def _attachment(case_id: int, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "filename": row["filename"], "content_type": row["content_type"],
            "size": row["size"], "sha256": row["sha256"],
            "visible_to_customer": row["visible_to_customer"],
            "url": f"/api/v1/service/cases/{case_id}/attachments/{row['id']}"}


def _message(case_id: int, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "body": row["body"],
            "channel": row["channel"], "author_user": row["author_user"],
            "author_customer": row["author_customer"], "author_email": row["author_email"],
            "delivery": row.get("delivery", ""),
            "delivery_detail": row.get("delivery_detail", ""), "created_at": row["created_at"],
            "attachments": [_attachment(case_id, a) for a in row.get("attachments", [])]}


async def _visible(request: Request, case_id: int, permission: str = "service.case.view"
                   ) -> dict[str, Any]:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    case = await service.visible_case(rapport, actor, case_id)
    if case is None:
        raise CaseNotFound("No such case")
    if permission != "service.case.view" and await service.visible_case(
            rapport, actor, case_id, permission) is None:
        raise PermissionDeniedException("you may not change this case")
    return case


def _message_cursor(after: str | None) -> int | None:
    """The message id a ``next`` cursor holds; anything else is a 422 naming ``after``, as
    for every list's cursor in the API."""
    if not after:
        return None
    cursor = service.cursor_id(after)
    if cursor is None:
        raise service.CaseError("after", "is not a cursor from this list (a message id)")
    return cursor


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise service.CaseError("body", "must be a JSON object")
    return data


def _uploads(data: dict[str, Any]) -> list[NewAttachment]:
    """Attachments given as ``[{"filename", "content_base64"}]`` (the type is sniffed)."""
    raw = data.get("attachments") or []
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise service.CaseError("attachments", f"must be a list of at most {MAX_ATTACHMENTS} "
                                               "files")
    uploads = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("content_base64"), str):
            raise service.CaseError("attachments", "each file needs filename and "
                                                   "content_base64")
        try:
            data_bytes = base64.b64decode(item["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise service.CaseError("attachments", "content_base64 is not base64") from None
        uploads.append(NewAttachment(str(item.get("filename") or "attachment"),
                                     str(item.get("content_type") or ""), data_bytes))
    return uploads


@get("/api/v1/service/cases", opt={"permission": "service.case.view"}, **API,
     summary="List cases")
async def api_cases(
    request: Request,
    view: Annotated[str, Parameter(description="mine, team, open, unassigned or all")] = "open",
    status: Annotated[str | None, Parameter(description=f"One of {STATUSES}")] = None,
    priority: Annotated[str | None, Parameter(description=f"One of {PRIORITIES}")] = None,
    case_type: Annotated[str | None, Parameter(description=f"One of {CASE_TYPES}")] = None,
    queue: Annotated[int | None, Parameter(description="Queue id")] = None,
    owner: Annotated[int | None, Parameter(description="Owner's user id")] = None,
    customer: Annotated[int | None, Parameter(description="Customer id")] = None,
    after: Annotated[str | None, Parameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """Cases the caller may see in queue order: most urgent first, then oldest. Follow
    ``next`` (a cursor for ``after``) until it is ``null``."""
    for name, value, allowed in (("view", view, ("mine", "team", "open", "unassigned", "all")),
                                 ("status", status, STATUSES),
                                 ("priority", priority, PRIORITIES),
                                 ("case_type", case_type, CASE_TYPES)):
        if value and value not in allowed:
            raise service.CaseError(name, f"must be one of {', '.join(allowed)}")
    cursor = parse_cursor(after or "")
    if after and cursor is None:
        raise service.CaseError("after", "is not a cursor from this list")
    rows = await list_query(request.app.state.rapport, current_actor(request), view=view,
                            status=status or "", priority=priority or "",
                            case_type=case_type or "", queue=queue, owner=owner,
                            customer=customer, after=cursor, limit=limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [_case(r, current_actor(request)) for r in rows],
            "next": f"{rows[-1]['priority_rank']}-{rows[-1]['id']}" if more else None}


@accepts(bodies.CASE)
@post("/api/v1/service/cases", opt={"permission": "service.case.create", "uploads": "json"},
      **API_UPLOAD,
      summary="Open a case")
async def api_case_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Open a case for a customer. Body: ``customer_id``, ``subject``, ``description``,
    ``case_type``, ``priority``, ``channel``, ``product``, ``product_ref``, ``attachments``
    (``[{"filename", "content_base64"}]``). Routing and SLA deadlines apply."""
    data = _object(data)
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer_id = data.get("customer_id")
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        raise service.CaseError("customer_id", "must be a customer id")
    # Any customer the caller may find (core.customer.find), as on the new-case form.
    visible = await finding.found_customer(rapport, actor, customer_id)
    if visible is None:
        raise service.CaseError("customer_id", "no such customer")
    unknown = sorted(set(data) - {"customer_id", "subject", "description", "case_type",
                                  "priority", "channel", "product", "product_ref",
                                  "attachments"})
    if unknown:
        raise service.CaseError(unknown[0], "is not a field of a case")
    case = await service.open_case(
        rapport, actor, customer_id=customer_id, subject=str(data.get("subject") or ""),
        description=str(data.get("description") or ""),
        case_type=str(data.get("case_type") or "service_request"),
        priority=str(data.get("priority") or "normal"),
        channel=str(data.get("channel") or "phone"), product=str(data.get("product") or ""),
        product_ref=str(data.get("product_ref") or ""), attachments=_uploads(data),
        ip=client_ip(request), default_owner_id=creator_default_owner(actor))
    return Response(_case(case, actor), status_code=201,
                    headers={"location": f"/api/v1/service/cases/{case['id']}"})


@get("/api/v1/service/cases/{case_id:int}", opt={"permission": "service.case.view"}, **API,
     summary="Get a case")
async def api_case(request: Request, case_id: FromPath[int]) -> dict[str, Any]:
    """A case with the newest page of its conversation in ``messages`` (at most 50, oldest
    of them first; internal notes included: this is the staff API) and its history.
    ``messages_next`` is the ``after`` cursor of ``/messages`` for the earlier ones, ``null``
    when ``messages`` holds the whole conversation."""
    case = await _visible(request, case_id)
    actor = current_actor(request)
    messages, earlier = await service.message_list(
        case_id, include_notes=actor.kind == "staff", limit=MESSAGE_PAGE)
    events = await service.events_of(case_id)
    return {**_case(case, actor),
            "messages": [_message(case_id, m) for m in reversed(messages)],
            "messages_next": None if earlier is None else str(earlier),
            "events": [{"kind": e["kind"], "old": e["old_value"], "new": e["new_value"],
                        "user": e["user"], "at": e["at"]} for e in events]}


@get("/api/v1/service/cases/{case_id:int}/messages", opt={"permission": "service.case.view"},
     **API, summary="List a case's messages")
async def api_case_messages(
    request: Request,
    case_id: FromPath[int],
    order: Annotated[str, QueryParameter(description="newest (default) or oldest first")
                     ] = "newest",
    after: Annotated[str | None, QueryParameter(
        description="Cursor: the previous page's next, or the case's messages_next")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """A case's conversation a page at a time, by keyset on the message id: newest first
    (``order=oldest``: from the first message on). Follow ``next`` (a cursor for ``after``)
    until it is ``null``; the case's ``messages_next`` continues from its newest page.
    Internal notes are included (staff API), each message with its attachments."""
    if order not in ("newest", "oldest"):
        raise service.CaseError("order", "must be one of newest, oldest")
    cursor = _message_cursor(after)
    await _visible(request, case_id)
    messages, following = await service.message_list(
        case_id, include_notes=current_actor(request).kind == "staff", after=cursor,
        oldest_first=order == "oldest", limit=limit)
    return {"data": [_message(case_id, m) for m in messages],
            "next": None if following is None else str(following)}


@accepts(bodies.MESSAGE)
@post("/api/v1/service/cases/{case_id:int}/messages",
      opt={"permission": "service.case.edit", "uploads": "json"}, **API_UPLOAD,
      summary="Reply or add an internal note")
async def api_case_message(request: Request, case_id: FromPath[int],
                           data: JSONBody[dict[str, Any]]) -> Response:
    """Body: ``kind`` ("reply" to the customer, "note", internal, or "inbound": what the
    customer told an agent, with ``channel``), ``body``, optional ``status`` after a reply
    (default: waiting on the customer), ``attachments``."""
    data = _object(data)
    await _visible(request, case_id, "service.case.edit")
    kind = data.get("kind", "reply")
    if kind not in ("reply", "note", "inbound"):
        raise service.CaseError("kind", "must be reply, note or inbound")
    message = await service.add_message(
        request.app.state.rapport, current_actor(request), case_id, kind=kind,
        body=str(data.get("body") or ""), attachments=_uploads(data),
        channel=str(data.get("channel") or "") if kind == "inbound" else "",
        status=str(data["status"]) if data.get("status") and kind == "reply" else None,
        ip=client_ip(request))
    return Response(_message(case_id, message), status_code=201)


@accepts(bodies.STATUS)
@post("/api/v1/service/cases/{case_id:int}/status", opt={"permission": "service.case.edit"},
      **API, summary="Change a case's status", status_code=200)
async def api_case_status(request: Request, case_id: FromPath[int],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Body: ``status``: new → open → waiting ↔ open → resolved → closed; resolved or closed
    cases may be reopened (open)."""
    data = _object(data)
    await _visible(request, case_id, "service.case.edit")
    case = await service.change_status(request.app.state.rapport, current_actor(request),
                                       case_id, str(data.get("status") or ""),
                                       ip=client_ip(request))
    return _case(case, current_actor(request))


@accepts(bodies.PRIORITY)
@post("/api/v1/service/cases/{case_id:int}/priority", opt={"permission": "service.case.edit"},
      **API, summary="Change a case's priority", status_code=200)
async def api_case_priority(request: Request, case_id: FromPath[int],
                            data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Body: ``priority``. The SLA deadlines follow the new priority."""
    data = _object(data)
    await _visible(request, case_id, "service.case.edit")
    case = await service.set_priority(request.app.state.rapport, current_actor(request),
                                      case_id, str(data.get("priority") or ""),
                                      ip=client_ip(request))
    return _case(case, current_actor(request))


@accepts(bodies.ASSIGNMENT)
@post("/api/v1/service/cases/{case_id:int}/assign", opt={"permission": "service.case.assign"},
      **API, summary="Assign a case", status_code=200)
async def api_case_assign(request: Request, case_id: FromPath[int],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Body: ``owner_id`` and/or ``queue_id`` (``null`` clears; a missing key leaves it)."""
    data = _object(data)
    await _visible(request, case_id, "service.case.assign")
    for name in ("owner_id", "queue_id"):
        value = data.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise service.CaseError(name, "must be an id or null")
    case = await service.assign(
        request.app.state.rapport, current_actor(request), case_id,
        owner_id=data["owner_id"] if "owner_id" in data else service.UNCHANGED,
        queue_id=data["queue_id"] if "queue_id" in data else service.UNCHANGED,
        ip=client_ip(request))
    return _case(case, current_actor(request))


@get("/api/v1/service/cases/{case_id:int}/attachments/{attachment_id:int}",
     opt={"permission": "service.case.view"}, **API, summary="Download an attachment")
async def api_attachment(request: Request, case_id: FromPath[int],
                         attachment_id: FromPath[int]) -> File:
    """The file as uploaded, with its sniffed type."""
    await _visible(request, case_id)
    row = await CaseAttachment.select().where(
        (CaseAttachment.id == attachment_id) & (CaseAttachment.case == case_id)).first().run()
    path = files.path_of(request.app.state.rapport, row) if row else None
    if path is None:
        raise CaseNotFound("No such attachment")
    return File(path=path, filename=row["filename"], media_type=row["content_type"],
                content_disposition_type="attachment",
                headers={"X-Content-Type-Options": "nosniff"})


ROUTES: list = [api_cases, api_case_create, api_case, api_case_messages, api_case_message,
                api_case_status, api_case_priority, api_case_assign, api_attachment]
