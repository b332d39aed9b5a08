"""The background task each server worker runs: due reminders into the outbox, the outbox to
push services. Started by the ``startup`` hook, stopped by ``shutdown``. Several workers (or
servers) may run it at once: rows are claimed atomically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

import httpx

from pwa import push, reminders

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.push")


def poll_seconds(rapport: Rapport) -> float:
    extra = rapport.settings.extra or {}
    value = extra.get("push_poll_seconds") or os.environ.get("RAPPORT_PUSH_POLL_SECONDS", "5")
    try:
        return max(0.1, float(value))
    except ValueError:
        return 5.0


def enabled(rapport: Rapport) -> bool:
    extra = rapport.settings.extra or {}
    flag = extra.get("push_worker") or os.environ.get("RAPPORT_PUSH_WORKER", "on")
    return str(flag).lower() not in {"0", "off", "false", "no"}


async def tick(rapport: Rapport, http: httpx.AsyncClient | None = None) -> int:
    """One round: run due reminders, then deliver due notifications."""
    await reminders.run_due(rapport)
    return await push.deliver_due(rapport, http)


async def run_forever(rapport: Rapport) -> None:
    wake: asyncio.Event = rapport._push_wake
    interval = poll_seconds(rapport)
    async with httpx.AsyncClient(timeout=10.0) as http:
        while True:
            try:
                await tick(rapport, http)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push worker round failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)
            wake.clear()


async def start(rapport: Rapport) -> None:
    rapport._push_wake = asyncio.Event()
    if enabled(rapport):
        rapport._push_task = asyncio.create_task(run_forever(rapport), name="rapport-push")


async def stop(rapport: Rapport) -> None:
    task = getattr(rapport, "_push_task", None)
    rapport._push_task = None
    rapport._push_wake = None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
