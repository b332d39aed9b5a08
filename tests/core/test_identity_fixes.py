"""Identity fixes: a TOTP code signs in once, administrators can lift a lockout (audited),
and expired session rows are deleted."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import httpx
import pyotp

from core.audit import AuditEntry
from core.identity import two_factor
from core.identity.sessions import end_expired_sessions
from core.identity.tables import StaffSession, User
from tests.conftest import DEMO_PASSWORD, csrf_headers, make_user, sign_in
from tests.core.identity.test_two_factor import _enrol, _password_step, _sign_in_plain

# --- TOTP codes are good once ----------------------------------------------------------------


async def test_a_code_that_signed_in_cannot_sign_in_again(client):
    await make_user("ada@example.test")
    await _sign_in_plain(client)
    secret = await _enrol(client)
    totp = pyotp.TOTP(secret)
    await client.post("/logout", headers=await csrf_headers(client))

    code = totp.now()
    await _password_step(client)
    first = await client.post("/login/verify", data={"code": code, "next": "/"},
                              headers=await csrf_headers(client), follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    await client.post("/logout", headers=await csrf_headers(client))

    # Someone who saw that code tries it again within its window: refused.
    await _password_step(client)
    replay = await client.post("/login/verify", data={"code": code, "next": "/"},
                               headers=await csrf_headers(client))
    assert replay.status_code == 400
    assert (await client.get("/", headers={"accept": "application/json"})).status_code == 401
    # The next code (the authenticator's following one) still works.
    following = totp.at(time.time() + totp.interval)
    ok = await client.post("/login/verify", data={"code": following, "next": "/"},
                           headers=await csrf_headers(client), follow_redirects=False)
    assert ok.status_code == 303


async def test_use_code_accepts_each_time_step_once_and_never_an_older_one(rapport):
    user = await make_user("bob@example.test")
    secret = await two_factor.start_enrolment(user)
    totp = pyotp.TOTP(secret)
    t = 1_800_000_000.0
    assert await two_factor.use_code(user, totp.at(t), at=t)
    assert not await two_factor.use_code(user, totp.at(t), at=t)  # the same code again
    assert not await two_factor.use_code(user, totp.at(t - 30), at=t)  # an older one
    assert not await two_factor.use_code(user, "000000", at=t + 30)
    assert await two_factor.use_code(user, totp.at(t + 30), at=t + 30)
    row = await User.select(User.totp_last_step).where(User.id == user).first().run()
    assert row["totp_last_step"] == int((t + 30) // 30)


# --- administrators lift a lockout -------------------------------------------------------------


async def _lock(client, email: str) -> None:
    for _ in range(5):
        await client.post("/login", data={"email": email, "password": "wrong password"},
                          headers=await csrf_headers(client), follow_redirects=False)
    locked = await client.post("/login", data={"email": email, "password": DEMO_PASSWORD},
                               headers=await csrf_headers(client), follow_redirects=False)
    assert locked.status_code == 429


async def test_administrator_unlocks_a_locked_out_user_and_it_is_audited(admin_client):
    ada = await make_user("ada@example.test", roles=["field_representative"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin_client.rapport.asgi),
                                 base_url="http://testserver.local") as other:
        await _lock(other, "ada@example.test")
        listing = await admin_client.get("/admin/users")
        assert f'<a href="/admin/users/{ada}">locked</a>' in listing.text
        page = await admin_client.get(f"/admin/users/{ada}")
        assert "Unlock now" in page.text
        done = await admin_client.post(f"/admin/users/{ada}/unlock",
                                       headers=await csrf_headers(admin_client),
                                       follow_redirects=False)
        assert done.status_code == 303 and "unlocked=1" in done.headers["location"]
        assert "Unlock now" not in (await admin_client.get(f"/admin/users/{ada}")).text
        entry = await AuditEntry.select().where(
            (AuditEntry.action == "unlock") & (AuditEntry.record_id == str(ada))).first().run()
        assert entry is not None and entry["actor_id"] == admin_client.user_id
        await sign_in(other, "ada@example.test")  # the right password works again


async def test_only_user_managers_may_unlock(client):
    ada = await make_user("ada@example.test")
    await make_user("rep@example.test", roles=["field_representative"])
    await _lock(client, "ada@example.test")
    await sign_in(client, "rep@example.test")
    refused = await client.post(f"/admin/users/{ada}/unlock", headers=await csrf_headers(client),
                                follow_redirects=False)
    assert refused.status_code == 403
    row = await User.select(User.locked_until).where(User.id == ada).first().run()
    assert row["locked_until"] is not None


# --- expired sessions are deleted ----------------------------------------------------------------


async def _sessions(user: int, expired: int, live: int) -> None:
    now = datetime.now(UTC)
    rows = [StaffSession(key_hash=hashlib.sha256(f"{user}-{i}".encode()).hexdigest(), user=user,
                         expires_at=now - timedelta(hours=1) if i < expired
                         else now + timedelta(days=1))
            for i in range(expired + live)]
    await StaffSession.insert(*rows).run()


async def test_expired_sessions_are_deleted_in_batches_and_live_ones_kept(rapport):
    user = await make_user("ada@example.test")
    await _sessions(user, expired=5, live=2)
    assert await end_expired_sessions(batch=2) == 5
    assert await StaffSession.count().run() == 2


async def test_the_hourly_session_purge_job_deletes_expired_sessions(rapport):
    from core import jobs
    from core.jobs_tables import JobRow

    user = await make_user("ada@example.test")
    await _sessions(user, expired=3, live=1)
    await jobs.run_pending(rapport)  # queues the next hourly occurrence (shown to admins)
    scheduled = await JobRow.select(JobRow.run_at).where(
        JobRow.name == "core.identity.purge_sessions").first().run()
    assert scheduled is not None
    job_id = await jobs.enqueue(rapport, "core.identity.purge_sessions")
    await jobs.run_pending(rapport)
    assert (await JobRow.select(JobRow.status).where(JobRow.id == job_id).first().run()
            )["status"] == "done"
    assert await StaffSession.count().run() == 1
