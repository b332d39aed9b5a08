"""Outgoing email. With ``RAPPORT_SMTP_URL`` (``smtp://user:pass@host:port``, or
``smtps://`` for implicit TLS; ``?starttls=1`` to upgrade) mail goes out by SMTP; without it,
each message is written as an ``.eml`` file under ``<data dir>/outbox`` so a self-hoster
trying Rapport can still follow password-reset and portal links."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib

log = logging.getLogger("rapport.mail")

# What staff are told about a message when no mail server is set up: it was not sent.
OUTBOX_NOTE = "kept in the outbox: no mail server is set up (RAPPORT_SMTP_URL)"
NOT_SENT = ("No mail server is set up (RAPPORT_SMTP_URL), so nothing was e-mailed: the message "
            "was saved in the outbox folder (data/outbox) instead.")


def sends_mail() -> bool:
    """Whether mail really goes out (an SMTP server is set up); else it lands in the outbox,
    and pages must not say it was sent."""
    return bool(os.environ.get("RAPPORT_SMTP_URL"))


def kept_in_outbox(note: str | None) -> bool:
    """Whether a delivery note from :func:`deliver` says the message only reached the outbox."""
    return bool(note) and note.startswith(OUTBOX_NOTE.split(":")[0])


def build_message(sender: str, to: str, subject: str, text: str, html: str | None = None,
                  headers: dict[str, str] | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "rapport.local")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


async def send_mail(rapport, to: str, subject: str, text: str, html: str | None = None,
                    headers: dict[str, str] | None = None) -> EmailMessage:
    """Send one message from ``RAPPORT_MAIL_FROM``; return it (with its Message-ID, for
    threading replies)."""
    sender = os.environ.get("RAPPORT_MAIL_FROM", "rapport@localhost")
    message = build_message(sender, to, subject, text, html, headers)
    await deliver(rapport, message)
    return message


def _outbox(rapport, message: EmailMessage) -> str:
    outbox = Path(rapport.settings.data_dir) / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{uuid.uuid4().hex}.eml"
    path.write_bytes(bytes(message))
    log.info("RAPPORT_SMTP_URL is not set: wrote mail to %s into %s", message["To"], path)
    # The note is shown to staff, so it names the outbox, not the server's file path.
    return OUTBOX_NOTE


def _server(url: str) -> dict:
    """aiosmtplib's connection arguments for ``RAPPORT_SMTP_URL``."""
    parsed = urlparse(url)
    options = parse_qs(parsed.query)
    return {
        "hostname": parsed.hostname or "127.0.0.1",
        "port": parsed.port or (465 if parsed.scheme == "smtps" else 25),
        "username": unquote(parsed.username) if parsed.username else None,
        "password": unquote(parsed.password) if parsed.password else None,
        "use_tls": parsed.scheme == "smtps",
        "start_tls": options.get("starttls", ["0"])[0] in {"1", "true"},
        "timeout": 20,
    }


async def deliver(rapport, message: EmailMessage) -> str:
    """Hand a fully built ``message`` (its own From, Message-ID, threading headers) to the
    SMTP server named by ``RAPPORT_SMTP_URL``; without it, write it to the outbox. Returns
    where it went, for the record; raises when the server refuses or cannot be reached."""
    url = os.environ.get("RAPPORT_SMTP_URL")
    if not url:
        return _outbox(rapport, message)
    server = _server(url)
    await aiosmtplib.send(message, **server)
    return f"accepted by {server['hostname']}:{server['port']}"


@asynccontextmanager
async def session(rapport) -> AsyncIterator[Callable[[EmailMessage], Awaitable[str]]]:
    """Deliver many messages over one SMTP connection (a campaign's batch)::

        async with mail.session(rapport) as deliver_one:
            note = await deliver_one(message)   # like deliver(); raises per message

    The connection is opened at the first message and opened again once if the server
    dropped it; without ``RAPPORT_SMTP_URL`` each message goes to the outbox."""
    url = os.environ.get("RAPPORT_SMTP_URL")
    if not url:
        async def to_outbox(message: EmailMessage) -> str:
            return _outbox(rapport, message)

        yield to_outbox
        return
    server = _server(url)
    login = (server.pop("username"), server.pop("password"))
    client: aiosmtplib.SMTP | None = None

    async def connect() -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(**server)
        await smtp.connect()
        if login[0]:
            await smtp.login(login[0], login[1] or "")
        return smtp

    async def deliver_one(message: EmailMessage) -> str:
        nonlocal client
        if client is None or not client.is_connected:
            client = await connect()
        try:
            await client.send_message(message)
        except aiosmtplib.SMTPServerDisconnected:
            client = await connect()
            await client.send_message(message)
        return f"accepted by {server['hostname']}:{server['port']}"

    try:
        yield deliver_one
    finally:
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()
