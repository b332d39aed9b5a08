"""A test plugin declaring job types whose handlers record what they did."""

from __future__ import annotations

import asyncio

from core.plugin import JobType, hookimpl


class Jobs:
    def __init__(self) -> None:
        self.ran: list[tuple[int, dict, int]] = []  # (job id, args, attempt)
        self.fail_times = 0
        self.started = asyncio.Event()

    async def record(self, rapport, job):
        self.ran.append((job.id, dict(job.args), job.attempt))
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("job failed on purpose")

    async def slow(self, rapport, job):
        self.started.set()
        await asyncio.sleep(job.args.get("seconds", 30))
        self.ran.append((job.id, dict(job.args), job.attempt))

    async def tick(self, rapport, job):
        self.ran.append((job.id, {"slot": job.scheduled_for.isoformat()}, job.attempt))

    @hookimpl
    def register_jobs(self):
        return [
            JobType("testing.record", self.record, max_attempts=3),
            JobType("testing.slow", self.slow, timeout_seconds=0.3, max_attempts=1),
            JobType("testing.once", self.record, unique=True),
            JobType("testing.tick", self.tick, schedule=60),
            JobType("testing.cron", self.tick, schedule="*/5 * * * *"),
        ]


def with_jobs(rapport) -> Jobs:
    plugin = Jobs()
    rapport.pm.register(plugin, name="testing_jobs")
    return plugin
