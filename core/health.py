"""``/healthz``: is every service this server needs there?

Each dependency is checked (database, Redis when configured, the live-updates channel, the
job queue's worker) and reported; the answer is 200 ``{"status": "ok", "checks": {...}}`` when
all are well and 503 ``{"status": "fail", ...}`` when one is not, so a load balancer or a
monitor takes the server out or raises an alarm. Nothing secret is shown: what failed and
since when; the reason is in the server's log. docs/self-hosting.md says what each means.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.health")

CHECK_SECONDS = 3.0  # one dependency's answer; slower counts as down


async def _database() -> dict[str, Any]:
    from core.instance import InstanceSetting

    try:
        await asyncio.wait_for(InstanceSetting.raw("SELECT 1").run(), CHECK_SECONDS)
    except Exception as exc:
        log.warning("health: the database does not answer: %s", exc)
        return {"ok": False}
    return {"ok": True}


async def _redis(url: str) -> dict[str, Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=CHECK_SECONDS,
                            socket_timeout=CHECK_SECONDS)
    try:
        await asyncio.wait_for(client.ping(), CHECK_SECONDS)
    except Exception as exc:
        log.warning("health: Redis does not answer: %s", exc)
        return {"ok": False}
    finally:
        try:
            await asyncio.wait_for(client.aclose(), CHECK_SECONDS)
        except Exception:  # noqa: S110 - closing a connection that never opened
            pass
    return {"ok": True}


def _jobs(rapport: Rapport) -> dict[str, Any]:
    from core import jobs

    if not jobs.WorkerConfig.for_rapport(rapport).in_server:
        return {"ok": True, "worker": "separate"}  # `rapport worker` processes run the jobs
    worker = jobs.running_worker(rapport)
    if worker is None or not worker.running:
        return {"ok": False, "worker": "stopped"}
    answer: dict[str, Any] = {"ok": True, "worker": "running"}
    if worker.listening is not None:  # PostgreSQL: woken by NOTIFY, else it polls
        answer["listening"] = worker.listening
    return answer


async def check(rapport: Rapport) -> tuple[bool, dict[str, Any]]:
    """Every dependency's state; True when all are well."""
    from core.live import live_status

    checks: dict[str, Any] = {"database": await _database()}
    if rapport.settings.redis_url:
        checks["redis"] = await _redis(rapport.settings.redis_url)
    checks["live"] = live_status(rapport)
    checks["jobs"] = _jobs(rapport)
    return all(c["ok"] for c in checks.values()), checks
