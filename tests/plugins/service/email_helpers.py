"""A real local SMTP server (aiosmtpd) that keeps what it receives, and the .eml files."""

from __future__ import annotations

import socket
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

MAIL = Path(__file__).resolve().parent / "mail"


def eml(name: str, **values: str) -> bytes:
    """A message file from tests/plugins/service/mail, with {{NAME}} placeholders filled."""
    raw = (MAIL / name).read_bytes()
    for key, value in values.items():
        raw = raw.replace(b"{{" + key.encode() + b"}}", value.encode())
    return raw


class Sink:
    """Collects the messages the SMTP server accepted, parsed."""

    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": message})
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink(monkeypatch):
    """A running SMTP server on localhost; RAPPORT_SMTP_URL points at it."""
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("RAPPORT_SMTP_URL", f"smtp://127.0.0.1:{port}")
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_down(monkeypatch):
    """RAPPORT_SMTP_URL points at a port nobody listens on."""
    monkeypatch.setenv("RAPPORT_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")


@pytest.fixture
async def mail_rapport(service_rapport):
    """The service app, connected to its own database for the test's queries."""
    from tests.conftest import connected

    async with connected(service_rapport):
        yield service_rapport
