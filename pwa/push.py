"""Web Push: the instance's VAPID keys, users' devices and topic preferences, the durable
outbox and its delivery.

Flow: an event -> ``push_notifications`` hook -> :func:`enqueue` (one outbox row per device,
honouring preferences) -> the delivery job (:mod:`pwa.worker`) -> :func:`deliver_due` POSTs each
row to the device's push service, encrypted (RFC 8291, aes128gcm) and signed (VAPID, RFC 8292).
Failures are retried with exponential backoff; a device the push service no longer knows
(404/410) is removed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webpush import WebPush
from webpush.types import WebPushSubscription

from core.identity.tables import ApiToken
from core.notifications import inbox as notification_inbox
from core.plugin import PushMessage
from pwa.tables import PushOutbox, PushPreference, PushSubscription

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.push")

RECORD_LIMIT = 4096  # push services must accept a body this big, no bigger (RFC 8291)
# aes128gcm header (salt 16 + record size 4 + key length 1 + key 65) + padding delimiter + tag
ENCRYPTION_OVERHEAD = 86 + 1 + 16
MAX_PAYLOAD = RECORD_LIMIT - ENCRYPTION_OVERHEAD
URGENCIES = ("very-low", "low", "normal", "high")
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
CLAIM_FOR = timedelta(minutes=2)

# Topics core itself sends; plugins' topics are their event names (see known_topics).
CORE_TOPICS = {"core.follow_up.due": "Follow-up reminders"}


class PushError(ValueError):
    """A subscription or message that cannot be accepted; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- VAPID keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VapidKeys:
    private_pem: bytes
    public_pem: bytes
    application_server_key: str  # base64url of the uncompressed point, for pushManager.subscribe

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return serialization.load_pem_private_key(self.private_pem, password=None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=8)
def _keys_from_secret(secret: str) -> VapidKeys:
    # The key is derived from an instance secret (data_dir/secrets/vapid_private_key, created on
    # first run with O_EXCL), so every worker of an instance uses the same key.
    order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
    scalar = int.from_bytes(hashlib.sha256(secret.encode()).digest(), "big") % (order - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    public = private.public_key()
    return VapidKeys(
        private_pem=private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
        public_pem=public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo),
        application_server_key=_b64url(public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)),
    )


def vapid_keys(rapport: Rapport) -> VapidKeys:
    return _keys_from_secret(rapport.settings.secret("vapid_private_key"))


def vapid_contact(rapport: Rapport) -> str:
    extra = rapport.settings.extra or {}
    if extra.get("push_contact"):
        return extra["push_contact"]
    host = urlparse(rapport.settings.base_url).hostname or "localhost"
    return f"mailto:admin@{host}"


def vapid_authorization(rapport: Rapport, endpoint: str) -> str:
    """``vapid t=<JWT>, k=<public key>``; the audience is the push service's origin (with its
    port, which the ``webpush`` package leaves out)."""
    keys = vapid_keys(rapport)
    url = urlparse(endpoint)
    token = jwt.encode({"aud": f"{url.scheme}://{url.netloc}", "exp": int(time.time()) + 12 * 3600,
                        "sub": vapid_contact(rapport)}, keys.private_pem, algorithm="ES256")
    return f"vapid t={token}, k={keys.application_server_key}"


# --- devices and preferences -------------------------------------------------------------------


def _allow_http(rapport: Rapport) -> bool:
    """Tests with a local push service: plain http, and loopback addresses, are accepted."""
    extra = rapport.settings.extra or {}
    flag = extra.get("push_allow_http") or os.environ.get("RAPPORT_PUSH_ALLOW_HTTP", "")
    return str(flag).lower() in {"1", "true", "yes"}


def _public_address(address: str, loopback_ok: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if loopback_ok and ip.is_loopback:
        return True
    # is_global leaves out private, loopback, link-local, shared (CGNAT) and reserved ranges.
    return ip.is_global and not ip.is_multicast


async def check_endpoint_host(rapport: Rapport, endpoint: str) -> None:
    """Refuse an endpoint whose host is, or resolves to, anything but a public address: the
    server POSTs there, so a subscription must not aim it at the instance's own network.
    Checked when a device subscribes and again before every delivery (DNS may change)."""
    url = urlparse(endpoint)
    host = url.hostname or ""
    loopback_ok = _allow_http(rapport)
    try:
        addresses = [host] if _is_ip_literal(host) else [
            info[4][0] for info in await asyncio.get_running_loop().getaddrinfo(
                host, url.port or 443, type=socket.SOCK_STREAM)]
    except (socket.gaierror, UnicodeError, ValueError):
        raise PushError("endpoint", "the push service's host name cannot be resolved") from None
    if not addresses or not all(_public_address(a, loopback_ok) for a in addresses):
        raise PushError("endpoint", "must be a push service on the public internet, not a "
                                    "loopback, private or link-local address")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def validate_subscription(rapport: Rapport, data: dict[str, Any]) -> tuple[str, str, str]:
    """Return (endpoint, p256dh, auth) or raise :class:`PushError` naming the bad field."""
    endpoint = str(data.get("endpoint") or "")
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    url = urlparse(endpoint)
    allowed = {"https"} | ({"http"} if _allow_http(rapport) else set())
    # The server POSTs to this URL: refuse anything but a push service over https.
    if url.scheme not in allowed or not url.netloc or len(endpoint) > 2000:
        raise PushError("endpoint", "must be an https URL of a push service")
    p256dh, auth = str(keys.get("p256dh") or ""), str(keys.get("auth") or "")
    try:
        point = _b64url_decode(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError):
        raise PushError("keys.p256dh", "is not a P-256 public key") from None
    try:
        if len(_b64url_decode(auth)) != 16:
            raise ValueError
    except (ValueError, TypeError):
        raise PushError("keys.auth", "must be a 16-byte secret, base64url") from None
    return endpoint, p256dh, auth


def device_label(user_agent: str) -> str:
    ua = user_agent or ""
    browser = next((b for b in ("Edg", "Firefox", "Chrome", "Safari") if b in ua), "Browser")
    browser = {"Edg": "Edge"}.get(browser, browser)
    system = next((s for s in ("Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux")
                   if s in ua), "")
    return f"{browser} on {system}" if system else browser


async def subscribe(rapport: Rapport, user_id: int, data: dict[str, Any],
                    user_agent: str = "", api_token_id: int | None = None) -> dict[str, Any]:
    """Record (or move to this user) a device's push subscription; return the row.
    ``api_token_id``: the token the request came with; revoking it removes the device."""
    endpoint, p256dh, auth = validate_subscription(rapport, data)
    await check_endpoint_host(rapport, endpoint)
    endpoint_hash = hashlib.sha256(endpoint.encode()).hexdigest()
    label = str(data.get("label") or device_label(user_agent))[:200]
    async with PushSubscription._meta.db.transaction():
        existing = await PushSubscription.select(PushSubscription.id).where(
            PushSubscription.endpoint_hash == endpoint_hash).first().run()
        if existing:
            await PushSubscription.update({
                PushSubscription.user: user_id, PushSubscription.p256dh: p256dh,
                PushSubscription.auth: auth, PushSubscription.label: label,
                PushSubscription.api_token: api_token_id,
            }).where(PushSubscription.id == existing["id"]).run()
            sub_id = existing["id"]
        else:
            rows = await PushSubscription.insert(PushSubscription(
                user=user_id, endpoint=endpoint, endpoint_hash=endpoint_hash, p256dh=p256dh,
                auth=auth, label=label, created_at=datetime.now(UTC), api_token=api_token_id,
            )).returning(PushSubscription.id).run()
            sub_id = rows[0]["id"]
    return await PushSubscription.select().where(PushSubscription.id == sub_id).first().run()


async def forget_devices_of_ended_tokens(user_ids: list[int] | None = None) -> int:
    """Remove the devices registered through an API token that has since been revoked or has
    expired (their pending notifications go with them); return how many went."""
    now = datetime.now(UTC)
    ended = ApiToken.select(ApiToken.id).where(
        ApiToken.revoked_at.is_not_null() | (ApiToken.expires_at <= now))
    where = PushSubscription.api_token.is_in(ended)
    if user_ids is not None:
        where &= PushSubscription.user.is_in(list(user_ids) or [0])
    rows = await PushSubscription.delete().where(where).returning(PushSubscription.id).run()
    return len(rows)


async def devices(user_id: int) -> list[dict[str, Any]]:
    await forget_devices_of_ended_tokens([user_id])
    return await PushSubscription.select(
        PushSubscription.id, PushSubscription.label, PushSubscription.created_at,
        PushSubscription.last_success_at, PushSubscription.last_failure_at,
    ).where(PushSubscription.user == user_id).order_by(PushSubscription.id).limit(100).run()


async def remove_device(user_id: int, device_id: int) -> bool:
    """Remove one of the user's own devices; ``False`` when it is not theirs (or gone)."""
    rows = await PushSubscription.delete().where(
        (PushSubscription.id == device_id) & (PushSubscription.user == user_id)
    ).returning(PushSubscription.id).run()
    return bool(rows)


def known_topics(rapport: Rapport) -> dict[str, str]:
    """Every topic a user can switch: core's and the events plugins declare."""
    topics = dict(CORE_TOPICS)
    for name, event_type in sorted(rapport.event_types.items()):
        if event_type.topic_label:  # the description is for plugin authors, not for staff
            topics.setdefault(name, event_type.topic_label)
    return topics


async def preferences(rapport: Rapport, user_id: int) -> dict[str, bool]:
    rows = await PushPreference.select(PushPreference.topic, PushPreference.enabled).where(
        PushPreference.user == user_id).run()
    chosen = {r["topic"]: r["enabled"] for r in rows}
    return {topic: chosen.get(topic, True) for topic in known_topics(rapport)}


async def set_preferences(rapport: Rapport, user_id: int, enabled: set[str]) -> None:
    """Switch topics: those in ``enabled`` on, every other known topic off."""
    async with PushPreference._meta.db.transaction():
        await PushPreference.delete().where(PushPreference.user == user_id).run()
        rows = [PushPreference(user=user_id, topic=topic, enabled=topic in enabled)
                for topic in known_topics(rapport)]
        if rows:
            await PushPreference.insert(*rows).run()


# --- the outbox --------------------------------------------------------------------------------


def encode_payload(message: PushMessage) -> bytes:
    """The JSON the service worker reads; the body is shortened to fit the 4 KB record."""
    data = {"title": message.title[:200], "body": message.body, "url": message.url,
            "topic": message.topic, "tag": f"{message.topic}:{message.url}"[:200]}
    encoded = json.dumps(data, separators=(",", ":")).encode()
    body = message.body
    while len(encoded) > MAX_PAYLOAD and body:
        body = body[: max(0, len(body) - (len(encoded) - MAX_PAYLOAD) - 1)]
        data["body"] = body + "…"
        encoded = json.dumps(data, separators=(",", ":")).encode()
    if len(encoded) > MAX_PAYLOAD:
        raise PushError("payload", f"is {len(encoded)} bytes; at most {MAX_PAYLOAD} fit")
    return encoded


async def enqueue(rapport: Rapport, messages: list[PushMessage]) -> int:
    """Put each message in the outbox once per device of its user, unless the user switched
    the topic off. Returns how many outbox rows were added."""
    if not messages:
        return 0
    # Every message is kept in the user's in-app inbox first, whatever their devices and
    # push preferences (docs/notifications.md); a failure there must not stop the push.
    try:
        await notification_inbox.store(rapport, messages)
    except Exception:
        log.exception("could not keep %s notifications in the in-app inbox", len(messages))
    user_ids = sorted({m.user_id for m in messages})
    await forget_devices_of_ended_tokens(user_ids)
    off = {(r["user"], r["topic"]) for r in await PushPreference.select(
        PushPreference.user, PushPreference.topic).where(
        PushPreference.user.is_in(user_ids) & (PushPreference.enabled == False)  # noqa: E712
    ).run()}
    subs: dict[int, list[int]] = {}
    for row in await PushSubscription.select(PushSubscription.id, PushSubscription.user).where(
            PushSubscription.user.is_in(user_ids)).run():
        subs.setdefault(row["user"], []).append(row["id"])
    now = datetime.now(UTC)
    rows = []
    for message in messages:
        if (message.user_id, message.topic) in off:
            continue
        urgency = message.urgency if message.urgency in URGENCIES else "normal"
        payload = encode_payload(message).decode()
        for sub_id in subs.get(message.user_id, []):
            rows.append(PushOutbox(
                subscription=sub_id, user_id=message.user_id, topic=message.topic,
                payload=payload, urgency=urgency,
                ttl_seconds=max(0, min(int(message.ttl_seconds), 28 * 86400)),
                status="pending", attempts=0, next_attempt_at=now, created_at=now,
            ))
    if rows:
        await PushOutbox.insert(*rows).run()
        await wake_delivery(rapport)
    return len(rows)


DELIVER_JOB = "pwa.push.deliver"


async def wake_delivery(rapport: Rapport) -> None:
    """Queue a delivery run now (joins the caller's transaction, if any), so a message goes
    out within a second instead of at the next poll. Unique: a run already waiting is reused."""
    from core import jobs

    await jobs.enqueue(rapport, DELIVER_JOB)


async def claim_due(limit: int = 20) -> list[dict[str, Any]]:
    """Claim due pending rows for this worker. The conditional update is atomic on SQLite and
    PostgreSQL, so two workers never send the same row at once."""
    now = datetime.now(UTC)
    available = (PushOutbox.locked_until.is_null()) | (PushOutbox.locked_until < now)
    candidates = await PushOutbox.select(PushOutbox.id).where(
        (PushOutbox.status == "pending") & (PushOutbox.next_attempt_at <= now) & available
    ).order_by(PushOutbox.next_attempt_at).limit(limit).run()
    claimed = []
    for candidate in candidates:
        rows = await PushOutbox.update({PushOutbox.locked_until: now + CLAIM_FOR}).where(
            (PushOutbox.id == candidate["id"]) & (PushOutbox.status == "pending") & available
        ).returning(*PushOutbox._meta.columns).run()
        claimed.extend(rows)
    return claimed


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (2 ** max(0, attempts - 1)), BACKOFF_MAX)


async def _send(rapport: Rapport, http: httpx.AsyncClient, row: dict[str, Any],
                sub: dict[str, Any]) -> httpx.Response:
    await check_endpoint_host(rapport, sub["endpoint"])
    keys = vapid_keys(rapport)
    sender = WebPush(private_key=keys.private_pem, public_key=keys.public_pem,
                     subscriber=vapid_contact(rapport).removeprefix("mailto:"))
    subscription = WebPushSubscription.model_validate(
        {"endpoint": sub["endpoint"], "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}})
    encrypted = sender.get(row["payload"].encode(), subscription).encrypted
    if len(encrypted) > RECORD_LIMIT:  # webpush does not check; push services refuse (413)
        raise PushError("payload", f"encrypted body is {len(encrypted)} bytes")
    headers = {
        "content-type": "application/octet-stream",  # webpush sets none
        "content-encoding": "aes128gcm",
        "ttl": str(row["ttl_seconds"]),
        "urgency": row["urgency"],
        "topic": hashlib.sha256(row["topic"].encode()).hexdigest()[:32],
        "authorization": vapid_authorization(rapport, sub["endpoint"]),
    }
    return await http.post(sub["endpoint"], content=encrypted, headers=headers)


async def deliver_due(rapport: Rapport, http: httpx.AsyncClient | None = None) -> int:
    """Send every claimed due row once; return how many were delivered."""
    rows = await claim_due()
    if not rows:
        return 0
    own_client = http is None
    http = http or httpx.AsyncClient(timeout=10.0)
    delivered = 0
    try:
        sub_ids = sorted({r["subscription"] for r in rows})
        await forget_devices_of_ended_tokens(sorted({r["user_id"] for r in rows}))
        subs = {s["id"]: s for s in await PushSubscription.select().where(
            PushSubscription.id.is_in(sub_ids)).run()}
        for row in rows:
            sub = subs.get(row["subscription"])
            if sub is None:
                continue  # the device was removed meanwhile (its rows cascade away)
            delivered += await _deliver_one(rapport, http, row, sub)
    finally:
        if own_client:
            await http.aclose()
    return delivered


async def _deliver_one(rapport: Rapport, http: httpx.AsyncClient, row: dict[str, Any],
                       sub: dict[str, Any]) -> int:
    now = datetime.now(UTC)
    attempts = row["attempts"] + 1
    try:
        response = await _send(rapport, http, row, sub)
    except PushError as exc:
        await _finish(row, "dead", attempts, str(exc))
        return 0
    except httpx.HTTPError as exc:
        await _retry(row, attempts, f"{type(exc).__name__}: {exc}", sub)
        return 0
    if response.status_code in (200, 201, 202):
        await _finish(row, "sent", attempts, "", sent_at=now)
        await PushSubscription.update({PushSubscription.last_success_at: now}).where(
            PushSubscription.id == sub["id"]).run()
        return 1
    if response.status_code in (404, 410):
        # The browser unsubscribed or the subscription expired: forget the device.
        log.info("push endpoint gone (%s); removing device %s", response.status_code, sub["id"])
        await PushSubscription.delete().where(PushSubscription.id == sub["id"]).run()
        return 0
    reason = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after", "")
        delay = timedelta(seconds=int(retry_after)) if retry_after.isdigit() else None
        await _retry(row, attempts, reason, sub, delay)
    else:
        await _finish(row, "dead", attempts, reason)  # 400, 401/403 (VAPID), 413: no retry
    return 0


async def _finish(row, status: str, attempts: int, error: str, sent_at=None) -> None:
    await PushOutbox.update({
        PushOutbox.status: status, PushOutbox.attempts: attempts, PushOutbox.last_error: error,
        PushOutbox.sent_at: sent_at, PushOutbox.locked_until: None,
    }).where(PushOutbox.id == row["id"]).run()


async def _retry(row, attempts: int, error: str, sub, delay: timedelta | None = None) -> None:
    now = datetime.now(UTC)
    if attempts >= MAX_ATTEMPTS:
        await _finish(row, "dead", attempts, error)
    else:
        await PushOutbox.update({
            PushOutbox.attempts: attempts, PushOutbox.last_error: error,
            PushOutbox.next_attempt_at: now + max(delay or timedelta(0), backoff(attempts)),
            PushOutbox.locked_until: None,
        }).where(PushOutbox.id == row["id"]).run()
    await PushSubscription.update({PushSubscription.last_failure_at: now}).where(
        PushSubscription.id == sub["id"]).run()
