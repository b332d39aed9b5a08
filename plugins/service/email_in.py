"""Support e-mail coming in: one raw RFC 822 message becomes a new case or a reply on one.

``receive(rapport, raw)`` is what the inbound endpoint (``email_web``) and the pollers
(``mailpoll``) call. In order:

1. Auto-replies, bounces and bulk mail are ignored (RFC 3834 ``Auto-Submitted``,
   ``Precedence: bulk/junk/list/auto_reply``, ``X-Autoreply``, delivery reports, mail from
   MAILER-DAEMON/postmaster or from our own support address), so two autoresponders never
   write to each other forever.
2. The same Message-ID delivered twice is recognised and not stored twice: looked up first,
   and guaranteed by the unique index on ``service_message.message_id`` for two deliveries
   stored at the same moment (the loser's transaction rolls back whole; it reports
   "duplicate").
3. Threading: ``In-Reply-To``/``References`` against the Message-IDs of the case messages
   (ours included) and of the cases' opening mails; then a ``[CS-000123]`` tag in the subject,
   but only when the sender is that case's customer (a guessed number must not let a stranger
   write into someone's case); otherwise a new case of channel "email" for the customer with
   the sender's address (a new contact when nobody has it), in the queue whose
   ``email_address`` the message was sent to.
4. Attachments go through ``attachments.save`` one by one after the message is stored; one
   that is refused (size, type) is dropped and an internal note on the case names it, so a
   refused file never loses the message.
"""

from __future__ import annotations

import hashlib
import logging
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from core.customers.tables import Customer, CustomerEmail
from plugins.service.tables import Case, CaseMessage, Queue

log = logging.getLogger("rapport.service.email")

SUBJECT_TAG = re.compile(r"\[(CS-\d{6,})\]", re.IGNORECASE)
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
SUBJECT_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|tr|réf|antw)\s*(\[\d+\])?\s*:\s*)+",
                            re.IGNORECASE)
BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
MAX_SUBJECT = 300
MAX_BODY = 100_000  # characters kept of one message's text


# --- parsing ---------------------------------------------------------------------------------


class _TextOfHtml(HTMLParser):
    """Visible text of an HTML body, with line breaks where blocks end."""

    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
              "pre", "table", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


QUOTE_HEADERS = (
    re.compile(r"^\s*On .{0,300}wrote:\s*$", re.IGNORECASE),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^\s*Le .{0,300}a écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Am .{0,300}schrieb .{0,200}:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),  # Outlook
    re.compile(r"^\s*-{2,}\s*Forwarded message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^_{10,}\s*$"),  # Outlook's line before "From: ... Sent: ..."
)
SIGNATURE = re.compile(r"^(-- ?|—\s*|Sent from my \w+.*)$")


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything before the quoted history and the signature.

    A message that is nothing but quotation (or a forward) is kept whole rather than emptied.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if any(p.match(line) for p in QUOTE_HEADERS):
            break
        if SIGNATURE.match(line.rstrip()) and index > 0:
            break
        if (line.startswith(("From:", "De :", "Von:")) and index > 0
                and not lines[index - 1].strip()
                and any(n.startswith(("Sent:", "Date:", "Envoyé :", "Gesendet:"))
                        for n in lines[index + 1:index + 4])):
            break  # Outlook's header block of the quoted message
        kept.append(line)
    # Trailing ">" lines are the quotation of clients that quote below the answer.
    while kept and (kept[-1].startswith(">") or not kept[-1].strip()):
        kept.pop()
    result = "\n".join(kept).strip()
    return result or text.strip()


def _decode_text(part: EmailMessage) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeDecodeError):
        # An unknown or lying charset: keep what can be read rather than nothing.
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decode_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return strip_quoted(text)[:MAX_BODY]


def attachments_of(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    """(file name, claimed type, bytes) of each attachment (inline images included)."""
    found = []
    for part in message.iter_attachments():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename() or f"attachment-{len(found) + 1}"
        found.append((filename, part.get_content_type(), data))
    return found


def message_ids(value: str | None) -> list[str]:
    return MESSAGE_ID.findall(str(value or ""))


def automated_reason(message: EmailMessage, sender: str, support_address: str) -> str:
    """Why this message must not get an answer or become a case ('' if it is a person's)."""
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return f"automatic message (Auto-Submitted: {auto})"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"bulk or automatic message (Precedence: {precedence})"
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if header in message:
            return f"automatic reply ({header})"
    if str(message.get("X-Auto-Response-Suppress", "")).strip().lower() in ("all", "oof"):
        if str(message.get("Subject", "")).lower().startswith(("automatic reply",
                                                              "out of office")):
            return "out-of-office reply"
    if message.get_content_type() == "multipart/report":
        return "delivery status report (bounce)"
    local = sender.partition("@")[0]
    if not sender or local in BOUNCE_SENDERS:
        return "bounce from a mail server"
    if "List-Id" in message or "List-Unsubscribe" in message:
        return "mailing-list message"
    if sender == support_address.lower():
        return "sent from our own support address"
    return ""


def clean_subject(subject: str) -> str:
    subject = SUBJECT_TAG.sub("", subject)
    subject = SUBJECT_PREFIX.sub("", subject)
    return " ".join(subject.split())[:MAX_SUBJECT] or "(no subject)"


# --- lookups ---------------------------------------------------------------------------------


async def customers_with_email(address: str) -> list[int]:
    """Customers (not erased) holding ``address``, contacts first, oldest first."""
    rows = await Customer.select(Customer.id).where(
        (Customer.primary_email == address) & Customer.erased_at.is_null()).limit(20).run()
    ids = {r["id"] for r in rows}
    rows = await CustomerEmail.select(CustomerEmail.customer).where(
        CustomerEmail.email == address).limit(20).run()
    ids.update(r["customer"] for r in rows)
    if not ids:
        return []
    rows = await Customer.select(Customer.id, Customer.kind).where(
        Customer.id.is_in(sorted(ids)) & Customer.erased_at.is_null()).run()
    return [r["id"] for r in sorted(rows, key=lambda r: (r["kind"] != "contact", r["id"]))]


async def _threaded_case(references: list[str]) -> int | None:
    if not references:
        return None
    references = references[-50:]  # a long References header is still one bounded query
    row = await CaseMessage.select(CaseMessage.case).where(
        CaseMessage.message_id.is_in(references)).order_by(
        CaseMessage.id, ascending=False).first().run()
    if row is not None:
        return row["case"]
    row = await Case.select(Case.id).where(Case.thread_id.is_in(references)).order_by(
        Case.id, ascending=False).first().run()
    return row["id"] if row is not None else None


async def _queue_for(recipients: list[str]) -> int | None:
    if not recipients:
        return None
    row = await Queue.select(Queue.id).where(
        Queue.email_address.is_in(recipients) & (Queue.active == True)  # noqa: E712
    ).order_by(Queue.id).first().run()
    return row["id"] if row is not None else None


async def _new_contact(rapport, name: str, address: str) -> int:
    from core.customers.service import create_customer

    first, _, last = (name or "").strip().partition(" ")
    if not first:
        first = address.partition("@")[0][:150]
    row = await create_customer(rapport, None, {
        "kind": "contact", "first_name": first[:150], "last_name": last.strip()[:150],
        "emails": [address], "source": "support e-mail",
    })
    return row["id"]


# --- receiving -------------------------------------------------------------------------------


def _result(status: str, **values: Any) -> dict:
    return {"status": status, "case_id": None, "message_id": None, "reason": "",
            "dropped": [], **values}


UNIQUE_MESSAGE_ID_INDEX = "service_message_message_id_unique_idx"


def is_duplicate_message_id(exc: BaseException) -> bool:
    """Whether ``exc`` is the unique index on ``service_message.message_id`` refusing a row
    (asyncpg names the index; SQLite names the column)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "constraint_name", None) == UNIQUE_MESSAGE_ID_INDEX:
            return True
        if (type(current).__name__ == "IntegrityError"
                and "UNIQUE constraint failed: service_message.message_id" in str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


async def _stored(mid: str) -> dict | None:
    existing = await CaseMessage.select(CaseMessage.id, CaseMessage.case).where(
        CaseMessage.message_id == mid).first().run()
    if existing is None:
        return None
    return _result("duplicate", case_id=existing["case"], message_id=existing["id"],
                   reason="this message was already received")


async def _stored_meanwhile(mid: str, exc: BaseException) -> dict:
    """The answer when another process stored the same message while this one was at it."""
    log.info("support mail %s was stored concurrently by another delivery", mid)
    result = await _stored(mid)
    if result is None:  # the other one rolled back after all: let the caller retry it
        raise exc
    return result


async def _save_attachments(rapport, case_id: int, message_row_id: int, customer_id: int | None,
                            files: list[tuple[str, str, bytes]]) -> list[dict]:
    from plugins.service import attachments
    from plugins.service.cases import CaseError

    dropped = []
    for filename, content_type, data in files:
        upload = attachments.NewAttachment(filename=filename, content_type=content_type,
                                           data=data)
        try:
            await attachments.save(rapport, case_id, message_row_id, upload,
                                   customer_id=customer_id)
        except CaseError as exc:
            dropped.append({"filename": filename, "reason": exc.message})
    if dropped:
        from plugins.service import cases

        lines = "\n".join(f"- {d['filename']}: {d['reason']}" for d in dropped)
        await cases.add_message(rapport, None, case_id, kind="note",
                                body=f"Attachments of the customer's e-mail that were not "
                                     f"accepted:\n{lines}")
    return dropped


async def receive(rapport, raw: bytes) -> dict:
    """Turn one raw message into a case or a reply. Returns ``status`` (created, threaded,
    duplicate, ignored, rejected), ``case_id``, ``message_id`` (the service_message row),
    ``reason`` (for ignored/rejected) and ``dropped`` (attachments refused)."""
    from plugins.service import cases

    settings = rapport.plugin_settings("service")
    if not raw or not raw.strip():
        return _result("rejected", reason="the message is empty")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    try:
        name, sender = parseaddr(str(message.get("From", "")))
    except Exception:  # noqa: BLE001 - a malformed header is the sender's problem
        name, sender = "", ""
    sender = sender.strip().lower()
    reason = automated_reason(message, sender, settings.support_address)
    if reason:
        return _result("ignored", reason=reason)
    if "@" not in sender or len(sender) > 254:
        return _result("rejected", reason="the message has no valid From address")
    mid = (message_ids(message.get("Message-ID")) or [""])[0]
    if not mid:
        # Without a Message-ID the bytes identify the message, so a re-delivery is still seen.
        mid = f"<{hashlib.sha256(raw).hexdigest()[:40]}@inbound.rapport>"
    mid = mid[:300]
    stored = await _stored(mid)
    if stored is not None:
        return stored
    raw_subject = str(message.get("Subject", "") or "")
    text = body_text(message)
    files = attachments_of(message)
    in_reply_to = (message_ids(message.get("In-Reply-To")) or [""])[0][:300]
    references = message_ids(message.get("References"))
    if in_reply_to and in_reply_to not in references:
        references.append(in_reply_to)
    senders = await customers_with_email(sender)

    case_id = await _threaded_case(references)
    if case_id is None:
        tag = SUBJECT_TAG.search(raw_subject)
        if tag:
            row = await Case.select(Case.id, Case.customer).where(
                Case.number == tag.group(1).upper()).first().run()
            if row is not None and row["customer"] in senders:
                case_id = row["id"]
    if case_id is not None:
        case = await Case.select(Case.customer).where(Case.id == case_id).first().run()
        author = case["customer"] if case["customer"] in senders else (
            senders[0] if senders else None)
        try:
            row = await cases.add_message(
                rapport, None, case_id, kind="inbound", body=text or "(empty message)",
                channel="email", author_customer_id=author, author_email=sender,
                message_id=mid, in_reply_to=in_reply_to)
        except Exception as exc:
            if not is_duplicate_message_id(exc):
                raise
            return await _stored_meanwhile(mid, exc)
        dropped = await _save_attachments(rapport, case_id, row["id"], author, files)
        return _result("threaded", case_id=case_id, message_id=row["id"], dropped=dropped)

    if not senders:
        # Looked up again right before a contact is created: a concurrent delivery of the same
        # message that got here first would otherwise leave a second, unused contact.
        stored = await _stored(mid)
        if stored is not None:
            return stored
    customer_id = senders[0] if senders else await _new_contact(rapport, name, sender)
    try:
        case = await cases.open_case(
            rapport, None, customer_id=customer_id, subject=clean_subject(raw_subject),
            description=text or "(empty message)", channel="email", message_id=mid,
            author_email=sender, from_customer=True)
    except Exception as exc:
        if not is_duplicate_message_id(exc):
            raise
        # open_case's transaction rolled back whole: no case without its opening message.
        return await _stored_meanwhile(mid, exc)
    case_id = case["id"]
    opening = await CaseMessage.select(CaseMessage.id).where(
        (CaseMessage.case == case_id) & (CaseMessage.kind == "inbound")).order_by(
        CaseMessage.id).first().run()
    recipients = [a.lower() for _, a in getaddresses(
        [str(v) for h in ("To", "Cc", "Delivered-To", "X-Original-To")
         for v in message.get_all(h, [])]) if a]
    queue_id = await _queue_for(recipients)
    if queue_id is not None and case.get("queue") != queue_id:
        await cases.assign(rapport, None, case_id, queue_id=queue_id)
    dropped = []
    if opening is not None:
        dropped = await _save_attachments(rapport, case_id, opening["id"], customer_id, files)
    return _result("created", case_id=case_id,
                   message_id=opening["id"] if opening else None, dropped=dropped)
