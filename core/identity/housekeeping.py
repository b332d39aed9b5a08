"""Identity housekeeping (core module): expired staff sessions are deleted hourly by the job
system (``core.identity.purge_sessions``), in bounded batches, so the session table does not
grow forever (every sign-in adds a row; sessions that are simply abandoned are never ended)."""

from __future__ import annotations

import logging

from core.identity.sessions import end_expired_sessions
from core.plugin import JobType, hookimpl

log = logging.getLogger("rapport.identity")

PURGE_EVERY_SECONDS = 3600


async def purge_sessions(rapport, job) -> None:
    # Idempotent: deleting what has expired twice deletes nothing the second time.
    removed = await end_expired_sessions()
    if removed:
        log.info("deleted %s expired sessions", removed)


@hookimpl
def register_jobs(rapport):
    return [JobType("core.identity.purge_sessions", purge_sessions,
                    schedule=PURGE_EVERY_SECONDS, unique=True, timeout_seconds=600,
                    description="Delete expired sign-in sessions (hourly)")]
