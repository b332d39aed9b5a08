"""Portal pages: help (public articles), requests (open, follow, reply, attach, rate).

Mounted under ``/portal/`` by core behind the portal guard. Isolation is absolute and comes
from two rules kept in this one module:

- cases are always read through :func:`cases.visible_case` / ``scoped(...,
  "service.portal.view", Case)``: a portal actor's row filter is "my ``customer`` only", so
  another customer's case answers 404 like one that does not exist;
- a case's conversation comes from ``cases.conversation_page(include_notes=False)``, a page
  at a time: internal notes and their files never reach these pages; articles from :mod:`kb` with
  ``audience="public"``: internal articles and drafts never do either.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect, Response, Template

from core.audit import client_ip
from core.permissions import Actor, current_actor, scoped
from core.plugin import NavItem, Panel
from core.portal.pages import render
from core.portal.web import touch_point
from plugins.service import attachments as files
from plugins.service import cases, kb
from plugins.service.attachments import NewAttachment
from plugins.service.tables import (
    OPEN_STATUSES,
    Article,
    ArticleCategory,
    Case,
    CaseAttachment,
    CaseMessage,
)
from plugins.service.uploads import too_large_message

PERMISSION = "service.portal.view"
PORTAL = {"permission": PERMISSION}
PAGE = 25
# A request may carry several files; each is checked against ``attachment_max_bytes`` by the
# case service, which explains a refusal next to the field. The forms' body bound follows that
# setting (``uploads.sized``); a larger body comes back to the form with the error.
UPLOAD_FORM = {**PORTAL, "uploads": "form"}
TOO_LARGE = "too-large"  # ?upload= of the page a refused body is sent back to
# What a customer may ask for; priority is the team's call (routing rules may raise it).
REQUEST_TYPES = {
    "service_request": "I need help with something",
    "information_request": "I have a question",
    "complaint": "I want to complain",
    "product_return": "I want to return a product",
    "maintenance": "Something needs repair or maintenance",
}
STATUS_LABELS = {"new": "Received", "open": "In progress", "waiting": "Waiting for your reply",
                 "resolved": "Resolved", "closed": "Closed"}
FIELD_LABELS = {"subject": "Subject", "description": "Description", "case_type": "Type",
                "product": "Product", "body": "Message", "attachments": "Attachments",
                "score": "Rating", "comment": "Comment"}


# --- hooks -----------------------------------------------------------------------------------


def nav_items(customer):
    return [NavItem("Help", "/portal/service/help", order=40),
            NavItem("Requests", "/portal/service/requests", order=41)]


def home_cards(customer):
    return [Panel("service-requests", "Your open requests", url="/portal/service/requests/card",
                  order=30)]


def history_panels(customer):
    return [Panel("service-requests-history", "Your requests",
                  url="/portal/service/requests/panel", order=30)]


# --- helpers ---------------------------------------------------------------------------------



def _actor(request: Request) -> Actor:
    actor = current_actor(request)
    if actor.kind != "portal" or actor.customer_id is None:
        raise NotFoundException("not found")
    return actor


def _own_cases(request: Request, *columns):
    query = Case.select(*columns)
    return scoped(query, request.app.state.rapport, _actor(request), PERMISSION, Case)


async def _own_case(request: Request, case_id: int) -> dict[str, Any]:
    case = await cases.visible_case(request.app.state.rapport, _actor(request), case_id,
                                    PERMISSION)
    if case is None:
        raise NotFoundException("not found")
    return case


def _problem(exc: cases.CaseError | kb.ArticleError) -> dict[str, str]:
    """``CaseError`` messages continue the field's name ("is required"): say which field."""
    message = exc.message
    label = FIELD_LABELS.get(exc.field, exc.field.replace("_", " ").capitalize())
    if message.split(" ", 1)[0] in ("is", "are", "must", "has"):
        message = f"{label} {message}."
    elif exc.field != "attachments" and message[:1].islower():
        # Attachment messages start with the file's name, which keeps its own case.
        message = message[0].upper() + message[1:] + "."
    elif not message.endswith("."):
        message += "."
    return {exc.field: message}


async def _uploads(form, name: str = "attachments") -> list[NewAttachment]:
    uploads = []
    for item in form.getall(name, []):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read()
            if data:
                uploads.append(NewAttachment(filename=item.filename,
                                             content_type=item.content_type or "", data=data))
    return uploads


def _text(form, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _context() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS, "kind_labels": kb.KIND_LABELS,
            "request_types": REQUEST_TYPES}


# --- help: public articles -------------------------------------------------------------------


@get("/service/help", opt=PORTAL, name="portal-service-help")
async def help_index(request: Request, q: FromQuery[str] = "", kind: FromQuery[str] = "",
                     category: FromQuery[str] = "") -> Template:
    _actor(request)
    kind = kind if kind in kb.KINDS else ""
    # Only topics with something public in them: a category of internal articles is not
    # even named to customers.
    public_categories = ArticleCategory.id.is_in(Article.select(Article.category).where(
        kb.visibility(None, audience="public") & Article.category.is_not_null()))
    categories = await ArticleCategory.select().where(public_categories).order_by(
        ArticleCategory.position).order_by(ArticleCategory.name).limit(200).run()
    chosen = next((c for c in categories if c["slug"] == category), None)
    where = kb.visibility(None, audience="public")
    if kind:
        where = where & (Article.kind == kind)
    if chosen is not None:
        where = where & (Article.category == chosen["id"])
    if q.strip():
        rows = [r.article for r in await kb.rank(q, where, 30, phrase=True)]
        for row in rows:
            row["snippet"] = kb.snippet(row.pop("body", ""))
    else:
        # The index lists titles only: no article bodies are read for it.
        rows = await Article.select(
            Article.id, Article.title, Article.slug, Article.kind, Article.product,
            Article.category).where(where).order_by(Article.title).limit(500).run()
    groups: dict[int | None, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["category"], []).append(row)
    sections = [(c, groups[c["id"]]) for c in categories if c["id"] in groups]
    if None in groups:
        sections.append((None, groups[None]))
    return await render(request, "service/portal/help.html", {
        **_context(), "q": q, "kind": kind, "category": chosen, "categories": categories,
        "kinds": kb.KINDS, "sections": sections, "results": rows if q.strip() else None})


@get("/service/help/{slug:str}", opt=PORTAL)
async def help_article(request: Request, slug: FromPath[str]) -> Template:
    actor = _actor(request)
    article = await kb.public_article(slug)
    if article is None:
        raise NotFoundException("not found")
    category = None
    if article["category"] is not None:
        category = await ArticleCategory.select().where(
            ArticleCategory.id == article["category"]).first().run()
    return await render(request, "service/portal/article.html", {
        **_context(), "article": article, "category": category,
        "paragraphs": [p for p in article["body"].split("\n\n") if p.strip()],
        "answer": await kb.feedback_of(actor.customer_id, article["id"]),
        "flash": request.query_params.get("flash", "")})


@post("/service/help/{slug:str}/feedback", opt=PORTAL, status_code=303)
async def help_feedback(request: Request, slug: FromPath[str]) -> Response:
    actor = _actor(request)
    article = await kb.public_article(slug)
    form = await request.form()
    if article is None or _text(form, "helpful") not in ("yes", "no"):
        raise NotFoundException("not found")
    await kb.feedback(article["id"], _text(form, "helpful") == "yes",
                      customer_id=actor.customer_id, comment=_text(form, "comment"),
                      audience="public")
    return Redirect(f"/portal/service/help/{article['slug']}?flash=thanks", status_code=303)


# --- requests: list, card, history panel ----------------------------------------------------


_LIST_COLUMNS = (Case.id, Case.number, Case.subject, Case.status, Case.is_open, Case.created_at,
                 Case.updated_at, Case.satisfaction)


@get("/service/requests", opt=PORTAL, name="portal-service-requests")
async def request_list(request: Request, after: FromQuery[int | None] = None,
                       show: FromQuery[str] = "") -> Template:
    query = _own_cases(request, *_LIST_COLUMNS)
    if show == "open":
        query = query.where(Case.is_open == True)  # noqa: E712
    if after is not None:
        query = query.where(Case.id < after)
    rows = await query.order_by(Case.id, ascending=False).limit(PAGE + 1).run()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return await render(request, "service/portal/requests.html", {
        **_context(), "requests": rows, "show": show,
        "next_after": rows[-1]["id"] if more else None})


@get("/service/requests/card", opt=PORTAL, include_in_schema=False)
async def request_card(request: Request) -> Template:
    rows = await _own_cases(request, *_LIST_COLUMNS).where(Case.is_open == True).order_by(  # noqa: E712
        Case.id, ascending=False).limit(6).run()
    return Template("service/portal/_card.html", context={
        **_context(), "requests": rows[:5], "more": len(rows) > 5})


@get("/service/requests/panel", opt=PORTAL, include_in_schema=False)
async def request_panel(request: Request) -> Template:
    rows = await _own_cases(request, *_LIST_COLUMNS).order_by(
        Case.id, ascending=False).limit(11).run()
    return Template("service/portal/_panel.html", context={
        **_context(), "requests": rows[:10], "more": len(rows) > 10})


# --- a new request, with deflection ---------------------------------------------------------


async def _new_page(request: Request, values: dict[str, str], errors: dict[str, str],
                    status_code: int = 200) -> Template:
    suggestions = []
    text = f"{values.get('subject', '')} {values.get('description', '')}"
    if text.strip():
        suggestions = await kb.suggest(text, audience="public", limit=5,
                                       product=values.get("product", ""))
    settings = request.app.state.rapport.plugin_settings("service")
    return await render(request, "service/portal/new.html", {
        **_context(), "values": values, "errors": errors, "suggestions": suggestions,
        "max_megabytes": max(1, settings.attachment_max_bytes // (1024 * 1024))},
        status_code=status_code)


@get("/service/requests/new", opt=PORTAL)
async def request_new(request: Request, subject: FromQuery[str] = "",
                      upload: FromQuery[str] = "") -> Template:
    _actor(request)
    errors = _too_large(request) if upload == TOO_LARGE else {}
    return await _new_page(request, {"subject": subject[:300],
                                     "case_type": "service_request"}, errors)


@get("/service/requests/suggest", opt=PORTAL, include_in_schema=False)
async def request_suggest(request: Request, subject: FromQuery[str] = "",
                          description: FromQuery[str] = "", product: FromQuery[str] = ""
                          ) -> Template:
    """htmx fragment: public articles that may answer what the customer is typing."""
    _actor(request)
    text = f"{subject[:300]} {description[:3000]}"
    found = await kb.suggest(text, audience="public", limit=5,
                             product=product[:300]) if text.strip() else []
    return Template("service/portal/_suggestions.html", context={"suggestions": found})


@post("/service/requests/deflect", opt=PORTAL, status_code=200)
async def request_deflect(request: Request) -> Template:
    """"This answered my question": the article is credited, and no case is opened."""
    actor = _actor(request)
    form = await request.form()
    try:
        article_id = int(_text(form, "article"))
    except ValueError:
        raise NotFoundException("not found") from None
    article = await Article.select(Article.id, Article.title, Article.slug).where(
        (Article.id == article_id) & kb.visibility(None, audience="public")).first().run()
    if article is None:
        raise NotFoundException("not found")
    text = f"{_text(form, 'subject')}\n\n{_text(form, 'description')}".strip()
    await kb.deflect(article_id, customer_id=actor.customer_id, text=text)
    # A portal touch point: staff see on the 360° view that the customer helped themselves.
    await touch_point(request, f"Found an answer in the help: {article['title']}"[:300])
    return await render(request, "service/portal/deflected.html", {"article": article})


def _too_large(request: Request) -> dict[str, str]:
    return {"attachments": too_large_message(request.app.state.rapport)}


def request_too_large(request: Request, exc: RequestEntityTooLarge) -> Response:
    """Back to the form with the size error under Attachments (the body was refused unread,
    so what was typed cannot be kept; exception handlers cannot render a portal page)."""
    return Redirect(f"/portal/service/requests/new?upload={TOO_LARGE}#r-files", status_code=303)


def reply_too_large(request: Request, exc: RequestEntityTooLarge) -> Response:
    case_id = request.path_params.get("case_id")
    return Redirect(f"/portal/service/requests/{case_id}?upload={TOO_LARGE}#reply-files",
                    status_code=303)


@post("/service/requests", opt=UPLOAD_FORM, status_code=303,
      exception_handlers={RequestEntityTooLarge: request_too_large})
async def request_create(request: Request) -> Response:
    actor = _actor(request)
    form = await request.form()
    values = {name: _text(form, name).strip() for name in (
        "subject", "description", "case_type", "product")}
    if values["case_type"] not in REQUEST_TYPES:
        return await _new_page(request, values, {"case_type": "Choose what the request is "
                                                              "about."}, 400)
    if not values["description"]:
        return await _new_page(request, values, {
            "description": "Tell us what happened, so we can help the first time."}, 400)
    try:
        case = await cases.open_case(
            request.app.state.rapport, actor, customer_id=actor.customer_id,
            subject=values["subject"], description=values["description"],
            case_type=values["case_type"], channel="portal", product=values["product"],
            from_customer=True, attachments=await _uploads(form), ip=client_ip(request))
    except cases.CaseError as exc:
        return await _new_page(request, values, _problem(exc), 400)
    return Redirect(f"/portal/service/requests/{case['id']}?flash=opened", status_code=303)


# --- one request: conversation, reply, rating, files ----------------------------------------


async def _detail(request: Request, case: dict[str, Any], *, errors: dict[str, str] | None = None,
                  values: dict[str, str] | None = None, status_code: int = 200,
                  before: int | None = None, after: int | None = None) -> Template:
    page = await cases.conversation_page(case["id"], include_notes=False, before=before,
                                         after=after)
    return await render(request, "service/portal/request.html", {
        **_context(), "case": case, "messages": page.messages, "page": page,
        "errors": errors or {},
        "values": values or {}, "flash": request.query_params.get("flash", ""),
        "can_rate": case["status"] in ("resolved", "closed") and case["rated_at"] is None,
        "is_open": case["status"] in OPEN_STATUSES}, status_code=status_code)


@get("/service/requests/{case_id:int}", opt=PORTAL)
async def request_detail(request: Request, case_id: FromPath[int], before: FromQuery[str] = "",
                         after: FromQuery[str] = "", upload: FromQuery[str] = "") -> Template:
    return await _detail(request, await _own_case(request, case_id),
                         before=cases.cursor_id(before), after=cases.cursor_id(after),
                         errors=_too_large(request) if upload == TOO_LARGE else None)


@get("/service/requests/{case_id:int}/conversation", opt=PORTAL, include_in_schema=False)
async def request_conversation(request: Request, case_id: FromPath[int],
                               before: FromQuery[str] = "") -> Response:
    """"Show earlier messages" of the customer's own request (htmx list items; without
    htmx, the request page at that cursor). Never a note: ``include_notes=False``."""
    case = await _own_case(request, case_id)
    cursor = cases.cursor_id(before)
    if request.headers.get("hx-request") != "true":
        where = f"?before={cursor}" if cursor is not None else ""
        return Redirect(f"/portal/service/requests/{case_id}{where}#conversation-title",
                        status_code=303)
    page = await cases.conversation_page(case_id, include_notes=False, before=cursor)
    return Template("service/portal/_conversation.html", context={
        "case": case, "messages": page.messages, "page": page, "loaded": True})


@post("/service/requests/{case_id:int}/reply", opt=UPLOAD_FORM, status_code=303,
      exception_handlers={RequestEntityTooLarge: reply_too_large})
async def request_reply(request: Request, case_id: FromPath[int]) -> Response:
    actor = _actor(request)
    case = await _own_case(request, case_id)
    form = await request.form()
    body = _text(form, "body").strip()
    try:
        await cases.add_message(
            request.app.state.rapport, actor, case_id, kind="inbound", body=body,
            channel="portal", author_customer_id=actor.customer_id,
            attachments=await _uploads(form), ip=client_ip(request))
    except cases.CaseError as exc:
        return await _detail(request, case, errors=_problem(exc), values={"body": body},
                             status_code=400)
    return Redirect(f"/portal/service/requests/{case_id}?flash=sent#latest", status_code=303)


@post("/service/requests/{case_id:int}/rate", opt=PORTAL, status_code=303)
async def request_rate(request: Request, case_id: FromPath[int]) -> Response:
    actor = _actor(request)
    case = await _own_case(request, case_id)
    form = await request.form()
    score, comment = _text(form, "score"), _text(form, "comment")
    if not score:
        return await _detail(request, case, errors={"score": "Choose a rating from 1 to 5."},
                             values={"comment": comment}, status_code=400)
    try:
        await cases.rate(request.app.state.rapport, case_id, customer_id=actor.customer_id,
                         score=score, comment=comment)
    except cases.CaseError as exc:
        status = 409 if case["rated_at"] is not None else 400
        return await _detail(request, await _own_case(request, case_id), errors=_problem(exc),
                             values={"comment": comment}, status_code=status)
    return Redirect(f"/portal/service/requests/{case_id}?flash=rated", status_code=303)


@get("/service/requests/{case_id:int}/files/{attachment_id:int}", opt=PORTAL,
     include_in_schema=False)
async def request_file(request: Request, case_id: FromPath[int],
                       attachment_id: FromPath[int]) -> File:
    """A file of the customer's own case, if it is visible to them and not on a note."""
    await _own_case(request, case_id)
    row = await CaseAttachment.select().where(
        (CaseAttachment.id == attachment_id) & (CaseAttachment.case == case_id)
        & (CaseAttachment.visible_to_customer == True)).first().run()  # noqa: E712
    if row is None:
        raise NotFoundException("not found")
    if row["message"] is not None:
        message = await CaseMessage.select(CaseMessage.kind).where(
            CaseMessage.id == row["message"]).first().run()
        if message is None or message["kind"] == "note":
            raise NotFoundException("not found")
    path = files.path_of(request.app.state.rapport, row)
    if path is None:
        raise NotFoundException("not found")
    return File(path=path, filename=row["filename"], media_type=row["content_type"],
                content_disposition_type="attachment",
                headers={"x-content-type-options": "nosniff", "cache-control": "private"})


ROUTES = [help_index, help_article, help_feedback, request_list, request_card, request_panel,
          request_new, request_suggest, request_deflect, request_create, request_detail,
          request_conversation, request_reply, request_rate, request_file]
