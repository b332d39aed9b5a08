"""The IMAP poller against a tiny local IMAP-over-TLS server that speaks just the commands it
uses (LOGIN, SELECT, UID SEARCH/FETCH/STORE), with a certificate made for the test."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl

import pytest

from plugins.service import mailpoll
from plugins.service.tables import Case
from tests.plugins.service.email_helpers import eml


def _certificate(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class FakeImap:
    """One mailbox: uid -> [raw, seen]."""

    def __init__(self, messages: list[bytes]) -> None:
        self.box = {uid: [raw, False] for uid, raw in enumerate(messages, start=1)}
        self.logins: list[str] = []

    async def session(self, reader, writer):
        writer.write(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
        while line := await reader.readline():
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                writer.write(b"* CAPABILITY IMAP4rev1\r\n")
            elif command == "LOGIN":
                self.logins.append(args)
            elif command == "SELECT":
                writer.write(f"* {len(self.box)} EXISTS\r\n".encode())
            elif command == "UID":
                sub, _, rest = args.partition(" ")
                sub = sub.upper()
                if sub == "SEARCH":
                    uids = " ".join(str(u) for u, (_, seen) in self.box.items() if not seen)
                    writer.write(f"* SEARCH {uids}\r\n".encode())
                elif sub == "FETCH":
                    uid = int(rest.split()[0])
                    raw = self.box[uid][0]
                    writer.write(f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode()
                                 + raw + b")\r\n")
                elif sub == "STORE":
                    uid = int(rest.split()[0])
                    if re.search(r"\\Seen", rest):
                        self.box[uid][1] = True
                    writer.write(f"* {uid} FETCH (UID {uid} FLAGS (\\Seen))\r\n".encode())
            elif command == "LOGOUT":
                writer.write(b"* BYE\r\n" + f"{tag} OK bye\r\n".encode())
                await writer.drain()
                break
            writer.write(f"{tag} OK {command} done\r\n".encode())
            await writer.drain()
        writer.close()


@pytest.fixture
async def imap_server(tmp_path, monkeypatch):
    cert_path, key_path = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    monkeypatch.setattr(mailpoll, "imap_ssl_context", lambda: client_context)
    fake = FakeImap([eml("plain.eml"), eml("auto_reply.eml", NUMBER="CS-000001")])
    server = await asyncio.start_server(fake.session, "127.0.0.1", 0, ssl=server_context)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()


async def test_imap_poller_stores_unseen_mail_and_marks_it_seen(make_rapport, imap_server):
    from tests.conftest import connected

    rapport = await make_rapport(["service"], {"service": {
        "imap_host": "localhost", "imap_port": imap_server.port, "imap_user": "support",
        "imap_password": "pw", "mail_poll_seconds": 0}})
    async with connected(rapport):
        results = await mailpoll.poll_imap(rapport)
        assert sorted(r["status"] for r in results) == ["created", "ignored"]
        assert await Case.count().run() == 1
        assert all(seen for _, seen in imap_server.box.values())
        assert imap_server.logins and "support" in imap_server.logins[0]
        assert await mailpoll.poll_imap(rapport) == []  # nothing unseen is left
