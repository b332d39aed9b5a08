"""Web side of support e-mail: the inbound endpoint and the e-mail template editor.

``POST /service/inbound/email`` takes one raw RFC 822 message as the body (what a mail
server's pipe or a mail provider's webhook hands over) and answers with what ``email_in``
did. It is public to the permission guard and checks its own shared secret
(``settings.inbound_token``, compared in constant time) in the ``X-Rapport-Inbound-Token``
header: core's authentication middleware reads every ``Authorization: Bearer`` header as an
API token and answers 401 for anything else, so the secret cannot travel there. With no token
configured the endpoint does not exist (404). No browser sends that header, so the route is
exempt from CSRF (``exclude_from_csrf``): a forged form post has no token and gets 403.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core import records
from core.audit import client_ip
from core.permissions import current_actor
from plugins.service import email_in, email_out
from plugins.service.tables import EmailTemplate

TOKEN_HEADER = "x-rapport-inbound-token"
MANAGE = {"permission": "service.settings.manage"}


def _settings(request: Request):
    return request.app.state.rapport.plugin_settings("service")


def inbound_limit(settings) -> int:
    """Largest raw message accepted: the attachment limit, base64-inflated, plus headers and
    text, so a message whose attachment is just within the limit still gets in."""
    return settings.attachment_max_bytes * 4 // 3 + 2 * 1024 * 1024


def _problem(status: int, title: str, detail: str) -> Response:
    return Response({"status": status, "title": title, "detail": detail}, status_code=status,
                    media_type="application/problem+json")


@post("/service/inbound/email", opt={"public": True, "exclude_from_csrf": True},
      request_max_body_size=None, include_in_schema=False, name="service-inbound-email")
async def inbound_email(request: Request) -> Response:
    settings = _settings(request)
    if not settings.inbound_token:
        raise NotFoundException("not found")
    given = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), settings.inbound_token.encode()):
        return _problem(403, "Forbidden", f"the {TOKEN_HEADER} header is missing or wrong")
    limit = inbound_limit(settings)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return _problem(413, "Message too large", f"the message is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _problem(413, "Message too large",
                            f"the message is larger than {limit} bytes")
        chunks.append(chunk)
    result = await email_in.receive(request.app.state.rapport, b"".join(chunks))
    if result["status"] == "rejected":
        return _problem(422, "Message rejected", result["reason"])
    return Response(result, status_code=201 if result["status"] == "created" else 200)


# --- template editor -------------------------------------------------------------------------

EDITABLE = tuple(email_out.DEFAULTS)


async def _templates() -> list[dict[str, Any]]:
    stored = {r["key"]: r for r in await EmailTemplate.select().where(
        EmailTemplate.key.is_in(list(EDITABLE))).run()}
    found = []
    for key in EDITABLE:
        default = email_out.DEFAULTS[key]
        row = stored.get(key)
        found.append({
            "key": key, "name": default.name, "stored": row is not None,
            "optional": not default.required,
            "subject": row["subject"] if row else default.subject,
            "body": row["body"] if row else default.body,
            "updated_at": row["updated_at"] if row else None,
        })
    return found


def _page(templates, *, status: int = 200, errors: dict | None = None,
          editing: str = "", saved: str = "") -> Template:
    return Template("service/email/templates.html", status_code=status, context={
        "templates": templates, "errors": errors or {}, "editing": editing, "saved": saved,
        "variables": email_out.VARIABLES,
    })


def _key_or_404(key: str) -> str:
    if key not in EDITABLE:
        raise NotFoundException("no such e-mail template")
    return key


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@get("/service/admin/email-templates", opt=MANAGE, name="service-email-templates")
async def templates_page(request: Request, saved: FromQuery[str] = "") -> Template:
    return _page(await _templates(), saved=saved if saved in EDITABLE else "")


@post("/service/admin/email-templates/{key:str}", opt=MANAGE, status_code=303)
async def save_template(request: Request, key: FromPath[str]) -> Any:
    key = _key_or_404(key)
    values = await _form(request)
    subject = values.get("subject", "").strip()
    body = values.get("body", "").replace("\r\n", "\n")
    errors = email_out.validate(subject, body, request.app.state.rapport.settings.base_url)
    if errors:
        templates = await _templates()
        for t in templates:
            if t["key"] == key:
                t["subject"], t["body"] = subject, body
        return _page(templates, status=422, errors=errors, editing=key)
    actor = current_actor(request)
    ip = client_ip(request)
    row = await EmailTemplate.select(EmailTemplate.id).where(EmailTemplate.key == key).first().run()
    now = datetime.now(UTC)
    if row is None:
        await records.create(actor, EmailTemplate, {
            "key": key, "name": email_out.DEFAULTS[key].name, "subject": subject, "body": body,
            "updated_at": now}, ip=ip, summary=f"e-mail template {key}")
    else:
        await records.update(actor, EmailTemplate, row["id"], {
            "subject": subject, "body": body, "updated_at": now}, ip=ip,
            summary=f"e-mail template {key}")
    return Redirect(f"/service/admin/email-templates?saved={key}#tpl-{key}", status_code=303)


@post("/service/admin/email-templates/{key:str}/reset", opt=MANAGE, status_code=303)
async def reset_template(request: Request, key: FromPath[str]) -> Redirect:
    """Back to the built-in text (an optional template stops being sent)."""
    key = _key_or_404(key)
    row = await EmailTemplate.select(EmailTemplate.id).where(EmailTemplate.key == key).first().run()
    if row is not None:
        await records.delete(current_actor(request), EmailTemplate, row["id"],
                             ip=client_ip(request),
                             summary=f"e-mail template {key} reset")
    return Redirect(f"/service/admin/email-templates?saved={key}#tpl-{key}", status_code=303)


@post("/service/admin/email-templates/{key:str}/preview", opt=MANAGE)
async def preview_template(request: Request, key: FromPath[str]) -> Template:
    """The template rendered with sample data (an htmx fragment), or why it does not render."""
    key = _key_or_404(key)
    values = await _form(request)
    subject = values.get("subject", "")
    body = values.get("body", "").replace("\r\n", "\n")
    base_url = request.app.state.rapport.settings.base_url
    errors = email_out.validate(subject, body, base_url)
    rendered = None
    if not errors:
        rendered_subject, rendered_body = email_out.render(subject, body,
                                                           email_out.sample_context(base_url))
        rendered = {"subject": email_out.with_tag(rendered_subject, "CS-000123"),
                    "body": rendered_body}
    # 200 even when it does not render: htmx 2 swaps no 4xx answer into the page.
    return Template("service/email/_preview.html",
                    context={"key": key, "errors": errors, "rendered": rendered})


ROUTES = [inbound_email, templates_page, save_template, reset_template, preview_template]
