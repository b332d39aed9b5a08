"""A local push service for tests, and a fake browser's subscription keys.

It receives what Rapport POSTs, checks the VAPID signature (ES256 JWT against the ``k=`` key)
and decrypts the body (RFC 8291, aes128gcm) with the "browser's" private key and auth secret.
"""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class FakeBrowser:
    """The keys a browser makes when it subscribes: a P-256 key pair and an auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": endpoint, "keys": {"p256dh": b64url(point),
                                               "auth": b64url(self.auth_secret)}}

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret,
                                version="aes128gcm")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """``with PushService() as service:``; ``service.endpoint("abc")`` is a subscription URL.
    ``service.status[path] = 410`` makes that endpoint answer 410 (default 201)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                service.received.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(service.status.get(self.path, 201))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def __enter__(self) -> PushService:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify_vapid(received: Received, expected_public_key: str | None = None) -> dict:
    """Check the ``Authorization: vapid t=..., k=...`` header; return the JWT claims."""
    scheme, _, params = received.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    if expected_public_key is not None:
        assert parts["k"] == expected_public_key
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"]))
    origin = "{0.scheme}://{0.netloc}".format(urlparse(f"http://{received.headers['host']}"))
    return jwt.decode(parts["t"], key=public, algorithms=["ES256"], audience=origin)
