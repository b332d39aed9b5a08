"""Rate limits that hold under concurrency: count first, then act.

A limit is a counter per (name, subject) in a fixed window (``login-ip`` and an address, 15
minutes). :func:`hit` adds to it and returns the new count in **one atomic statement**, so 40
requests arriving together are counted 1..40 and only the first ``limit`` go on; nothing reads
a count and then decides (the old way let parallel requests all pass the same check).

- With ``RAPPORT_REDIS_URL`` set, counters are Redis ``INCRBY`` with an expiry (shared by
  every worker and server);
- otherwise ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on ``core_rate_count`` (SQLite
  and PostgreSQL), shared by every worker on the database. A Redis that cannot be reached
  falls back to the database, so a limit never silently stops counting.

Reserve before the work it limits (checking a password, sending a form), and give the
reservation back with :func:`give_back` when the outcome should not count (a successful
sign-in).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.table import Table

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.rate_limits")


class RateCount(Table, tablename="core_rate_count"):
    """One counter per limit, subject and window; rows past ``expires_at`` are pruned."""

    key = Varchar(length=100, primary_key=True)
    hits = Integer(default=0)
    expires_at = Timestamptz(index=True)


def _window(window: timedelta, now: datetime) -> tuple[int, datetime]:
    seconds = max(1, int(window.total_seconds()))
    bucket = int(now.timestamp()) // seconds
    return bucket, datetime.fromtimestamp((bucket + 1) * seconds, UTC)


def counter_key(name: str, subject: str, bucket: int) -> str:
    """A bounded key: subjects (addresses, e-mail addresses) are hashed."""
    digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{name[:40]}:{bucket}:{digest}"


# A Redis client's connections belong to the event loop that opened them: one per loop.
_redis_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis(rapport: Rapport | None):
    url = rapport.settings.redis_url if rapport is not None else None
    if not url:
        return None
    clients = _redis_clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(url)
    if client is None:
        from redis.asyncio import Redis

        client = clients[url] = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


async def _redis_add(rapport: Rapport | None, key: str, amount: int, expires: datetime) -> int | None:
    client = _redis(rapport)
    if client is None:
        return None
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.incrby(f"rapport:rate:{key}", amount)
            pipe.expireat(f"rapport:rate:{key}", int(expires.timestamp()) + 1)
            count, _ = await pipe.execute()
        return int(count)
    except Exception as exc:  # unreachable Redis: count in the database instead
        log.warning("rate limit counter falls back to the database: Redis failed: %s", exc)
        return None


async def _database_add(key: str, amount: int, expires: datetime) -> int:
    rows = await RateCount.raw(
        "INSERT INTO core_rate_count (key, hits, expires_at) VALUES ({}, {}, {}) "
        "ON CONFLICT (key) DO UPDATE SET hits = core_rate_count.hits + excluded.hits "
        "RETURNING hits", key, amount, expires).run()
    if random.random() < 0.02:  # prune now and then; expired rows count for nothing
        await RateCount.delete().where(RateCount.expires_at < datetime.now(UTC)).run()
    return int(rows[0]["hits"])


async def _add(rapport: Rapport | None, name: str, subject: str, window: timedelta, amount: int,
               now: datetime | None) -> int:
    bucket, expires = _window(window, now or datetime.now(UTC))
    key = counter_key(name, subject, bucket)
    counted = await _redis_add(rapport, key, amount, expires)
    return counted if counted is not None else await _database_add(key, amount, expires)


async def hit(rapport: Rapport | None, name: str, subject: str, window: timedelta, *,
              now: datetime | None = None) -> int:
    """Count one more for ``subject`` under limit ``name`` in the current window; the count
    including this one (atomic: concurrent callers each get a different number)."""
    return await _add(rapport, name, subject, window, 1, now)


async def allow(rapport: Rapport | None, name: str, subject: str, limit: int, window: timedelta, *,
                now: datetime | None = None) -> bool:
    """Reserve one of ``limit`` per window for ``subject``; ``False`` once they are used up.
    An empty subject (an unknown client address) is not limited."""
    if not subject:
        return True
    return await hit(rapport, name, subject, window, now=now) <= limit


async def give_back(rapport: Rapport | None, name: str, subject: str, window: timedelta, *,
                    now: datetime | None = None) -> None:
    """Undo one reservation of :func:`allow` (the outcome should not count)."""
    if subject:
        await _add(rapport, name, subject, window, -1, now)


async def count(rapport: Rapport | None, name: str, subject: str, window: timedelta, *,
                now: datetime | None = None) -> int:
    """The current window's count, without adding to it."""
    return await _add(rapport, name, subject, window, 0, now)
