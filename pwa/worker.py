"""Push delivery as a job (``pwa.push.deliver``): due reminders into the outbox, the outbox to
push services. It runs every ``push_poll_seconds`` (5) for reminders coming due and retries
waiting out their backoff, and at once when a message is queued (:func:`pwa.push.enqueue`
queues the job, which is unique: a burst of messages wakes one run). Any number of job
workers may run it: outbox rows and reminders are claimed atomically, so each is sent once."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import httpx

from core.plugin import JobType
from pwa import push, reminders

if TYPE_CHECKING:
    from core.app import Rapport
    from core.plugin import Job

log = logging.getLogger("rapport.push")


def poll_seconds(rapport: Rapport) -> float:
    extra = rapport.settings.extra or {}
    value = extra.get("push_poll_seconds") or os.environ.get("RAPPORT_PUSH_POLL_SECONDS", "5")
    try:
        return max(0.1, float(value))
    except ValueError:
        return 5.0


async def tick(rapport: Rapport, http: httpx.AsyncClient | None = None) -> int:
    """One round: run due reminders, then deliver due notifications."""
    await reminders.run_due(rapport)
    return await push.deliver_due(rapport, http)


async def deliver(rapport: Rapport, job: Job) -> None:
    # Idempotent: a run only sends rows it claims, and a row is claimed by one run at a time.
    async with httpx.AsyncClient(timeout=10.0) as http:
        await tick(rapport, http)


def job_types(rapport: Rapport) -> list[JobType]:
    # One attempt: the next occurrence (seconds away) is the retry, and push rows keep their
    # own backoff per device.
    return [JobType(push.DELIVER_JOB, deliver, schedule=poll_seconds(rapport), unique=True,
                    max_attempts=1, timeout_seconds=120,
                    description="Send due follow-up reminders and push notifications")]
