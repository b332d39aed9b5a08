"""Support e-mail going out: acknowledgements, agents' replies and "resolved" notices.

``on_event`` reacts to the case service's events (after their transaction committed):

- ``service.case.created``: the acknowledgement (template ``acknowledgement``) when
  ``settings.acknowledge`` is on and the customer has an address;
- ``service.case.replied``: the agent's reply (template ``reply``; ``message`` is the reply);
- ``service.case.status_changed`` to ``resolved``: the template ``resolved``, only when an
  administrator saved one (it is optional).

Every message carries its own Message-ID, ``In-Reply-To``/``References`` pointing into the
case's thread and ``[CS-000123]`` in the subject, so whatever the customer answers threads
back onto the case (``email_in``). The outcome is stored on a ``service_message`` row
(``delivery`` = sent, failed or suppressed, with ``delivery_detail``), so it shows on the case
and nothing is lost when the SMTP server is down.

Automated mail (acknowledgement, resolved) asks core's contact-policy check first: a customer
who asked not to be contacted, opted out of e-mail or was contacted too often gets nothing and
the row says why. An agent's reply answers the customer's own request, which is not marketing
(see DOMAIN.md), so it is sent regardless of opt-outs and fatigue; only an erased customer is
never written to.

Automated messages are stored as ``reply`` rows without an author (``author_user`` NULL), so
the customer's answer to an acknowledgement threads like an answer to a reply. They are written
directly, not through ``cases.add_message``: an acknowledgement is not a first response and
must not stop the SLA clock or move the case to "waiting".
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from core import mail
from core.customers.tables import Customer
from plugins.service.tables import Case, CaseMessage, EmailTemplate

log = logging.getLogger("rapport.service.email")

AUTOMATED_KEYS = ("acknowledgement", "resolved")
# Appended to a reply's timeline entry when the contact policy kept the e-mail from going out.
NOT_SENT = " (e-mail not sent: contact policy)"
REFERENCES_KEPT = 20  # enough for any client to thread; keeps the header short


@dataclass(frozen=True)
class Default:
    name: str
    subject: str
    body: str
    required: bool = True  # optional templates are only sent once an administrator saves one


DEFAULTS: dict[str, Default] = {
    "acknowledgement": Default(
        "Acknowledgement of a new case",
        "We received your request: {{ case.subject }}",
        "Hello {{ customer.first_name or customer.name }},\n\n"
        "thank you for contacting us. Your request has been registered as {{ case.number }} "
        "and a member of our team will get back to you.\n\n"
        "You can answer this e-mail to add anything; please keep {{ case.number }} in the "
        "subject.\n"
        "{% if portal_url %}\nFollow your request online: {{ portal_url }}\n{% endif %}",
    ),
    "reply": Default(
        "Agent reply",
        "Re: {{ case.subject }}",
        "{{ message.body }}\n\n"
        "{% if message.author %}-- \n{{ message.author }}\n{% endif %}"
        "{% if portal_url %}\nFollow your request online: {{ portal_url }}\n{% endif %}",
    ),
    "resolved": Default(
        "Case resolved",
        "Resolved: {{ case.subject }}",
        "Hello {{ customer.first_name or customer.name }},\n\n"
        "we consider your request {{ case.number }} resolved. If anything is still wrong, "
        "just answer this e-mail and the case opens again.\n"
        "{% if portal_url %}\nRate our help: {{ portal_url }}\n{% endif %}",
        required=False,
    ),
}

VARIABLES = {
    "case": "number, subject, status, priority, case_type, channel, product, created_at",
    "customer": "name, first_name, last_name, email",
    "message": "body, author (the agent's name; empty for automated mail), created_at",
    "portal_url": "the case's page in the customer portal",
}

_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined,
                            keep_trailing_newline=True)


class TemplateProblem(ValueError):
    """A template that does not compile or render; ``field`` is subject or body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def render_text(source: str, context: dict[str, Any], field: str) -> str:
    try:
        return _env.from_string(source).render(**context)
    except TemplateError as exc:
        raise TemplateProblem(field, f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error inside a user's template is theirs
        raise TemplateProblem(field, f"{type(exc).__name__}: {exc}") from None


def sample_context(base_url: str = "http://127.0.0.1:8000") -> dict[str, Any]:
    """What previews render with (and what validation checks a template against)."""
    return {
        "case": {"id": 123, "number": "CS-000123", "subject": "The printer jams on page 2",
                 "status": "open", "priority": "normal", "case_type": "service_request",
                 "channel": "email", "product": "LaserPro 400",
                 "created_at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC)},
        "customer": {"id": 1, "name": "Ada Lovelace", "first_name": "Ada",
                     "last_name": "Lovelace", "email": "ada@example.com"},
        "message": {"body": "Please try the paper tray on the left; it should feed again.",
                    "author": "Grace Hopper", "created_at": datetime(2026, 1, 5, 10, 0,
                                                                    tzinfo=UTC)},
        "portal_url": f"{base_url}/portal/service/requests/123",
    }


def render(subject: str, body: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) rendered; raises TemplateProblem naming the field that failed."""
    rendered_subject = " ".join(render_text(subject, context, "subject").split())
    rendered_body = render_text(body, context, "body")
    return rendered_subject, rendered_body


def validate(subject: str, body: str, base_url: str = "http://127.0.0.1:8000") -> dict[str, str]:
    """Errors by field ({} when the template renders with sample data)."""
    errors: dict[str, str] = {}
    if not subject.strip():
        errors["subject"] = "The subject must not be empty."
    elif len(subject) > 300:
        errors["subject"] = "The subject must be at most 300 characters."
    if not body.strip():
        errors["body"] = "The body must not be empty."
    context = sample_context(base_url)
    for field, source in (("subject", subject), ("body", body)):
        if field in errors:
            continue
        try:
            render_text(source, context, field)
        except TemplateProblem as exc:
            errors[field] = f"This template does not render: {exc.message}"
    return errors


async def template_for(key: str) -> dict[str, Any] | None:
    """The stored template, else the built-in default; None for an optional one not saved."""
    row = await EmailTemplate.select().where(EmailTemplate.key == key).first().run()
    if row is not None:
        return row
    default = DEFAULTS.get(key)
    if default is None or not default.required:
        return None
    return {"key": key, "name": default.name, "subject": default.subject, "body": default.body}


def with_tag(subject: str, number: str) -> str:
    tag = f"[{number}]"
    return subject if tag in subject else f"{subject} {tag}".strip()


# --- transport -------------------------------------------------------------------------------


def new_message_id(settings) -> str:
    domain = settings.support_address.rpartition("@")[2] or "rapport.local"
    return make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)


async def deliver(rapport, message: EmailMessage) -> str:
    """Send through core's transport (SMTP, or the outbox when no server is configured)."""
    return await mail.deliver(rapport, message)


def build(settings, *, to: str, subject: str, body: str, message_id: str,
          in_reply_to: str, references: list[str], automated: bool) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr(("", settings.support_address))
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    if automated:
        # RFC 3834: tells the customer's autoresponder not to answer (no mail loops).
        message["Auto-Submitted"] = "auto-replied"
    message.set_content(body)
    return message


# --- reading the case ------------------------------------------------------------------------


async def _case_and_customer(case_id: int) -> tuple[dict | None, dict | None]:
    case = await Case.select().where(Case.id == case_id).first().run()
    if case is None:
        return None, None
    customer = await Customer.select(
        Customer.id, Customer.name, Customer.first_name, Customer.last_name,
        Customer.primary_email, Customer.erased_at,
    ).where(Customer.id == case["customer"]).first().run()
    return case, customer


async def _thread(case: dict) -> tuple[list[str], str]:
    """(References, In-Reply-To) for a new message on ``case``: the opening Message-ID and the
    latest ones of the conversation, oldest first; answering the latest customer message."""
    rows = await CaseMessage.select(CaseMessage.message_id, CaseMessage.kind).where(
        (CaseMessage.case == case["id"]) & (CaseMessage.message_id != "")
    ).order_by(CaseMessage.id, ascending=False).limit(REFERENCES_KEPT).run()
    ids = [r["message_id"] for r in reversed(rows)]
    if case["thread_id"] and case["thread_id"] not in ids:
        ids.insert(0, case["thread_id"])
    latest_inbound = next((r["message_id"] for r in rows if r["kind"] == "inbound"), "")
    return ids, latest_inbound or case["thread_id"] or (ids[-1] if ids else "")


async def _recipient(case: dict, customer: dict) -> str:
    """Where the customer last wrote from, else their primary address."""
    row = await CaseMessage.select(CaseMessage.author_email).where(
        (CaseMessage.case == case["id"]) & (CaseMessage.kind == "inbound")
        & (CaseMessage.author_email != "")
    ).order_by(CaseMessage.id, ascending=False).first().run()
    if row is not None:
        return row["author_email"]
    return customer["primary_email"] or ""


def portal_url(rapport, case: dict) -> str:
    return f"{rapport.settings.base_url}/portal/service/requests/{case['id']}"


def _context(rapport, case: dict, customer: dict, to: str, message: dict | None) -> dict:
    return {
        "case": {k: case[k] for k in ("id", "number", "subject", "status", "priority",
                                      "case_type", "channel", "product", "created_at")},
        "customer": {"id": customer["id"], "name": customer["name"],
                     "first_name": customer["first_name"], "last_name": customer["last_name"],
                     "email": to},
        "message": message or {"body": "", "author": "", "created_at": None},
        "portal_url": portal_url(rapport, case),
    }


async def _finish(row_id: int, delivery: str, detail: str) -> None:
    await CaseMessage.update({CaseMessage.delivery: delivery,
                              CaseMessage.delivery_detail: detail[:2000]}).where(
        CaseMessage.id == row_id).run()


async def _send_and_record(rapport, row_id: int, message: EmailMessage) -> str:
    try:
        where = await deliver(rapport, message)
    except Exception as exc:  # noqa: BLE001 - any transport error is recorded, never lost
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("service mail %s to %s failed: %s", message["Message-ID"], message["To"],
                    detail)
        await _finish(row_id, "failed", detail)
        return "failed"
    await _finish(row_id, "sent", where)
    return "sent"


async def _attach_files(rapport, message: EmailMessage, message_row_id: int) -> list[str]:
    """Attach the reply's customer-visible files; return the names of files not on disk."""
    from plugins.service import attachments
    from plugins.service.tables import CaseAttachment

    rows = await CaseAttachment.select().where(
        (CaseAttachment.message == message_row_id)
        & (CaseAttachment.visible_to_customer == True)  # noqa: E712
    ).order_by(CaseAttachment.id).run()
    missing = []
    for row in rows:
        path = attachments.path_of(rapport, row)
        if path is None:
            missing.append(row["filename"])
            continue
        maintype, _, subtype = (row["content_type"] or "application/octet-stream").partition("/")
        message.add_attachment(path.read_bytes(), maintype=maintype,
                               subtype=subtype or "octet-stream", filename=row["filename"])
    return missing


# --- the three kinds of mail -----------------------------------------------------------------


async def send_automated(rapport, case_id: int, key: str) -> dict | None:
    """Send (or record why not) an automated message; returns the stored message row."""
    from core.interactions.policy import check_contact

    settings = rapport.plugin_settings("service")
    case, customer = await _case_and_customer(case_id)
    if case is None or customer is None or customer["erased_at"] is not None:
        return None
    template = await template_for(key)
    if template is None:
        return None
    to = await _recipient(case, customer)
    if not to:
        return None  # nobody to write to: nothing worth recording
    references, in_reply_to = await _thread(case)
    message_id = new_message_id(settings)
    context = _context(rapport, case, customer, to, None)
    try:
        subject, body = render(template["subject"], template["body"], context)
    except TemplateProblem as exc:
        subject, body, problem = case["subject"], "", f"template {key!r}: {exc}"
    else:
        problem = ""
    subject = with_tag(subject, case["number"])
    rows = await CaseMessage.insert(CaseMessage(
        case=case_id, kind="reply", body=body, channel="email", author_email=to,
        message_id=message_id, in_reply_to=in_reply_to, delivery="sending",
        delivery_detail=f"automated: {key}",
    )).returning(CaseMessage.id).run()
    row_id = rows[0]["id"]
    if problem:
        await _finish(row_id, "failed", problem)
    else:
        decision = await check_contact(rapport, customer["id"], "email", purpose="service")
        if not decision.allowed:
            await _finish(row_id, "suppressed", decision.reason)
        else:
            await _send_and_record(rapport, row_id, build(
                settings, to=to, subject=subject, body=body, message_id=message_id,
                in_reply_to=in_reply_to, references=references, automated=True))
    return await CaseMessage.select().where(CaseMessage.id == row_id).first().run()


async def send_reply(rapport, message_row_id: int) -> dict | None:
    """E-mail an agent's reply (stored by ``cases.add_message``) to the customer, unless the
    contact policy refuses it (then the reply is marked not sent, with the reason)."""
    from core.identity.tables import User
    from core.interactions.policy import check_contact

    settings = rapport.plugin_settings("service")
    row = await CaseMessage.select().where(CaseMessage.id == message_row_id).first().run()
    if row is None or row["kind"] != "reply" or row["delivery"] in ("sent", "sending"):
        return row
    if row["channel"] not in ("", "email"):
        return row  # given to the customer another way (recorded on that channel)
    case, customer = await _case_and_customer(row["case"])
    if case is None or customer is None:
        return row
    if customer["erased_at"] is not None:
        await _finish(row["id"], "suppressed", "The customer's personal data was erased.")
        return await CaseMessage.select().where(CaseMessage.id == row["id"]).first().run()
    to = await _recipient(case, customer)
    if not to:
        await _finish(row["id"], "suppressed", "The customer has no e-mail address.")
        return await CaseMessage.select().where(CaseMessage.id == row["id"]).first().run()
    # The contact policy (do not contact, an e-mail opt-out, another preferred channel,
    # withdrawn consent for service mail) applies to an agent's reply as to automated mail.
    # Not the fatigue rule: an answer to the customer's own request is not one more push, and
    # a lively conversation must not silence the agent.
    decision = await check_contact(rapport, customer["id"], "email", purpose="service")
    if not decision.allowed and decision.rule != "fatigue":
        await _finish(row["id"], "suppressed", decision.reason)
        await _not_sent_on_timeline(row)
        return await CaseMessage.select().where(CaseMessage.id == row["id"]).first().run()
    references, in_reply_to = await _thread(case)
    references = [r for r in references if r != row["message_id"]]
    message_id = row["message_id"] or new_message_id(settings)
    author = ""
    if row["author_user"] is not None:
        user = await User.select(User.name).where(User.id == row["author_user"]).first().run()
        author = (user or {}).get("name") or ""
    context = _context(rapport, case, customer, to, {"body": row["body"], "author": author,
                                                     "created_at": row["created_at"]})
    template = await template_for("reply")
    try:
        subject, body = render(template["subject"], template["body"], context)
    except TemplateProblem:
        # A broken reply template must not keep the agent's words from the customer.
        default = DEFAULTS["reply"]
        subject, body = render(default.subject, default.body, context)
    # Claim the row first, so a second delivery of the same event cannot send it twice.
    claimed = await CaseMessage.update({
        CaseMessage.delivery: "sending", CaseMessage.message_id: message_id,
        CaseMessage.in_reply_to: row["in_reply_to"] or in_reply_to,
    }).where((CaseMessage.id == row["id"]) & CaseMessage.delivery.is_in(
        ["", "failed", "suppressed"])).returning(CaseMessage.id).run()
    if not claimed:
        return row
    message = build(settings, to=to, subject=with_tag(subject, case["number"]), body=body,
                    message_id=message_id, in_reply_to=in_reply_to, references=references,
                    automated=False)
    missing = await _attach_files(rapport, message, row["id"])
    outcome = await _send_and_record(rapport, row["id"], message)
    if missing and outcome == "sent":
        await _finish(row["id"], "sent", "sent without the missing file(s): "
                      + ", ".join(missing))
    return await CaseMessage.select().where(CaseMessage.id == row["id"]).first().run()


async def _not_sent_on_timeline(row: dict) -> None:
    """The reply's timeline entry says the e-mail was not sent, and no longer counts as an
    outbound contact (it reached nobody)."""
    from core import records
    from core.interactions.tables import Interaction

    if not row.get("interaction_id"):
        return
    entry = await Interaction.select(Interaction.subject).where(
        Interaction.id == row["interaction_id"]).first().run()
    if entry is None or entry["subject"].endswith(NOT_SENT):
        return
    await records.update(None, Interaction, row["interaction_id"], {
        "subject": (entry["subject"][:300 - len(NOT_SENT)] + NOT_SENT),
        "direction": "none"}, summary="reply not e-mailed (contact policy)")


async def on_event(rapport, event) -> None:
    payload = event.payload
    if event.name == "service.case.created":
        if rapport.plugin_settings("service").acknowledge and payload.get("case_id"):
            await send_automated(rapport, int(payload["case_id"]), "acknowledgement")
    elif event.name == "service.case.replied":
        row_id = payload.get("message_id")
        if isinstance(row_id, int) or (isinstance(row_id, str) and row_id.isdigit()):
            await send_reply(rapport, int(row_id))
    elif event.name == "service.case.status_changed":
        if payload.get("new") == "resolved" and payload.get("old") != "resolved":
            await send_automated(rapport, int(payload["case_id"]), "resolved")


