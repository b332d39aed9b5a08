"""Rate limits hold under parallel requests, and forwarded addresses are believed only from
the configured proxies (issue 17, item 5)."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

from core import rate_limits
from core.audit import AuditEntry
from core.identity import lockout
from tests.conftest import DEMO_PASSWORD, app_client, csrf_headers, make_user


async def _login(client, email, password, **headers):
    return await client.post("/login", data={"email": email, "password": password},
                             headers={**await csrf_headers(client), **headers},
                             follow_redirects=False)


async def test_parallel_requests_never_pass_a_limit_together(make_rapport, backend):
    rapport = await make_rapport()
    async with app_client(rapport):
        subject = uuid.uuid4().hex
        passed = await asyncio.gather(*(
            rapport_limits_allow(rapport, subject) for _ in range(40)))
        assert sum(passed) == 20
        assert await rate_limits.count(rapport, "test", subject, timedelta(hours=1)) == 40
        # Another subject has its own count.
        assert await rate_limits.allow(rapport, "test", "someone else", 20, timedelta(hours=1))


async def rapport_limits_allow(rapport, subject):
    return await rate_limits.allow(rapport, "test", subject, 20, timedelta(hours=1))


async def test_parallel_wrong_passwords_are_checked_at_most_five_times(client):
    await make_user("ada@example.test")
    await csrf_headers(client)
    answers = await asyncio.gather(*(
        _login(client, "ada@example.test", f"guess {i}") for i in range(16)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(400) == 4 and codes.count(429) == 12, codes
    failed = await AuditEntry.count().where(AuditEntry.action == "login_failed").run()
    assert failed == 5  # the other 11 were refused before their password was looked at
    assert (await _login(client, "ada@example.test", DEMO_PASSWORD)).status_code == 429


async def test_forwarded_for_from_loopback_is_not_believed_by_default(client, monkeypatch):
    monkeypatch.setattr(lockout, "MAX_FAILURES_PER_IP", 3)
    for i in range(3):
        await _login(client, f"user{i}@example.test", "guess",
                     **{"x-forwarded-for": f"203.0.113.{i}"})
    answer = await _login(client, "other@example.test", "guess",
                          **{"x-forwarded-for": "203.0.113.99"})
    assert answer.status_code == 429
    assert "Too many sign-in attempts from your network" in answer.text


async def test_clients_behind_a_configured_proxy_are_told_apart(make_rapport, monkeypatch):
    monkeypatch.setattr(lockout, "MAX_FAILURES_PER_IP", 3)
    rapport = await make_rapport(trusted_proxies=("127.0.0.1", "10.0.0.0/8"))
    async with app_client(rapport) as client:
        for i in range(3):
            await _login(client, f"user{i}@example.test", "guess",
                         **{"x-forwarded-for": "203.0.113.7"})
        blocked = await _login(client, "x@example.test", "guess",
                               **{"x-forwarded-for": "203.0.113.7"})
        assert blocked.status_code == 429
        # A spoofed first hop is ignored: the address the trusted proxies saw counts.
        spoofed = await _login(client, "y@example.test", "guess",
                               **{"x-forwarded-for": "198.51.100.1, 203.0.113.7, 10.1.2.3"})
        assert spoofed.status_code == 429
        other = await _login(client, "z@example.test", "guess",
                             **{"x-forwarded-for": "203.0.113.8"})
        assert other.status_code == 400
        ips = {r["ip"] for r in await AuditEntry.select(AuditEntry.ip).where(
            AuditEntry.action == "login_failed").run()}
        assert ips == {"203.0.113.7", "203.0.113.8"}


async def test_counters_live_in_redis_when_it_is_configured(make_rapport):
    rapport = await make_rapport(redis_url=os.environ.get("RAPPORT_TEST_REDIS_URL",
                                                          "redis://127.0.0.1:6379/0"))
    async with app_client(rapport):
        subject = uuid.uuid4().hex
        passed = await asyncio.gather(*(
            rate_limits.allow(rapport, "test", subject, 5, timedelta(minutes=5))
            for _ in range(12)))
        assert sum(passed) == 5
        await rate_limits.give_back(rapport, "test", subject, timedelta(minutes=5))
        assert await rate_limits.count(rapport, "test", subject, timedelta(minutes=5)) == 11
        assert await rate_limits.RateCount.count().run() == 0


async def test_an_unreachable_redis_still_counts_in_the_database(make_rapport):
    rapport = await make_rapport(redis_url="redis://127.0.0.1:1/0")
    async with app_client(rapport):
        results = [await rate_limits.allow(rapport, "test", "s", 2, timedelta(minutes=5))
                   for _ in range(3)]
        assert results == [True, True, False]
        assert await rate_limits.RateCount.count().run() == 1


