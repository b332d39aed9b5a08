"""Identity housekeeping (core module): expired staff sessions are deleted at startup and
then hourly by each worker, in bounded batches, so the session table does not grow forever
(every sign-in adds a row; sessions that are simply abandoned are never ended)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.identity.sessions import end_expired_sessions
from core.plugin import hookimpl

log = logging.getLogger("rapport.identity")

PURGE_EVERY_SECONDS = 3600.0


async def purge_forever() -> None:
    while True:
        try:
            removed = await end_expired_sessions()
            if removed:
                log.info("deleted %s expired sessions", removed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deleting expired sessions failed; trying again in an hour")
        await asyncio.sleep(PURGE_EVERY_SECONDS)


@hookimpl
async def startup(rapport):
    # In the background: startup does not wait for a large backlog.
    rapport._session_purge = asyncio.create_task(purge_forever(), name="rapport-session-purge")


@hookimpl
async def shutdown(rapport):
    task = getattr(rapport, "_session_purge", None)
    rapport._session_purge = None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
