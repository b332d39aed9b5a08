"""Live updates: changes appear in open timelines, lists and "my day" without a reload.

Events about interactions are fanned out to Litestar channels; browsers listen with
server-sent events (``/live/...``) and ``static/js/live.js`` asks htmx to refresh the part of
the page that changed. With several workers every worker must hear every change, so the
channels backend is:

- Redis pub/sub when ``RAPPORT_REDIS_URL`` is set;
- otherwise PostgreSQL ``LISTEN/NOTIFY`` when the database is PostgreSQL;
- otherwise in memory (SQLite: one process, so one worker is all there is).

Streams never carry record contents, only ids and what kind of change happened, and each
stream is checked against the reader's row-level scope: at subscription for a customer
timeline, per event for the interactions list and the account/contact lists; "my day" and
the notification bell are the user's own channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import uuid
from collections.abc import AsyncGenerator, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from litestar import Request, get
from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from core.permissions import Actor, current_actor, scoped
from core.plugin import hookimpl

if TYPE_CHECKING:
    from core.app import Rapport
    from core.plugin import Event

log = logging.getLogger("rapport.live")

KEEPALIVE_SECONDS = 15.0
IMPORT_COUNT_BOUND = 10_000  # an import's new customers are counted up to this per reader
# Names this worker process in the "ready" event without revealing its pid: lets a client
# (and the two-worker test) tell which worker holds its stream.
WORKER_TAG = hashlib.sha256(f"{os.getpid()}:{uuid.uuid4()}".encode()).hexdigest()[:8]
LIVE_EVENTS = ("core.interaction.created", "core.interaction.updated", "core.followup.completed")
CUSTOMER_EVENTS = ("core.customer.created", "core.customer.updated", "core.customer.deleted",
                   "core.customer.merged", "core.customer.bulk_changed",
                   "core.customer.imported")


def backend_name(rapport: Rapport) -> str:
    if rapport.settings.redis_url:
        return "redis"
    return "memory" if rapport.settings.is_sqlite else "postgres"


# --- the link to Redis or PostgreSQL ------------------------------------------------------

CONNECT_SECONDS = 5.0  # one connection attempt (and how long start-up waits for the first)
PROBE_SECONDS = 5.0  # how often a connected link is checked (a failover may send no reset)
PUBLISH_SECONDS = 5.0  # one publish; past that the link counts as lost
SHUTDOWN_SECONDS = 5.0  # how long stopping waits for messages still to be sent
BACKOFF_FIRST, BACKOFF_CAP = 0.5, 30.0  # seconds between reconnection attempts
RESYNC = b'{"event": "core.live.resync"}'  # told to open streams after a reconnection


def _where(url: str) -> str:
    """Where a link connects, for the log: never the password."""
    parsed = urlparse(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.hostname or '127.0.0.1'}{port}{parsed.path or ''}"


class _PostgresBackend(AsyncPgChannelsBackend):
    """LISTEN/NOTIFY whose listening connection says when it is gone (killed, restarted)."""

    lost: Any = None  # a callable told when the listening connection terminates

    async def on_startup(self) -> None:
        await super().on_startup()
        self._listener_conn.add_termination_listener(
            lambda _connection: self.lost and self.lost(ConnectionError("connection closed")))

    async def probe(self) -> None:
        async with self._listener_lock:
            await self._listener_conn.fetchval("SELECT 1")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._listener_conn.terminate()


class _RedisBackend(RedisChannelsPubSubBackend):
    async def probe(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.on_shutdown()
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def _backend_factory(rapport: Rapport):
    """A function making a new connected-to-be backend, and where it connects."""
    if backend_name(rapport) == "redis":
        from redis.asyncio import Redis

        url = rapport.settings.redis_url

        def redis() -> _RedisBackend:
            client = Redis.from_url(url, socket_connect_timeout=CONNECT_SECONDS,
                                    socket_keepalive=True)
            return _RedisBackend(redis=client)

        return redis, f"Redis at {_where(url)}"
    import asyncpg

    from core.db import postgres_parameters

    # The data connections' own parameters: the URL's libpq options (sslmode, ...) and
    # Rapport's defaults hold for this connection exactly as for them.
    parameters = postgres_parameters(rapport.settings.database_url)

    def postgres() -> _PostgresBackend:
        return _PostgresBackend(make_connection=lambda: asyncpg.connect(
            **parameters, timeout=CONNECT_SECONDS))

    return postgres, f"PostgreSQL at {_where(rapport.settings.database_url)}"


class LiveLink(ChannelsBackend):
    """The backend Rapport gives Litestar's channels for Redis or PostgreSQL: it holds the
    real one and keeps it alive. A lost connection (Redis or PostgreSQL restarted, a failover,
    an idle reaper, a killed backend) is noticed by the stream failing, the connection's
    termination or a probe every ``PROBE_SECONDS``; it is logged, and the link reconnects
    with exponential backoff (``BACKOFF_FIRST`` doubling up to ``BACKOFF_CAP`` s), subscribes
    again to every channel with open streams and tells those streams to refresh (``resync``:
    they may have missed changes). Meanwhile publishing drops messages (live updates are a
    convenience: the pages catch up at the resync) and never fails or blocks a request, and
    stopping is bounded. ``status()`` feeds ``/healthz``."""

    def __init__(self, factory, where: str) -> None:
        self._factory = factory
        self.where = where
        self._real: Any = None
        self._wanted: set[str] = set()
        self._events: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._lost: asyncio.Event | None = None
        self._first: asyncio.Event | None = None
        self._lost_error: BaseException | None = None
        self.connected = False
        self.changed_at = datetime.now(UTC)
        self.dropped = 0  # messages not sent while the link was down

    def status(self) -> dict[str, Any]:
        return {"ok": self.connected, "connection": self.where.split(" at ")[0],
                "since": self.changed_at.isoformat(timespec="seconds")}

    # ChannelsBackend ------------------------------------------------------------------------

    async def on_startup(self) -> None:
        self._events = asyncio.Queue()
        self._lost, self._first = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name="rapport-live-link")
        # The first attempt, so the start-up log says at once whether live updates work.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), CONNECT_SECONDS + 1)

    async def on_shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, SHUTDOWN_SECONDS)
        real, self._real = self._real, None
        self.connected = False
        if real is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(real.close(), SHUTDOWN_SECONDS)

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        real = self._real
        if real is None:
            self.dropped += 1
            return
        try:
            await asyncio.wait_for(real.publish(data, channels), PUBLISH_SECONDS)
        except Exception as exc:
            self.dropped += 1
            self._fail(real, exc)

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = set(channels)
        self._wanted |= channels
        real = self._real
        if real is not None:
            try:
                await asyncio.wait_for(real.subscribe(channels), CONNECT_SECONDS)
            except Exception as exc:  # subscribed again once reconnected
                self._fail(real, exc)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        channels = set(channels)
        self._wanted -= channels
        real = self._real
        if real is not None:
            try:
                await asyncio.wait_for(real.unsubscribe(channels), CONNECT_SECONDS)
            except Exception as exc:
                self._fail(real, exc)

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        assert self._events is not None
        while True:
            yield await self._events.get()

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError

    # keeping it alive -----------------------------------------------------------------------

    def _fail(self, real: Any, exc: BaseException) -> None:
        if real is self._real and self._lost is not None and not self._lost.is_set():
            self._lost_error = exc
            self._lost.set()

    async def _connect(self) -> Any:
        real = self._factory()
        try:
            await asyncio.wait_for(real.on_startup(), CONNECT_SECONDS)
            if self._wanted:
                await asyncio.wait_for(real.subscribe(set(self._wanted)), CONNECT_SECONDS)
            await asyncio.wait_for(real.probe(), CONNECT_SECONDS)
        except BaseException:
            await asyncio.shield(real.close())
            raise
        return real

    async def _supervise(self) -> None:
        delay, ever, down_at = BACKOFF_FIRST, False, None
        assert self._first is not None
        while True:
            try:
                real = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if down_at is None:
                    down_at = datetime.now(UTC)
                    log.error("live updates: cannot reach %s (%s); open pages will not update "
                              "by themselves until it is back; trying again with backoff",
                              self.where, _reason(exc))
                else:
                    log.warning("live updates: %s still unreachable (%s); next try in %.0f s",
                                self.where, _reason(exc), delay)
                self._first.set()
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            self._lost = asyncio.Event()
            self._lost_error = None
            if isinstance(real, _PostgresBackend):
                real.lost = lambda error, real=real: self._fail(real, error)
            self._real, self.connected, self.changed_at = real, True, datetime.now(UTC)
            if down_at is not None:
                log.warning("live updates: connected to %s again after %.0f s; open pages "
                            "refresh", self.where, (self.changed_at - down_at).total_seconds())
                for channel in sorted(self._wanted):
                    self._events.put_nowait((channel, RESYNC))  # type: ignore[union-attr]
            elif not ever:
                log.info("live updates: connected to %s", self.where)
            ever, down_at, delay = True, None, BACKOFF_FIRST
            self._first.set()
            error = await self._watch(real)
            self._real, self.connected = None, False
            down_at = self.changed_at = datetime.now(UTC)
            log.warning("live updates: lost %s (%s); reconnecting", self.where, _reason(error))
            await asyncio.shield(real.close())

    async def _watch(self, real: Any) -> BaseException:
        """Until the connection is lost: pass its events on, probe it; return why it ended."""
        assert self._lost is not None

        async def pump() -> None:
            async for item in real.stream_events():
                self._events.put_nowait(item)  # type: ignore[union-attr]
            raise ConnectionError("the stream ended")

        async def probe() -> None:
            while True:
                await asyncio.sleep(PROBE_SECONDS)
                await asyncio.wait_for(real.probe(), CONNECT_SECONDS)

        tasks = [asyncio.create_task(pump()), asyncio.create_task(probe()),
                 asyncio.create_task(self._lost.wait())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                return task.exception()  # type: ignore[return-value]
        return self._lost_error or ConnectionError("connection lost")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _ChannelsPlugin(ChannelsPlugin):
    """Litestar's channels with a bounded stop: messages not sent within
    ``SHUTDOWN_SECONDS`` are dropped instead of holding the process (SIGTERM) for ever."""

    async def _on_shutdown(self) -> None:
        queue = self._pub_queue
        if queue is not None:
            try:
                await asyncio.wait_for(queue.join(), SHUTDOWN_SECONDS)
            except TimeoutError:
                log.warning("live updates: %d messages not sent at shutdown", queue.qsize())
            self._pub_queue = None
        await asyncio.wait_for(super()._on_shutdown(), SHUTDOWN_SECONDS * 2)


def _backend(rapport: Rapport):
    if backend_name(rapport) == "memory":
        return MemoryChannelsBackend()
    return LiveLink(*_backend_factory(rapport))


def live_status(rapport: Rapport) -> dict[str, Any]:
    """The live channel for ``/healthz``: ``{"ok", "connection", "since"}``."""
    plugin = getattr(rapport, "live", (None, None))[0]
    if plugin is None:
        return {"ok": False, "connection": backend_name(rapport), "since": None}
    link = plugin._backend
    if isinstance(link, LiveLink):
        return link.status()
    return {"ok": True, "connection": "memory"}


INSTANCE_ID_KEY = "core.live.instance_id"


async def instance_channel_prefix() -> str:
    """The channel prefix of the database the tables are bound to: a random id stored in the
    database by the first server to ask (every later one reads it). Every server and CLI on one
    database gets the same prefix however its URL spells the host, port, path or options;
    two databases sharing one Redis (or test runs sharing one) never hear each other."""
    from core.instance import InstanceSetting

    await InstanceSetting.raw(
        "INSERT INTO core_instance_setting (key, value, updated_at) VALUES ({}, {}, {}) "
        "ON CONFLICT (key) DO NOTHING", INSTANCE_ID_KEY, uuid.uuid4().hex,
        datetime.now(UTC)).run()
    row = await InstanceSetting.select(InstanceSetting.value).where(
        InstanceSetting.key == INSTANCE_ID_KEY).first().run()
    return f"rapport_{row['value'][:12]}"


class Channels:
    """Channel names for one instance, under the prefix its database holds
    (:func:`instance_channel_prefix`, read when live updates start)."""

    def __init__(self, rapport: Rapport) -> None:
        prefix = getattr(rapport, "live_prefix", None)
        if prefix is None:
            # Live updates not started in this process: nobody here publishes on these names.
            digest = hashlib.sha256(rapport.settings.database_url.encode()).hexdigest()[:10]
            prefix = f"rapport_{digest}"
        self.prefix = prefix

    def customer(self, customer_id: FromPath[int]) -> str:
        return f"{self.prefix}_customer_{int(customer_id)}"

    def user(self, user_id: int) -> str:
        return f"{self.prefix}_user_{int(user_id)}"

    @property
    def interactions(self) -> str:
        return f"{self.prefix}_interactions"

    @property
    def customers(self) -> str:
        return f"{self.prefix}_customers"

    def notifications(self, user_id: int) -> str:
        return f"{self.prefix}_notifications_{int(user_id)}"


def channels_plugin(rapport: Rapport) -> ChannelsPlugin:
    """The Litestar channels plugin for this instance; ``fan_out`` feeds it core's events."""
    return _ChannelsPlugin(backend=_backend(rapport), arbitrary_channels_allowed=True,
                          subscriber_max_backlog=200, subscriber_backlog_strategy="dropleft")


def fan_out(rapport: Rapport, plugin: ChannelsPlugin):
    """An event listener publishing interaction events to the channels of everyone concerned:
    the customers involved, the recorder, the follow-up's assignee and the interactions list."""
    names = Channels(rapport)

    async def listener(event: Event) -> None:
        if event.name in CUSTOMER_EVENTS:
            try:
                for message in split_message(customer_message(event)):
                    plugin.publish(message, [names.customers])
            except Exception:  # live updates are a convenience; never fail the write
                log.exception("could not publish %s to live channels", event.name)
            return
        if event.name not in LIVE_EVENTS:
            return
        payload = event.payload
        message = {"event": event.name, "interaction_id": payload.get("id"),
                   "customer_id": payload.get("customer_id")}
        targets = {names.interactions}
        for customer in [payload.get("customer_id"), *payload.get("participants", [])]:
            if customer is not None:
                targets.add(names.customer(customer))
        # A contact's interaction shows on its account's 360 view too (one primary-key read).
        with contextlib.suppress(Exception):
            account = await _account_of(payload.get("customer_id"))
            if account is not None:
                targets.add(names.customer(account))
        for user in (payload.get("followup_assignee"), payload.get("user_id")):
            if user is not None:
                targets.add(names.user(user))
        try:
            plugin.publish(message, sorted(targets))
        except Exception:  # live updates are a convenience; never fail the write
            log.exception("could not publish %s to live channels", event.name)

    return listener


async def _account_of(customer_id: Any) -> int | None:
    if customer_id is None:
        return None
    from core.customers.tables import Customer

    row = await Customer.select(Customer.account).where(
        Customer.id == int(customer_id)).first().run()
    return row["account"] if row else None


def customer_message(event: Event) -> dict[str, Any]:
    """The channel message for a customer event: the ids now to be re-read (``ids``) and the
    ids gone (``gone``), each with the owner/team that decided who could see it before
    (``was``). The stream strips ``was`` and drops what the reader may not see."""
    payload = event.payload
    was: dict[str, list[Any]] = {}
    gone: list[int] = []
    if event.name == "core.customer.imported":
        # An import may write a million rows: its id range travels, never the ids.
        return {"event": event.name, "kind": payload.get("kind"), "ids": [], "gone": [],
                "was": {}, "range": [int(payload["first_id"]), int(payload["last_id"])]}
    if event.name == "core.customer.bulk_changed":
        ids = [int(i) for i in payload.get("ids", [])]
        for before in payload.get("before", []):
            was[str(before["id"])] = [before.get("owner"), before.get("team")]
    elif event.name == "core.customer.deleted":
        ids, gone = [], [int(payload["id"])]
        was[str(payload["id"])] = [payload.get("owner"), payload.get("team")]
    else:
        ids = [int(payload["id"])]
        before = payload.get("before")
        if before:
            was[str(payload["id"])] = [before.get("owner"), before.get("team")]
        if payload.get("merged_id") is not None:
            gone = [int(payload["merged_id"])]
            was[str(payload["merged_id"])] = [payload.get("merged_owner"),
                                              payload.get("merged_team")]
    return {"event": event.name, "kind": payload.get("kind"), "ids": ids, "gone": gone,
            "was": was}


def split_message(message: dict[str, Any], size: int = 100) -> list[dict[str, Any]]:
    """A bulk change in pieces of ``size`` ids: PostgreSQL's NOTIFY refuses payloads over
    8,000 bytes, and 1,000 ids with their owners would exceed that."""
    if len(message["ids"]) + len(message["gone"]) <= size:
        return [message]
    pieces = []
    for key in ("ids", "gone"):
        for start in range(0, len(message[key]), size):
            part = message[key][start:start + size]
            pieces.append({**message, "ids": [], "gone": [], key: part,
                           "was": {str(i): message["was"][str(i)] for i in part
                                   if str(i) in message["was"]}})
    return pieces


# The server's lifespan starts and stops the channels through core's own startup/shutdown
# hooks, so the web shell needs no knowledge of live updates.


@hookimpl
async def startup(rapport):
    rapport.live_prefix = await instance_channel_prefix()
    plugin = channels_plugin(rapport)
    await plugin.__aenter__()
    listener = fan_out(rapport, plugin)
    rapport.event_listeners.append(listener)
    rapport.live = (plugin, listener)


@hookimpl
async def shutdown(rapport):
    plugin, listener = getattr(rapport, "live", (None, None))
    if plugin is None:
        return
    rapport.live = (None, None)
    with contextlib.suppress(ValueError):
        rapport.event_listeners.remove(listener)
    await plugin.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def publishing(rapport: Rapport) -> AsyncGenerator[None, None]:
    """Around work done outside the server (a CLI import): events published meanwhile reach
    the servers' open pages when the channels cross processes (Redis, PostgreSQL). In memory
    they could reach no one, so nothing is started then."""
    if backend_name(rapport) == "memory" or getattr(rapport, "live", (None, None))[0]:
        yield
        return
    await startup(rapport)
    try:
        yield
    finally:
        await shutdown(rapport)  # after the channels' queue is flushed


@hookimpl
def register_routes():
    return ROUTES


def live_plugin(rapport: Rapport) -> ChannelsPlugin:
    plugin = getattr(rapport, "live", (None, None))[0]
    if plugin is None:
        raise NotFoundException("Live updates are not running")
    return plugin


async def _visible_interaction(rapport: Rapport, actor: Actor, interaction_id: Any) -> bool:
    from core.interactions.tables import Interaction

    try:
        query = Interaction.exists().where(Interaction.id == int(interaction_id))
    except (TypeError, ValueError):
        return False
    return await scoped(query, rapport, actor, "core.interaction.view", Interaction).run()


def _could_see(rapport: Rapport, actor: Actor, owner: Any, team: Any) -> bool:
    """Was a customer with this owner and team inside the reader's view scope? Used for rows
    that no longer exist (deleted, merged away) or left the scope; where a plugin decides the
    rule (``row_filter``), a vanished row cannot be checked and is not reported."""
    scope = actor.grants.get("core.customer.view")
    if scope == "all":
        return True
    if scope not in ("own", "team") or rapport.hook.row_filter(
            rapport=rapport, user=actor, permission="core.customer.view",
            table=_customer_table(), scope=scope) is not None:
        return False
    return owner == actor.id or (scope == "team" and team in actor.team_ids)


def _customer_table():
    from core.customers.tables import Customer

    return Customer


async def visible_customer_change(rapport: Rapport, actor: Actor, kind: str,
                                  message: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a customer-list message ``actor`` may learn, or ``None``: ids re-checked
    through the same row scope the list uses (one query), vanished ids by who could see them,
    and for an import the number of its new customers the reader may see (``new``)."""
    if message.get("kind") not in (kind, None):
        return None
    Customer = _customer_table()
    if message.get("range"):
        # Counted up to a bound: a million-row import must not cost every reader a full count.
        first, last = (int(i) for i in message["range"])
        query = Customer.select(Customer.id).where(
            (Customer.id >= first) & (Customer.id <= last) & (Customer.kind == kind)
        ).limit(IMPORT_COUNT_BOUND + 1)
        new = len(await scoped(query, rapport, actor, "core.customer.view", Customer).run())
        if not new:
            return None
        change = {"event": message.get("event"), "ids": [], "gone": [],
                  "new": min(new, IMPORT_COUNT_BOUND)}
        return {**change, "more": True} if new > IMPORT_COUNT_BOUND else change
    was = message.get("was") or {}
    ids = [int(i) for i in message.get("ids") or []][:1000]
    visible: list[int] = []
    if ids:
        query = Customer.select(Customer.id).where(Customer.id.is_in(ids) &
                                                   (Customer.kind == kind))
        visible = [r["id"] for r in await scoped(query, rapport, actor, "core.customer.view",
                                                 Customer).run()]
    shown = set(visible)
    gone = [int(i) for i in message.get("gone") or [] if _could_see(rapport, actor, *was.get(
        str(i), [None, None]))]
    # A change that moved a customer out of the reader's reach removes it from their list.
    gone += [i for i in ids if i not in shown and str(i) in was
             and _could_see(rapport, actor, *was[str(i)])]
    if not visible and not gone:
        return None
    return {"event": message.get("event"), "ids": visible, "gone": gone}


async def stream(request: Request, plugin: ChannelsPlugin, channel: str, *, check_each: bool,
                 visible: Any = None) -> AsyncGenerator:
    """Server-sent events for one channel: ``ready`` once subscribed, then ``change`` events
    (``{"event", "interaction_id", "customer_id"}``), and a comment every 15 s so proxies keep
    the connection open and dead clients are noticed. ``visible`` (optional) is an async
    ``(rapport, actor, message) -> message | None`` deciding what this reader is sent."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    async with plugin.start_subscription([channel]) as subscriber:
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        async def pump() -> None:
            async for raw in subscriber.iter_events():
                await queue.put(raw)

        reader = asyncio.create_task(pump())
        try:
            yield ServerSentEventMessage(event="ready", data=json.dumps({"worker": WORKER_TAG}),
                                         retry=3000)
            while True:
                try:
                    raw = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive", data=None)
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if message.get("event") == "core.live.resync":
                    # The link was down a while (core.live.LiveLink): changes may have been
                    # missed, so the page refreshes what it shows.
                    yield ServerSentEventMessage(event="resync", data="{}")
                    continue
                if check_each and not await _visible_interaction(
                        rapport, actor, message.get("interaction_id")):
                    continue
                if visible is not None:
                    message = await visible(rapport, actor, message)
                    if message is None:
                        continue
                yield ServerSentEventMessage(event="change", data=json.dumps(message))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


def sse(request: Request, channel: str, *, check_each: bool,
        visible: Any = None) -> ServerSentEvent:
    """The response for a live route: ``stream`` over ``channel`` (see there for
    ``check_each`` and ``visible``), with headers that keep proxies from buffering it."""
    plugin = live_plugin(request.app.state.rapport)
    return ServerSentEvent(stream(request, plugin, channel, check_each=check_each,
                                  visible=visible),
                           headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@get("/live/customers/{customer_id:int}", opt={"permission": "core.interaction.view"},
     include_in_schema=False)
async def customer_stream(request: Request, customer_id: FromPath[int]) -> ServerSentEvent:
    """Changes to one customer's timeline; 404 when the customer is outside the reader's
    scope (checked once: everything on the channel is about this customer)."""
    from core.customers.tables import Customer

    rapport = request.app.state.rapport
    actor = current_actor(request)
    query = scoped(Customer.exists().where(Customer.id == customer_id), rapport, actor,
                   "core.customer.view", Customer)
    if not await query.run():
        raise NotFoundException("No such customer")
    return sse(request, Channels(rapport).customer(customer_id), check_each=False)


@get("/live/interactions", opt={"permission": "core.interaction.view"},
     include_in_schema=False)
async def interactions_stream(request: Request) -> ServerSentEvent:
    """Every change the reader may see (checked per event against their scope)."""
    return sse(request, Channels(request.app.state.rapport).interactions, check_each=True)


@get("/live/my-day", opt={"permission": "authenticated"}, include_in_schema=False)
async def my_day_stream(request: Request) -> ServerSentEvent:
    """Changes to the signed-in user's follow-ups and the interactions they recorded."""
    actor = current_actor(request)
    return sse(request, Channels(request.app.state.rapport).user(actor.id), check_each=False)


def _customer_list_stream(request: Request, kind: str) -> ServerSentEvent:
    plugin = live_plugin(request.app.state.rapport)

    async def visible(rapport, actor, message):
        return await visible_customer_change(rapport, actor, kind, message)

    channel = Channels(request.app.state.rapport).customers
    return ServerSentEvent(stream(request, plugin, channel, check_each=False, visible=visible),
                           headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@get("/live/accounts", opt={"permission": "core.customer.view"}, include_in_schema=False)
async def accounts_stream(request: Request) -> ServerSentEvent:
    """Accounts created, changed, merged or deleted that the reader may see: ``change``
    events ``{"event", "ids", "gone"}`` (ids only; the page re-reads through its own route)."""
    return _customer_list_stream(request, "account")


@get("/live/contacts", opt={"permission": "core.customer.view"}, include_in_schema=False)
async def contacts_stream(request: Request) -> ServerSentEvent:
    """Like ``/live/accounts``, for contacts."""
    return _customer_list_stream(request, "contact")


ROUTES = [customer_stream, interactions_stream, my_day_stream, accounts_stream, contacts_stream]
