"""Staff pages for cases: queue views, the new-case form, the case page with its conversation
and forms, attachment downloads, the 360° panel and the live queue stream.

Every case is found through ``core.permissions.scoped``: a case outside the user's scope
answers 404, exactly like one that does not exist, in lists, pages and downloads alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect, Response, ServerSentEvent, Template
from piccolo.columns.combination import WhereRaw

from core.audit import client_ip
from core.customers import finding
from core.customers.service import display_phone
from core.customers.tables import Customer
from core.identity.tables import User
from core.permissions import Actor, current_actor, redact, row_filter, scoped
from core.search.customers import find_customers
from plugins.service import attachments as files
from plugins.service import cases as service
from plugins.service.attachments import NewAttachment
from plugins.service.tables import (
    CASE_TYPES,
    OPEN_STATUSES,
    PRIORITIES,
    STATUSES,
    Case,
    CaseAttachment,
    Queue,
)
from plugins.service.uploads import too_large_message

PAGE = 50
VISIT_TYPES = ("maintenance",)  # case types whose page offers "Schedule a visit"
PANEL = 10  # open cases shown on the 360° panel; the rest through the filtered queue
VIEWS = {"mine": "My cases", "team": "My team", "open": "All open", "unassigned": "Unassigned",
         "all": "All cases"}
LIVE_EVENTS = ("service.case.created", "service.case.assigned", "service.case.replied",
               "service.case.customer_replied", "service.case.status_changed",
               "service.case.sla_warning", "service.case.sla_breached")


def perm(name: str) -> dict[str, str]:
    return {"permission": name}


def upload_form(name: str) -> dict[str, str]:
    """``opt`` of a form taking files: its body bound follows ``attachment_max_bytes``
    (``uploads.sized``), not Litestar's 10 MB."""
    return {"permission": name, "uploads": "form"}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# --- finding cases ---------------------------------------------------------------------------


async def case_for(request: Request, case_id: int, permission: str = "service.case.view"
                   ) -> dict[str, Any]:
    """The case if the user may see it (404 otherwise) and, for a change, may change it
    (403: they can see it, so its existence is no secret)."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    case = await service.visible_case(rapport, actor, case_id)
    if case is None:
        raise NotFoundException("No such case")
    if permission != "service.case.view":
        if not actor.can(permission) or await service.visible_case(
                rapport, actor, case_id, permission) is None:
            raise PermissionDeniedException("You may not change this case")
    return case


def _shown(actor: Actor, row: dict[str, Any]) -> dict[str, Any]:
    """A case row without the fields hidden from the user by field rules (the id, number and
    what the page's logic needs stay)."""
    kept = {k: row[k] for k in ("id", "number", "status", "priority", "priority_rank",
                                "is_open", "customer", "owner", "queue") if k in row}
    return {**redact(actor, Case._meta.tablename, row), **kept}


def parse_cursor(raw: str) -> tuple[int, int] | None:
    """``"<priority_rank>-<id>"`` of the last row shown; None when absent or malformed."""
    rank, _, last = (raw or "").partition("-")
    rank_value, last_id = service.cursor_id(rank), service.cursor_id(last)
    if rank_value is None or last_id is None:
        return None
    return rank_value, last_id


def list_query(rapport, actor: Actor, *, view: str = "open", status: str = "",
               priority: str = "", case_type: str = "", queue: int | None = None,
               owner: int | None = None, customer: int | None = None,
               after: tuple[int, int] | None = None, limit: int = PAGE, columns=None):
    """Cases in queue order (urgent first, then oldest), within the actor's scope, one page
    after ``after``. The filters map onto the composite indexes ``(queue|owner|team,
    is_open, priority_rank, id)`` and ``(is_open, priority_rank, id)``; "All cases" with no
    status filter onto ``(priority_rank, id)``."""
    query = Case.select(*(columns or list_columns()))
    query = scoped(query, rapport, actor, "service.case.view", Case)
    if view == "mine":
        query = query.where(Case.owner == actor.id)
    elif view == "team":
        query = query.where(Case.team.is_in(sorted(actor.team_ids)) if actor.team_ids
                            else WhereRaw("1 = 0"))
    elif view == "unassigned":
        query = query.where(Case.owner.is_null())
    if status in STATUSES:
        # is_open follows the status: stating it lets the (…, is_open, priority_rank, id)
        # indexes serve a status filter too.
        query = query.where((Case.status == status)
                            & (Case.is_open == (status in OPEN_STATUSES)))
    elif view != "all":
        query = query.where(Case.is_open == True)  # noqa: E712
    if priority in PRIORITIES:
        query = query.where(Case.priority == priority)
    if case_type in CASE_TYPES:
        query = query.where(Case.case_type == case_type)
    if queue is not None:
        query = query.where(Case.queue == queue)
    if owner is not None:
        query = query.where(Case.owner == owner)
    if customer is not None:
        query = query.where(Case.customer == customer)
    if after is not None:
        # PostgreSQL seeks a row-value comparison in the index (the equivalent OR was
        # filtered row by row from the start of the queue); SQLite ranges on priority_rank.
        query = query.where(WhereRaw(
            '("service_case"."priority_rank", "service_case"."id") > ({}, {})', *after))
    return query.order_by(Case.priority_rank).order_by(Case.id).limit(limit)


def list_columns():
    """What a queue row shows, names joined in the same query (no query per row)."""
    return [Case.id, Case.number, Case.subject, Case.status, Case.priority, Case.priority_rank,
            Case.case_type, Case.channel, Case.customer, Case.owner, Case.queue, Case.team,
            Case.first_response_due, Case.resolution_due, Case.first_responded_at,
            Case.first_response_breached, Case.resolution_breached, Case.created_at,
            Case.updated_at, Case.customer.name.as_alias("customer_name"),
            Case.owner.name.as_alias("owner_name"), Case.queue.name.as_alias("queue_name")]


def _int(raw: Any) -> int | None:
    """An id from a form or query value; None when absent, not a number or too large for a
    64-bit column (the database could not even compare it)."""
    try:
        value = int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return value if value is None or abs(value) < 2 ** 63 else None


async def staff_choices() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    users = await User.select(User.id, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.name).limit(500).run()
    queues = await Queue.select(Queue.id, Queue.name).where(Queue.active == True).order_by(  # noqa: E712
        Queue.name).limit(500).run()
    return users, queues


def sla_state(case: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """How each SLA deadline stands: met, breached, overdue or due (for badges)."""
    now = now or datetime.now(UTC)

    def state(due, done, breached) -> str:
        if due is None:
            return ""
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        if done is not None:
            done = done if done.tzinfo else done.replace(tzinfo=UTC)
            return "breached" if breached or done > due else "met"
        if breached or due < now:
            return "overdue"
        return "due"

    open_ = case.get("status") in ("new", "open", "waiting")
    return {
        "first_response": state(case.get("first_response_due"), case.get("first_responded_at"),
                                case.get("first_response_breached")),
        "resolution": state(case.get("resolution_due"),
                            None if open_ else (case.get("resolved_at") or now),
                            case.get("resolution_breached")),
    }


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    view = q.get("view") or "open"
    return {"view": view if view in VIEWS else "open", "status": q.get("status") or "",
            "priority": q.get("priority") or "", "case_type": q.get("case_type") or "",
            "queue": _int(q.get("queue")), "owner": _int(q.get("owner")),
            "customer": _int(q.get("customer"))}


def _query_string(filters: dict[str, Any], **extra: Any) -> str:
    values = {k: v for k, v in {**filters, **extra}.items() if v not in (None, "")}
    return urlencode(values)


@get("/service/cases", opt=perm("service.case.view"), name="service-cases")
async def case_list(request: Request, after: FromQuery[str] = "") -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    filters = _filters(request)
    rows = await list_query(rapport, actor, **filters, after=parse_cursor(after),
                            limit=PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_cursor = f"{rows[-1]['priority_rank']}-{rows[-1]['id']}" if more else ""
    now = datetime.now(UTC)
    context = {
        "cases": [_shown(actor, r) for r in rows], "filters": filters, "views": VIEWS, "labels": service.LABELS,
        "statuses": STATUSES, "priorities": PRIORITIES, "case_types": CASE_TYPES,
        "sla": {r["id"]: sla_state(r, now) for r in rows}, "after": after,
        "next_url": f"/service/cases?{_query_string(filters, after=next_cursor)}"
                    if next_cursor else "",
        "refresh_url": f"/service/cases?{_query_string(filters, after=after)}",
        "can_create": actor.can("service.case.create"),
    }
    if is_htmx(request) and request.headers.get("hx-target") == "case-results":
        return Template("service/cases/_results.html", context=context)
    users, queues = await staff_choices()
    return Template("service/cases/list.html", context={**context, "users": users,
                                                         "queues": queues})


@get("/service/live/cases", opt=perm("service.case.view"), include_in_schema=False)
async def case_stream(request: Request) -> ServerSentEvent:
    """Queue changes as server-sent events (``ready``, then ``change`` with the event name
    and case id). Each event is checked against the reader's row scope, so an agent hears
    only about cases they may see; the page then re-reads its rows through the list route."""
    from core.live import sse

    return sse(request, live_channel(request.app.state.rapport), check_each=False,
               visible=_visible_to_reader)


async def _visible_to_reader(rapport, actor, message: dict) -> dict | None:
    """The announcement if its case is within the reader's scope, else nothing."""
    try:
        case_id = int(message["case_id"])
    except (KeyError, TypeError, ValueError):
        return None
    visible = scoped(Case.exists().where(Case.id == case_id), rapport, actor,
                     "service.case.view", Case)
    return message if await visible.run() else None


def live_channel(rapport) -> str:
    from core.live import Channels

    return f"{Channels(rapport).prefix}_service_cases"


async def on_event(rapport, event) -> None:
    """Fan case events out to the live queue channel (a convenience: never fails a write)."""
    if event.name not in LIVE_EVENTS:
        return
    live = getattr(rapport, "live", (None, None))[0]
    if live is None:
        return
    try:
        live.publish({"event": event.name, "case_id": event.payload.get("case_id")},
                     [live_channel(rapport)])
    except Exception:  # noqa: BLE001 - live updates must never break the change they announce
        import logging

        logging.getLogger("rapport.service").exception("live publish of %s failed", event.name)


# --- new case --------------------------------------------------------------------------------


async def _customer(request: Request, customer_id: int | None) -> dict[str, Any] | None:
    """The case's customer if the user may find them: a help desk opens cases for any caller
    it may find (``core.customer.find``), not only for the customers it looks after."""
    if customer_id is None:
        return None
    return await finding.found_customer(request.app.state.rapport, current_actor(request),
                                        customer_id)


def _new_form(values: dict[str, Any], errors: dict[str, str], customer, status: int = 200
              ) -> Template:
    return Template("service/cases/new.html", status_code=status, context={
        "values": values, "errors": errors, "customer": customer, "labels": service.LABELS,
        "case_types": CASE_TYPES, "priorities": PRIORITIES,
        "channels": [c for c in service.LABELS["channel"]]})


@get("/service/cases/new", opt=perm("service.case.create"))
async def case_new(request: Request, customer: FromQuery[int | None] = None) -> Template:
    return _new_form({"priority": "normal", "case_type": "service_request",
                      "channel": "phone"}, {}, await _customer(request, customer))


@get("/service/cases/customer-options", opt=perm("service.case.create"), include_in_schema=False)
async def customer_options(request: Request) -> Template:
    """Customers matching what was typed (name, e-mail or phone, through core's search index),
    among those the user may find: the new-case form's picker."""
    typed = (request.query_params.get("customer_search") or "").strip()
    hits = []
    if len(typed) >= 2:
        hits = await find_customers(request.app.state.rapport, current_actor(request), typed,
                                    limit=15, findable=True)
    return Template("service/cases/_customer_options.html",
                    context={"hits": hits, "display_phone": display_phone})


def creator_default_owner(actor: Actor) -> int | None:
    """An agent who sees only their own (or their team's) cases owns the cases they open when
    routing gives them to nobody; otherwise the case would vanish from their sight."""
    return actor.id if actor.grants.get("service.case.view") in ("own", "team") else None


async def read_form(request: Request) -> tuple[dict[str, str], list[NewAttachment]]:
    """Text fields and uploaded files of a (multipart) form."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    uploads = []
    for item in form.getall("attachments") if "attachments" in form else []:
        if isinstance(item, str) or not getattr(item, "filename", ""):
            continue
        data = await item.read()
        uploads.append(NewAttachment(item.filename, item.content_type or "", data))
    return values, uploads


def new_case_too_large(request: Request, exc: RequestEntityTooLarge) -> Response:
    """The new-case form again, naming the field (the body was refused unread, so what was
    typed cannot be kept). Sync: Litestar's exception handlers are."""
    return _new_form({"priority": "normal", "case_type": "service_request", "channel": "phone"},
                     {"attachments": too_large_message(request.app.state.rapport)}, None,
                     status=413)


def reply_too_large(request: Request, exc: RequestEntityTooLarge) -> Response:
    """Back to the case page with the size error under the Attachments field (its page needs
    queries an exception handler cannot make; the body was refused unread)."""
    case_id = request.path_params.get("case_id")
    return Redirect(f"/service/cases/{case_id}?upload=too-large#reply-form", status_code=303)


@post("/service/cases", opt=upload_form("service.case.create"), status_code=303,
      exception_handlers={RequestEntityTooLarge: new_case_too_large})
async def case_create(request: Request) -> Response:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    values, uploads = await read_form(request)
    customer = await _customer(request, _int(values.get("customer")
                                             or values.get("customer_number")))
    if customer is None:
        return _new_form(values, {"customer": "pick a customer"}, None, status=400)
    try:
        case = await service.open_case(
            rapport, actor, customer_id=customer["id"], subject=values.get("subject", ""),
            description=values.get("description", ""),
            case_type=values.get("case_type", ""), priority=values.get("priority", ""),
            channel=values.get("channel", ""), product=values.get("product", ""),
            attachments=uploads, ip=client_ip(request),
            default_owner_id=creator_default_owner(actor))
    except service.CaseError as exc:
        return _new_form(values, {exc.field: exc.message}, customer, status=400)
    return Redirect(f"/service/cases/{case['id']}", status_code=303)


# --- one case --------------------------------------------------------------------------------


async def _page(request: Request, case: dict[str, Any], errors: dict[str, str] | None = None,
                values: dict[str, str] | None = None, status: int = 200, *,
                before: int | None = None, after: int | None = None) -> Template:
    """The case page, its conversation at the latest page or at a ``before``/``after``
    cursor (the no-JavaScript way through a long conversation)."""
    actor = current_actor(request)
    customer = await _case_customer(case, request)
    names = {}
    ids = {i for i in (case["owner"], case["created_by"]) if i}
    if ids:
        names = {u["id"]: u["name"] for u in await User.select(User.id, User.name).where(
            User.id.is_in(sorted(ids))).run()}
    queue = None
    if case["queue"]:
        queue = await Queue.select(Queue.id, Queue.name).where(
            Queue.id == case["queue"]).first().run()
    events = await service.events_of(case["id"])
    users, queues = await staff_choices() if actor.can("service.case.assign") else ([], [])
    can_edit = await _can_edit(request, case)
    page = await service.conversation_page(case["id"], include_notes=True, before=before,
                                           after=after)
    return Template("service/cases/show.html", status_code=status, context={
        "case": _shown(actor, case), "customer": customer, "names": names, "queue": queue,
        "messages": page.messages, "page": page,
        "events": await describe_events(events), "labels": service.LABELS,
        "sla": sla_state(case), "statuses": STATUSES, "priorities": PRIORITIES,
        "next_statuses": service.TRANSITIONS[case["status"]], "users": users,
        "queues": queues, "can_edit": can_edit,
        "can_assign": actor.can("service.case.assign"), "errors": errors or {},
        "values": values or {}, "kb": actor.can("service.article.view"),
        "can_visit": can_edit and case["is_open"] and case["case_type"] in VISIT_TYPES,
    })


async def _case_customer(case: dict[str, Any], request: Request | None = None
                         ) -> dict[str, Any] | None:
    """The case's customer; with ``request``, ``openable`` says whether the user may open
    the full record (else the page links to the customer's card)."""
    row = await Customer.select(Customer.id, Customer.name, Customer.primary_email).where(
        Customer.id == case["customer"]).first().run()
    if row is not None and request is not None:
        row["openable"] = bool(await finding.openable_ids(
            request.app.state.rapport, current_actor(request), [row["id"]]))
    return row


async def _can_edit(request: Request, case: dict[str, Any]) -> bool:
    actor = current_actor(request)
    return actor.can("service.case.edit") and await service.visible_case(
        request.app.state.rapport, actor, case["id"], "service.case.edit") is not None


async def describe_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events with readable old/new values: labels for statuses and priorities, names for
    agents and queues (one query each for all events)."""
    ids = {"assigned": set(), "queued": set()}
    for event in events:
        if event["kind"] in ids:
            ids[event["kind"]].update(int(v) for v in (event["old_value"], event["new_value"])
                                      if v.isdigit())
    names: dict[str, dict[str, str]] = {"assigned": {}, "queued": {}}
    if ids["assigned"]:
        names["assigned"] = {str(u["id"]): u["name"] for u in await User.select(
            User.id, User.name).where(User.id.is_in(sorted(ids["assigned"]))).run()}
    if ids["queued"]:
        names["queued"] = {str(q["id"]): q["name"] for q in await Queue.select(
            Queue.id, Queue.name).where(Queue.id.is_in(sorted(ids["queued"]))).run()}
    labels = {"status": service.LABELS["status"], "reopened": service.LABELS["status"],
              "priority": service.LABELS["priority"], **names}
    described = []
    for event in events:
        lookup = labels.get(event["kind"], {})
        described.append({**event, "old_label": lookup.get(event["old_value"],
                                                           event["old_value"]),
                          "new_label": lookup.get(event["new_value"], event["new_value"])})
    return described


@get("/service/cases/{case_id:int}", opt=perm("service.case.view"))
async def case_show(request: Request, case_id: FromPath[int], upload: FromQuery[str] = "",
                    before: FromQuery[str] = "", after: FromQuery[str] = "") -> Template:
    errors = ({"attachments": too_large_message(request.app.state.rapport)}
              if upload == "too-large" else None)
    return await _page(request, await case_for(request, case_id), errors,
                       before=service.cursor_id(before), after=service.cursor_id(after))


@get("/service/cases/{case_id:int}/conversation", opt=perm("service.case.view"),
     include_in_schema=False)
async def case_conversation(request: Request, case_id: FromPath[int],
                            before: FromQuery[str] = "") -> Response:
    """"Show earlier messages": the page of messages before ``before``, as list items that
    replace the button (htmx). Without htmx, the case page at that cursor."""
    case = await case_for(request, case_id)
    cursor = service.cursor_id(before)
    if not is_htmx(request):
        where = f"?before={cursor}" if cursor is not None else ""
        return Redirect(f"/service/cases/{case_id}{where}#conversation-title", status_code=303)
    page = await service.conversation_page(case_id, include_notes=True, before=cursor)
    return Template("service/cases/_conversation.html", context={
        "case": _shown(current_actor(request), case), "customer": await _case_customer(case),
        "messages": page.messages, "page": page, "labels": service.LABELS,
        "can_edit": await _can_edit(request, case), "errors": {}, "loaded": True})


@post("/service/cases/{case_id:int}/messages", opt=upload_form("service.case.edit"),
      status_code=303, exception_handlers={RequestEntityTooLarge: reply_too_large})
async def case_message(request: Request, case_id: FromPath[int]) -> Response:
    case = await case_for(request, case_id, "service.case.edit")
    values, uploads = await read_form(request)
    kind = values.get("kind", "reply")
    status = values.get("then_status") or None
    channel = values.get("channel", "") if kind == "inbound" else ""
    try:
        await service.add_message(request.app.state.rapport, current_actor(request), case_id,
                                  kind=kind if kind in ("reply", "note", "inbound") else "",
                                  body=values.get("body", ""), attachments=uploads,
                                  channel=channel, status=status if kind == "reply" else None,
                                  ip=client_ip(request))
    except service.CaseError as exc:
        field = "body" if exc.field in ("kind", "status") else exc.field
        return await _page(request, case, {field: exc.message}, values, status=400)
    return Redirect(f"/service/cases/{case_id}#conversation-end", status_code=303)


@post("/service/cases/{case_id:int}/messages/{message_id:int}/send-again",
      opt=perm("service.case.edit"), status_code=303)
async def case_message_send_again(request: Request, case_id: FromPath[int],
                                  message_id: FromPath[int]) -> Response:
    """E-mail an agent's reply whose delivery failed once more. Only a failed reply: one that
    was sent (or is being sent) is never sent twice, and a suppressed one would be refused
    again for the same reason."""
    from plugins.service import email_out
    from plugins.service.tables import CaseMessage

    case = await case_for(request, case_id, "service.case.edit")
    row = await CaseMessage.select(CaseMessage.id, CaseMessage.kind, CaseMessage.delivery,
                                   CaseMessage.author_user).where(
        (CaseMessage.id == message_id) & (CaseMessage.case == case_id)).first().run()
    if row is None or row["kind"] != "reply" or row["author_user"] is None:
        raise NotFoundException("No such reply")
    # The reply may be far back in a long conversation: come back to the page showing it.
    before = await service.page_holding(case_id, message_id, include_notes=True)
    if row["delivery"] != "failed":
        return await _page(request, case, {f"message-{message_id}": "This reply is not a "
                                           "failed one: it is not sent again."}, status=409,
                           before=before)
    await email_out.send_reply(request.app.state.rapport, message_id)
    where = f"?before={before}" if before is not None else ""
    return Redirect(f"/service/cases/{case_id}{where}#message-{message_id}", status_code=303)


@post("/service/cases/{case_id:int}/status", opt=perm("service.case.edit"), status_code=303)
async def case_status(request: Request, case_id: FromPath[int]) -> Response:
    case = await case_for(request, case_id, "service.case.edit")
    values = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        await service.change_status(request.app.state.rapport, current_actor(request), case_id,
                                    values.get("status", ""), ip=client_ip(request))
    except service.CaseError as exc:
        return await _page(request, case, {"status": exc.message}, values, status=400)
    return Redirect(f"/service/cases/{case_id}", status_code=303)


@post("/service/cases/{case_id:int}/priority", opt=perm("service.case.edit"), status_code=303)
async def case_priority(request: Request, case_id: FromPath[int]) -> Response:
    case = await case_for(request, case_id, "service.case.edit")
    values = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        await service.set_priority(request.app.state.rapport, current_actor(request), case_id,
                                   values.get("priority", ""), ip=client_ip(request))
    except service.CaseError as exc:
        return await _page(request, case, {"priority": exc.message}, values, status=400)
    return Redirect(f"/service/cases/{case_id}", status_code=303)


@post("/service/cases/{case_id:int}/assign", opt=perm("service.case.assign"), status_code=303)
async def case_assign(request: Request, case_id: FromPath[int]) -> Response:
    case = await case_for(request, case_id, "service.case.assign")
    values = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    owner = values.get("owner", "")
    queue = values.get("queue", "")
    try:
        await service.assign(
            request.app.state.rapport, current_actor(request), case_id,
            owner_id=(current_actor(request).id if owner == "me" else
                      (None if owner == "" else owner)) if "owner" in values
            else service.UNCHANGED,
            queue_id=(None if queue == "" else queue) if "queue" in values
            else service.UNCHANGED, ip=client_ip(request))
    except service.CaseError as exc:
        field = {"owner_id": "owner", "queue_id": "queue"}.get(exc.field, exc.field)
        return await _page(request, case, {field: exc.message}, values, status=400)
    return Redirect(f"/service/cases/{case_id}", status_code=303)


@get("/service/cases/{case_id:int}/attachments/{attachment_id:int}",
     opt=perm("service.case.view"), include_in_schema=False)
async def attachment_download(request: Request, case_id: FromPath[int],
                              attachment_id: FromPath[int]) -> File:
    """The file, if the case is within the user's scope and the file belongs to it. Always
    sent as a download (never rendered in our origin) with the sniffed type."""
    await case_for(request, case_id)
    row = await CaseAttachment.select().where(
        (CaseAttachment.id == attachment_id) & (CaseAttachment.case == case_id)).first().run()
    path = files.path_of(request.app.state.rapport, row) if row else None
    if path is None:
        raise NotFoundException("No such attachment")
    return File(path=path, filename=row["filename"], media_type=row["content_type"],
                content_disposition_type="attachment",
                headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"})


# --- 360° panel ------------------------------------------------------------------------------


@get("/service/panels/customer/{customer_id:int}/cases", opt=perm("service.case.view"),
     include_in_schema=False)
async def panel_cases(request: Request, customer_id: FromPath[int]) -> Template:
    """Open cases of a customer and their average satisfaction (404 for a customer the user
    cannot see, like the 360° page itself)."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    if await _customer(request, customer_id) is None:
        raise NotFoundException("No such customer")
    rows = await list_query(rapport, actor, view="open", customer=customer_id,
                            limit=PANEL + 1).run()
    more = len(rows) > PANEL
    rows = rows[:PANEL]
    rated = Case.select(Case.satisfaction).where(
        (Case.customer == customer_id) & Case.satisfaction.is_not_null())
    where = row_filter(rapport, actor, "service.case.view", Case)
    if where is not None:
        rated = rated.where(where)
    scores = [r["satisfaction"] for r in await rated.order_by(
        Case.id, ascending=False).limit(200).run()]
    average = round(sum(scores) / len(scores), 1) if scores else None
    return Template("service/cases/panel.html", context={
        "cases": [_shown(actor, r) for r in rows], "customer_id": customer_id, "more": more, "average": average, "ratings": len(scores),
        "labels": service.LABELS, "sla": {r["id"]: sla_state(r) for r in rows},
        "can_create": actor.can("service.case.create")})


ROUTES: list = [case_list, case_stream, case_new, customer_options, case_create, case_show,
                case_conversation, case_message, case_message_send_again, case_status, case_priority, case_assign, attachment_download,
                panel_cases]
