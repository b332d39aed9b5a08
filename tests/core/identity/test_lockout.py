"""Login rate limiting, lockout, session rotation and session ending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.audit import AuditEntry
from core.identity import lockout
from core.identity.tables import StaffSession, User
from tests.conftest import DEMO_PASSWORD, csrf_headers, make_user, sign_in


async def _try(client, email, password):
    return await client.post("/login", data={"email": email, "password": password},
                             headers=await csrf_headers(client), follow_redirects=False)


async def _actions():
    rows = await AuditEntry.select(AuditEntry.action).order_by(AuditEntry.id).run()
    return [r["action"] for r in rows]


async def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(client):
    await make_user("ada@example.test")
    for _ in range(4):
        assert (await _try(client, "ada@example.test", "wrong password")).status_code == 400
    fifth = await _try(client, "ada@example.test", "wrong password")
    assert fifth.status_code == 429
    assert "locked for 15 more minute(s)" in fifth.text
    right = await _try(client, "ada@example.test", DEMO_PASSWORD)
    assert right.status_code == 429 and "locked" in right.text
    actions = await _actions()
    assert actions.count("login_failed") == 5 and "lockout" in actions and "login" not in actions


async def test_lock_ends_after_fifteen_minutes(client):
    await make_user("ada@example.test")
    for _ in range(5):
        await _try(client, "ada@example.test", "wrong password")
    # Fast-forward: the lock was set 15 minutes ago.
    await User.update({User.locked_until: datetime.now(UTC) - timedelta(seconds=1)}, force=True).run()
    assert (await _try(client, "ada@example.test", DEMO_PASSWORD)).status_code == 303


async def test_successful_sign_in_resets_the_failure_count(client):
    await make_user("ada@example.test")
    for _ in range(4):
        await _try(client, "ada@example.test", "wrong password")
    assert (await _try(client, "ada@example.test", DEMO_PASSWORD)).status_code == 303
    for _ in range(4):
        assert (await _try(client, "ada@example.test", "wrong password")).status_code == 400


async def test_unknown_addresses_lock_the_same_way_so_lockouts_reveal_no_account(client):
    for _ in range(4):
        assert (await _try(client, "nobody@example.test", "guess")).status_code == 400
    fifth = await _try(client, "nobody@example.test", "guess")
    assert fifth.status_code == 429 and "locked" in fifth.text


async def test_one_address_failing_too_often_is_throttled(client, monkeypatch):
    monkeypatch.setattr(lockout, "MAX_FAILURES_PER_IP", 3)
    await make_user("ada@example.test")
    for i in range(3):
        await _try(client, f"user{i}@example.test", "guess")
    response = await _try(client, "ada@example.test", DEMO_PASSWORD)
    assert response.status_code == 429
    assert "Too many sign-in attempts from your network" in response.text


async def test_sign_in_is_audited(client):
    await make_user("ada@example.test")
    await sign_in(client, "ada@example.test")
    assert "login" in await _actions()


async def test_sign_in_issues_a_new_session_key_and_ends_the_old_one(client):
    await make_user("ada@example.test")
    first = (await sign_in(client, "ada@example.test")).cookies["rapport_session"]
    second = (await sign_in(client, "ada@example.test")).cookies["rapport_session"]
    assert first != second
    assert await StaffSession.count().run() == 1


async def test_expired_session_is_rejected(client):
    await make_user("ada@example.test")
    await sign_in(client, "ada@example.test")
    await StaffSession.update({StaffSession.expires_at: datetime.now(UTC) - timedelta(seconds=1)},
                              force=True).run()
    response = await client.get("/", headers={"accept": "application/json"})
    assert response.status_code == 401


async def test_changing_the_password_ends_sessions_on_other_devices(client, make_rapport):
    import httpx

    await make_user("ada@example.test")
    await sign_in(client, "ada@example.test")
    transport = httpx.ASGITransport(app=client.rapport.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as other:
        await sign_in(other, "ada@example.test")
        assert (await other.get("/", headers={"accept": "application/json"})).status_code == 200
        response = await client.post(
            "/account/password",
            data={"current": DEMO_PASSWORD, "password": "a brand new secret",
                  "confirm": "a brand new secret"},
            headers=await csrf_headers(client), follow_redirects=False)
        assert response.status_code == 303, response.text
        assert (await other.get("/", headers={"accept": "application/json"})).status_code == 401
    # This browser stays signed in with a fresh session, and the new password works.
    assert (await client.get("/", headers={"accept": "application/json"})).status_code == 200
    assert "password_change" in await _actions()
