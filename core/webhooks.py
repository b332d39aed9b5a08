"""Outbound webhooks: URLs subscribed to durable events, signed, retried, logged, disabled.

Flow: a durable event reaches this module's ``on_event`` (once per event id, through core's
outbox); for every enabled subscription choosing that event a delivery row is written and a
``core.webhooks.deliver`` job queued in one transaction, idempotent on (subscription, event
id) by a unique index. The job POSTs the JSON body with Standard Webhooks headers
(``Webhook-Id``, ``Webhook-Timestamp``, ``Webhook-Signature``); a failed attempt raises so the
job system retries with exponential backoff; when the last attempt (over a day later) fails
too, the subscription is disabled and its owner told in their notifications inbox.

Deliveries are made as the subscription's owner: a payload loses the fields the owner's field
rules hide, events whose records the owner may not view are not sent, and an owner who is
deactivated or loses ``core.webhook.manage`` stops the subscription.

SSRF: only http(s) URLs whose host resolves to public addresses (core.netcheck), checked when
saved and before every request, which then goes to the checked address (no DNS rebinding),
follows no redirect, times out, and reads at most a few kilobytes of the answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from core import jobs, netcheck
from core.permissions import hidden_fields
from core.plugin import JobType, Permission, PushMessage, hookimpl
from core.webhooks_tables import (
    FAILED,
    PENDING,
    RETRYING,
    SKIPPED,
    SUCCEEDED,
    WebhookDelivery,
    WebhookSubscription,
)

if TYPE_CHECKING:
    from core.app import Rapport
    from core.plugin import Event, Job

log = logging.getLogger("rapport.webhooks")

MANAGE = "core.webhook.manage"
DELIVER_JOB = "core.webhooks.deliver"
PURGE_JOB = "core.webhooks.purge"
PING_EVENT = "webhook.ping"
# 17 attempts: with the job system's backoff (10 s doubling, capped at 6 h, jitter down to
# 0.8) the last one comes at least 28 hours after the first, so a receiver that is down for
# less than a day loses nothing.
MAX_ATTEMPTS = 17
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
RESPONSE_LIMIT = 4096  # bytes of an answer read (and 500 characters kept in the log)
EXCERPT_CHARS = 500
LOG_KEEP_PER_SUBSCRIPTION = 1000
LOG_KEEP_DAYS = 30
ROTATION_OVERLAP = timedelta(hours=24)
USER_AGENT = "Rapport-Webhooks/1"


class WebhookError(ValueError):
    """Invalid input; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DeliveryFailed(RuntimeError):
    """One attempt failed; raised so the job system retries it later."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int | None
    ms: int | None
    excerpt: str | None
    error: str | None


def now() -> datetime:
    return datetime.now(UTC)


def allow_private(rapport: Rapport) -> bool:
    """An administrator's choice to allow receivers on private or loopback addresses (an
    internal system): ``RAPPORT_WEBHOOKS_ALLOW_PRIVATE=1`` or settings ``webhooks_allow_private``."""
    extra = rapport.settings.extra or {}
    flag = extra.get("webhooks_allow_private") or os.environ.get(
        "RAPPORT_WEBHOOKS_ALLOW_PRIVATE", "")
    return str(flag).lower() in {"1", "true", "yes", "on"}


# --- events offered ----------------------------------------------------------------------------


def _record_prefix(event_name: str) -> str:
    """``sales.order.created`` -> ``sales.order``: the record kind an event is about."""
    return event_name.rsplit(".", 1)[0]


def _view_permission(rapport: Rapport, event_name: str) -> str | None:
    """The permission needed to read the records an event is about, if one is declared
    (``sales.order.view`` for ``sales.order.*``); None when no such permission exists."""
    name = f"{_record_prefix(event_name)}.view"
    return name if name in rapport.permissions else None


def may_receive(rapport: Rapport, actor: Any, event_name: str) -> bool:
    needed = _view_permission(rapport, event_name)
    return needed is None or actor.can(needed)


def durable_events(rapport: Rapport, actor: Any | None = None) -> dict[str, str]:
    """Durable event names and their descriptions, sorted, that ``actor`` may subscribe to."""
    found = {e.name: e.description for e in rapport.event_types.values() if e.durable}
    if actor is not None:
        found = {n: d for n, d in found.items() if may_receive(rapport, actor, n)}
    return dict(sorted(found.items()))


# --- signing -----------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` as Standard Webhooks defines it."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(sub: dict[str, Any], message_id: str, timestamp: int, body: bytes,
                     at: datetime | None = None) -> str:
    """The signatures, space separated: the current secret's, and for a day after a
    rotation also the previous one's, so a receiver still holding it keeps verifying."""
    values = [sign(sub["secret"], message_id, timestamp, body)]
    until = sub.get("previous_secret_until")
    if sub.get("previous_secret") and until and until > (at or now()):
        values.append(sign(sub["previous_secret"], message_id, timestamp, body))
    return " ".join(values)


# --- subscriptions -------------------------------------------------------------------------------


async def validate(rapport: Rapport, actor: Any, data: dict[str, Any], *,
                   partial: bool = False) -> dict[str, Any]:
    """Clean ``data`` (name, url, events); raise WebhookError naming the first bad field."""
    cleaned: dict[str, Any] = {}
    if not partial or "name" in data:
        name = str(data.get("name") or "").strip()
        if not name:
            raise WebhookError("name", "is required (say what receives these events)")
        if len(name) > 200:
            raise WebhookError("name", "must be at most 200 characters")
        cleaned["name"] = name
    if not partial or "url" in data:
        url = str(data.get("url") or "").strip()
        if not url:
            raise WebhookError("url", "is required")
        if len(url) > 2000:
            raise WebhookError("url", "must be at most 2,000 characters")
        try:
            await netcheck.resolve_checked(url, allow_private=allow_private(rapport))
        except netcheck.UnsafeAddress as exc:
            raise WebhookError("url", exc.message) from None
        cleaned["url"] = url
    if not partial or "events" in data:
        events = data.get("events")
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list | tuple) or not events:
            raise WebhookError("events", "choose at least one event")
        offered = durable_events(rapport, actor)
        chosen = []
        for name in events:
            if not isinstance(name, str) or name not in offered:
                raise WebhookError("events", f"{name!r} is not an event you can subscribe to")
            if name not in chosen:
                chosen.append(name)
        cleaned["events"] = sorted(chosen)
    return cleaned


def _row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    row = dict(row)
    row["events"] = json.loads(row["events"] or "[]")
    return row


async def get(sub_id: int) -> dict[str, Any] | None:
    return _row(await WebhookSubscription.select().where(
        WebhookSubscription.id == sub_id).first().run())


async def list_subscriptions(*, after: int | None = None, limit: int = 50
                             ) -> tuple[list[dict[str, Any]], int | None]:
    """A keyset page by id; returns the rows and the cursor of the next page (or None)."""
    query = WebhookSubscription.select().order_by(WebhookSubscription.id).limit(limit + 1)
    if after is not None:
        query = query.where(WebhookSubscription.id > after)
    rows = [_row(r) for r in await query.run()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more else None)


async def create(rapport: Rapport, actor: Any, data: dict[str, Any]) -> tuple[dict, str]:
    """Create a subscription owned by ``actor``; returns it and its secret (shown once)."""
    cleaned = await validate(rapport, actor, data)
    secret = new_secret()
    at = now()
    rows = await WebhookSubscription.insert(WebhookSubscription(
        name=cleaned["name"], url=cleaned["url"], events=json.dumps(cleaned["events"]),
        secret=secret, owner=actor.id, enabled=True, created_at=at, updated_at=at,
    )).returning(WebhookSubscription.id).run()
    sub = await get(rows[0]["id"])
    assert sub is not None
    return sub, secret


async def update(rapport: Rapport, actor: Any, sub_id: int, data: dict[str, Any],
                 *, partial: bool = False) -> dict[str, Any] | None:
    cleaned = await validate(rapport, actor, data, partial=partial)
    values: dict[Any, Any] = {WebhookSubscription.updated_at: now()}
    if "name" in cleaned:
        values[WebhookSubscription.name] = cleaned["name"]
    if "url" in cleaned:
        values[WebhookSubscription.url] = cleaned["url"]
    if "events" in cleaned:
        values[WebhookSubscription.events] = json.dumps(cleaned["events"])
    await WebhookSubscription.update(values).where(WebhookSubscription.id == sub_id).run()
    return await get(sub_id)


async def delete(sub_id: int) -> bool:
    # The delivery log goes with it (ON DELETE CASCADE); waiting jobs find no row and stop.
    async with WebhookSubscription._meta.db.transaction():
        await WebhookDelivery.delete().where(WebhookDelivery.subscription == sub_id).run()
        rows = await WebhookSubscription.delete().where(
            WebhookSubscription.id == sub_id).returning(WebhookSubscription.id).run()
    return bool(rows)


async def rotate_secret(sub_id: int) -> str | None:
    """A new secret; the old one keeps signing (as a second signature) for a day."""
    sub = await get(sub_id)
    if sub is None:
        return None
    secret = new_secret()
    at = now()
    await WebhookSubscription.update({
        WebhookSubscription.previous_secret: sub["secret"],
        WebhookSubscription.previous_secret_until: at + ROTATION_OVERLAP,
        WebhookSubscription.secret: secret, WebhookSubscription.updated_at: at,
    }).where(WebhookSubscription.id == sub_id).run()
    return secret


async def enable(sub_id: int) -> bool:
    rows = await WebhookSubscription.update({
        WebhookSubscription.enabled: True, WebhookSubscription.disabled_reason: None,
        WebhookSubscription.disabled_at: None, WebhookSubscription.consecutive_failures: 0,
        WebhookSubscription.updated_at: now(),
    }).where(WebhookSubscription.id == sub_id).returning(WebhookSubscription.id).run()
    return bool(rows)


async def disable(rapport: Rapport, sub: dict[str, Any], reason: str, *,
                  notify: bool = True) -> None:
    """Stop a subscription and tell its owner why (once: only the call that disables it)."""
    at = now()
    rows = await WebhookSubscription.update({
        WebhookSubscription.enabled: False, WebhookSubscription.disabled_reason: reason,
        WebhookSubscription.disabled_at: at, WebhookSubscription.updated_at: at,
    }).where((WebhookSubscription.id == sub["id"]) & (WebhookSubscription.enabled == True)  # noqa: E712
             ).returning(WebhookSubscription.id).run()
    if rows and notify:
        from core.notifications import inbox

        await inbox.store(rapport, [PushMessage(
            user_id=sub["owner"], topic="core.webhook.disabled",
            title=f"Webhook “{sub['name']}” was switched off",
            body=f"{reason} Fix the receiver, then switch the webhook on again.",
            url=f"/admin/webhooks/{sub['id']}")])
    log.warning("webhook %s disabled: %s", sub["id"], reason)


# --- the delivery log ------------------------------------------------------------------------------


async def deliveries(sub_id: int, *, before: int | None = None, limit: int = 50
                     ) -> tuple[list[dict[str, Any]], int | None]:
    """The newest deliveries first, a keyset page on id; the cursor for the next page."""
    query = WebhookDelivery.select(
        WebhookDelivery.id, WebhookDelivery.event_id, WebhookDelivery.event_name,
        WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.response_code,
        WebhookDelivery.response_ms, WebhookDelivery.response_excerpt, WebhookDelivery.error,
        WebhookDelivery.created_at, WebhookDelivery.last_attempt_at,
    ).where(WebhookDelivery.subscription == sub_id).order_by(
        WebhookDelivery.id, ascending=False).limit(limit + 1)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = await query.run()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more else None)


async def get_delivery(delivery_id: int) -> dict[str, Any] | None:
    return await WebhookDelivery.select().where(WebhookDelivery.id == delivery_id).first().run()


# --- building a message --------------------------------------------------------------------------


def _strip(value: Any, hidden: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, hidden) for k, v in value.items() if k not in hidden}
    if isinstance(value, list):
        return [_strip(v, hidden) for v in value]
    return value


def redact_payload(actor: Any, event_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without the fields the actor's field rules hide on the event's record kind
    (``sales.order.*`` events -> ``sales_order`` fields), at any depth."""
    table = _record_prefix(event_name).replace(".", "_")
    hidden = hidden_fields(actor, table)
    return _strip(payload, hidden) if hidden else dict(payload)


def message_body(event_id: int | None, event_name: str, occurred: datetime,
                 payload: dict[str, Any]) -> str:
    return json.dumps({"id": event_id, "type": event_name,
                       "timestamp": occurred.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                       "data": payload}, separators=(",", ":"), default=str)


def message_id(delivery: dict[str, Any]) -> str:
    """Stable across retries and "send again" (receivers deduplicate on it): the event's id,
    or the ping's delivery id."""
    if delivery["event_id"] is not None:
        return f"evt_{delivery['event_id']}"
    return f"ping_{delivery['id']}"


# --- subscribing to durable events ----------------------------------------------------------------


async def _occurred(event_id: int) -> datetime:
    from core.jobs_tables import OutboxEvent

    row = await OutboxEvent.select(OutboxEvent.created_at).where(
        OutboxEvent.id == event_id).first().run()
    return row["created_at"] if row else now()


@hookimpl
async def on_event(rapport: Rapport, event: Event) -> None:
    """Queue one delivery per enabled subscription that chose this durable event."""
    if event.id is None:
        return  # not durable: webhooks carry only events that survive a crash
    event_type = rapport.event_types.get(event.name)
    if event_type is None or not event_type.durable:
        return
    subs = [_row(r) for r in await WebhookSubscription.select(
        WebhookSubscription.id, WebhookSubscription.events, WebhookSubscription.owner,
    ).where(WebhookSubscription.enabled == True).run()]  # noqa: E712
    subs = [s for s in subs if event.name in s["events"]]
    if not subs:
        return
    done = {r["subscription"] for r in await WebhookDelivery.select(
        WebhookDelivery.subscription).where(
        (WebhookDelivery.event_id == event.id)
        & WebhookDelivery.subscription.is_in([s["id"] for s in subs])).run()}
    subs = [s for s in subs if s["id"] not in done]
    if not subs:
        return  # this event was handled before (a redelivery)
    occurred = await _occurred(event.id)
    actors = await _owners(rapport, {s["owner"] for s in subs})
    stopped = []
    for sub in subs:
        problem = _actor_problem(rapport, actors.get(sub["owner"]), event.name)
        if problem:
            stopped.append((sub, problem))
    subs = [s for s in subs if s not in [p[0] for p in stopped]]
    at = now()
    async with WebhookDelivery._meta.db.transaction():
        for sub in subs:
            actor = actors[sub["owner"]]
            # The body is fixed now, redacted for the owner: a later "send again" sends the
            # same message.
            payload = redact_payload(actor, event.name, event.payload)
            rows = await WebhookDelivery.insert(WebhookDelivery(
                subscription=sub["id"], event_id=event.id, event_name=event.name,
                body=message_body(event.id, event.name, occurred, payload),
                status=PENDING, created_at=at,
            )).returning(WebhookDelivery.id).run()
            await jobs.enqueue(rapport, DELIVER_JOB, {"delivery_id": rows[0]["id"]},
                               max_attempts=MAX_ATTEMPTS)
    # An owner who can no longer receive the event gets nothing written: the webhook stops.
    for sub, problem in stopped:
        await disable(rapport, await get(sub["id"]) or sub, problem)


def _chosen_by_a_webhook(event_name: str, postgres: bool) -> tuple[str, list[Any]]:
    """SQL that holds when an enabled webhook chose ``event_name``: core.events writes this
    subscriber's delivery only then, in the publishing statement (an event no webhook wants
    costs no delivery row, no claim and no call), exact on every process since it reads the
    webhooks as the publishing transaction sees them."""
    if postgres:
        return ("EXISTS (SELECT 1 FROM core_webhook w WHERE w.enabled "
                "AND w.events::jsonb @> jsonb_build_array({}::text))", [event_name])
    return ("EXISTS (SELECT 1 FROM core_webhook w, json_each(w.events) chosen "
            "WHERE w.enabled AND chosen.value = {})", [event_name])


on_event.rapport_delivery_condition = _chosen_by_a_webhook  # type: ignore[attr-defined]


async def _owners(rapport: Rapport, user_ids: set[int]) -> dict[int, Any]:
    """The owners' actors (their permissions and field rules), kept in the process's actor
    cache for ``RAPPORT_ACTOR_CACHE_SECONDS`` (5): building one takes five or six queries,
    which was a third of a delivery. So a deactivation or a lost permission stops a webhook
    within those seconds (at once when made through this process's web pages or API, which
    empty the cache)."""
    from core.identity.middleware import actor_cache
    from core.identity.users import load_actor

    cache = actor_cache(rapport)
    found = {}
    for user_id in user_ids:
        key = f"webhook-owner:{user_id}"
        actor = cache.get(key)
        if actor is None:
            actor = await load_actor(rapport, user_id)
            if actor is None:
                continue
            cache.put(key, actor)
        found[user_id] = actor
    return found


async def owner_problem(rapport: Rapport, sub: dict[str, Any], event_name: str) -> str | None:
    """Why the owner may not receive this event now (deactivated, lost the permission), or
    None when they may."""
    actors = await _owners(rapport, {sub["owner"]})
    return _actor_problem(rapport, actors.get(sub["owner"]), event_name)


def _actor_problem(rapport: Rapport, actor: Any, event_name: str) -> str | None:
    if actor is None:
        return "The person who set it up was deactivated."
    if not actor.can(MANAGE):
        return "The person who set it up may no longer manage webhooks."
    if event_name != PING_EVENT and not may_receive(rapport, actor, event_name):
        return "The person who set it up may no longer see these records."
    return None


# --- sending ----------------------------------------------------------------------------------------


def _pinned(url: str, address: str) -> tuple[str, str, str]:
    """The URL aimed at the checked ``address``, the Host header, and the TLS server name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


async def post(rapport: Rapport, sub: dict[str, Any], delivery: dict[str, Any]) -> Outcome:
    """One attempt: check the address again, POST the signed body, read a bounded answer."""
    started = time.monotonic()
    try:
        address = await netcheck.resolve_checked(sub["url"], allow_private=allow_private(rapport))
    except netcheck.UnsafeAddress as exc:
        return Outcome(False, None, None, None, f"Refused: the address {exc.message}.")
    target, host_header, server_name = _pinned(sub["url"], address)
    body = delivery["body"].encode()
    msg_id = message_id(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT, "Host": host_header,
        "Webhook-Id": msg_id, "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature_header(sub, msg_id, timestamp, body),
    }
    extensions = {"sni_hostname": server_name} if target.startswith("https:") else {}
    try:
        http = _client(target, server_name)
        request = http.build_request("POST", target, content=body, headers=headers,
                                     extensions=extensions)
        try:
            response = await http.send(request, stream=True)
        except httpx.RemoteProtocolError:
            # A kept connection the receiver had just closed: once more, on a new one.
            response = await http.send(request, stream=True)
        try:
            received = b""
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) >= RESPONSE_LIMIT:
                    break
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        return Outcome(False, None, _ms(started), None, "No answer in time.")
    except httpx.HTTPError as exc:
        return Outcome(False, None, _ms(started), None,
                       f"Could not connect: {type(exc).__name__}.")
    excerpt = received[:RESPONSE_LIMIT].decode("utf-8", "replace")[:EXCERPT_CHARS]
    ok = 200 <= response.status_code < 300
    error = None if ok else (
        "The receiver redirected; webhooks follow no redirects." if 300 <= response.status_code < 400
        else f"The receiver answered {response.status_code}.")
    return Outcome(ok, response.status_code, _ms(started), excerpt, error)


_tls: ssl.SSLContext | None = None
# Kept HTTP clients (and their open connections), one per checked address, port and TLS
# server name, for this process's event loop: a new client and connection per attempt cost
# more than a delivery to a nearby receiver. Keyed on the name too, so a connection opened
# (and its certificate checked) for one host name never carries another's request.
_clients: dict[tuple[str, str], httpx.AsyncClient] = {}
_clients_loop: Any = None
MAX_CLIENTS = 200


def _client(target: str, server_name: str) -> httpx.AsyncClient:
    global _clients_loop
    loop = asyncio.get_running_loop()
    if _clients_loop is not loop:  # clients belong to the loop that opened them
        _clients.clear()
        _clients_loop = loop
    parts = urlsplit(target)
    key = (f"{parts.scheme}://{parts.netloc}", server_name)
    client = _clients.get(key)
    if client is None:
        if len(_clients) >= MAX_CLIENTS:
            for old in list(_clients.values()):
                loop.create_task(old.aclose())
            _clients.clear()
        # trust_env=False: no proxy from the environment could reach what the check refused.
        client = httpx.AsyncClient(
            timeout=TIMEOUT, follow_redirects=False, trust_env=False, verify=_tls_context(),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10,
                                keepalive_expiry=4.0))
        _clients[key] = client
    return client


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every attempt: building one (loading the CA bundle)
    costs more than a delivery to a nearby receiver."""
    global _tls
    if _tls is None:
        import certifi

        _tls = ssl.create_default_context(cafile=certifi.where())
    return _tls


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _record(sub: dict[str, Any], delivery: dict[str, Any], outcome: Outcome,
                  status: str) -> None:
    at = now()
    async with WebhookDelivery._meta.db.transaction():
        await WebhookDelivery.update({
            WebhookDelivery.status: status,
            WebhookDelivery.attempts: WebhookDelivery.attempts + 1,
            WebhookDelivery.response_code: outcome.code,
            WebhookDelivery.response_ms: outcome.ms,
            WebhookDelivery.response_excerpt: outcome.excerpt,
            WebhookDelivery.error: outcome.error, WebhookDelivery.last_attempt_at: at,
        }).where(WebhookDelivery.id == delivery["id"]).run()
        failures = (WebhookSubscription.consecutive_failures + 1 if not outcome.ok else 0)
        await WebhookSubscription.update({
            WebhookSubscription.last_delivery_at: at,
            WebhookSubscription.last_status: status,
            WebhookSubscription.last_response_code: outcome.code,
            WebhookSubscription.consecutive_failures: failures,
        }).where(WebhookSubscription.id == sub["id"]).run()


async def _skip(delivery_id: int, reason: str) -> None:
    await WebhookDelivery.update({WebhookDelivery.status: SKIPPED, WebhookDelivery.error: reason}
                                 ).where(WebhookDelivery.id == delivery_id).run()


async def deliver(rapport: Rapport, job: Job) -> None:
    """The job: one attempt of one delivery; raises to be retried with backoff."""
    delivery = await get_delivery(int(job.args["delivery_id"]))
    if delivery is None or delivery["status"] in {SUCCEEDED, SKIPPED}:
        return  # deleted with its subscription, or done by an earlier run of this job
    sub = await get(delivery["subscription"])
    if sub is None:
        return
    if not sub["enabled"]:
        await _skip(delivery["id"], "Not sent: the webhook is switched off.")
        return
    problem = await owner_problem(rapport, sub, delivery["event_name"])
    if problem:
        await _skip(delivery["id"], f"Not sent. {problem}")
        await disable(rapport, sub, problem)
        return
    outcome = await post(rapport, sub, delivery)
    if outcome.ok:
        await _record(sub, delivery, outcome, SUCCEEDED)
        return
    if job.attempt < job.max_attempts:
        await _record(sub, delivery, outcome, RETRYING)
        raise DeliveryFailed(outcome.error or "delivery failed")
    await _record(sub, delivery, outcome, FAILED)
    attempts = delivery["attempts"] + 1
    await disable(rapport, sub, f"Every one of {attempts} attempts to deliver an event failed "
                                f"(the last: {outcome.error})")


# --- test ping and send again ------------------------------------------------------------------------


async def ping(rapport: Rapport, sub_id: int) -> dict[str, Any] | None:
    """Send a test message now (one attempt, even to a switched-off webhook, so the receiver
    can be checked before switching it on); returns the logged delivery."""
    sub = await get(sub_id)
    if sub is None:
        return None
    at = now()
    rows = await WebhookDelivery.insert(WebhookDelivery(
        subscription=sub_id, event_id=None, event_name=PING_EVENT, body="{}", status=PENDING,
        created_at=at)).returning(WebhookDelivery.id).run()
    delivery_id = rows[0]["id"]
    body = message_body(None, PING_EVENT, at, {"webhook": sub["name"]})
    await WebhookDelivery.update({WebhookDelivery.body: body}).where(
        WebhookDelivery.id == delivery_id).run()
    delivery = await get_delivery(delivery_id)
    assert delivery is not None
    outcome = await post(rapport, sub, delivery)
    await _record(sub, delivery, outcome, SUCCEEDED if outcome.ok else FAILED)
    return await get_delivery(delivery_id)


async def send_again(rapport: Rapport, delivery_id: int) -> bool:
    """Queue a delivery again (same message, same Webhook-Id, full retries); False when it is
    unknown or its webhook is switched off."""
    delivery = await get_delivery(delivery_id)
    if delivery is None:
        return False
    sub = await get(delivery["subscription"])
    if sub is None or not sub["enabled"]:
        return False
    async with WebhookDelivery._meta.db.transaction():
        await WebhookDelivery.update({WebhookDelivery.status: PENDING,
                                      WebhookDelivery.error: None}).where(
            WebhookDelivery.id == delivery_id).run()
        await jobs.enqueue(rapport, DELIVER_JOB, {"delivery_id": delivery_id},
                           max_attempts=MAX_ATTEMPTS)
    return True


# --- housekeeping --------------------------------------------------------------------------------------


async def purge(rapport: Rapport, job: Job | None = None) -> int:
    """Keep the log bounded: drop deliveries older than 30 days and all but the newest 1,000
    of each subscription (waiting or retrying ones are kept)."""
    cutoff = now() - timedelta(days=LOG_KEEP_DAYS)
    settled = WebhookDelivery.status.is_in([SUCCEEDED, FAILED, SKIPPED])
    deleted = await WebhookDelivery.delete().where(
        (WebhookDelivery.created_at < cutoff) & settled).returning(WebhookDelivery.id).run()
    count = len(deleted)
    for sub in await WebhookSubscription.select(WebhookSubscription.id).run():
        edge = await WebhookDelivery.select(WebhookDelivery.id).where(
            WebhookDelivery.subscription == sub["id"]).order_by(
            WebhookDelivery.id, ascending=False).offset(LOG_KEEP_PER_SUBSCRIPTION).first().run()
        if edge is not None:
            rows = await WebhookDelivery.delete().where(
                (WebhookDelivery.subscription == sub["id"])
                & (WebhookDelivery.id <= edge["id"]) & settled).returning(WebhookDelivery.id).run()
            count += len(rows)
    return count


async def _purge_job(rapport: Rapport, job: Job) -> None:
    await purge(rapport, job)


@hookimpl
async def shutdown(rapport):
    mine = _clients_loop is asyncio.get_running_loop()
    clients = list(_clients.values()) if mine else []
    _clients.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            await client.aclose()


@hookimpl
def register_permissions():
    return [Permission(MANAGE, "Manage outbound webhooks (send events to other systems)",
                       scoped=False)]


@hookimpl
def register_jobs(rapport):
    return [
        JobType(DELIVER_JOB, deliver, max_attempts=MAX_ATTEMPTS, timeout_seconds=60.0,
                description="Deliver an event to a webhook"),
        JobType(PURGE_JOB, _purge_job, schedule="41 3 * * *", unique=True,
                description="Trim the webhook delivery logs"),
    ]


__all__ = ["FAILED", "PENDING", "RETRYING", "SKIPPED", "SUCCEEDED", "WebhookError"]
