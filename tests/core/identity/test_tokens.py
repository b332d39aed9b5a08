"""API tokens: bearer authentication, scopes, expiry, revocation, and CSRF rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.identity.tables import ApiToken
from core.identity.tokens import create_token
from core.identity.users import UserError
from tests.conftest import csrf_headers, make_user, sign_in

NEW_USER = {"email": "new@example.test", "name": "New", "password": "long enough pw",
            "roles": ["read_only"]}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_token_acts_as_its_user_and_only_its_hash_is_stored(client):
    uid = await make_user("ada@example.test", roles=["administrator"])
    token, _ = await create_token(client.rapport, uid, name="script")
    response = await client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200 and response.json()["email"] == "ada@example.test"
    stored = await ApiToken.select(ApiToken.token_hash, ApiToken.prefix,
                                   ApiToken.last_used_at).first().run()
    assert token not in stored.values() and token.startswith(stored["prefix"])
    assert stored["last_used_at"] is not None


async def test_token_scopes_restrict_the_users_grants(client):
    uid = await make_user("ada@example.test", roles=["administrator"])
    token, _ = await create_token(client.rapport, uid, scopes=["*.view"])
    permissions = (await client.get("/api/v1/me", headers=bearer(token))).json()["permissions"]
    assert permissions and all(name.endswith(".view") for name in permissions)
    refused = await client.get("/api/v1/users", headers=bearer(token))
    assert refused.status_code == 403


async def test_token_never_gains_what_its_user_lacks(client):
    uid = await make_user("val@example.test", roles=["read_only"])
    token, _ = await create_token(client.rapport, uid, scopes=["*"])
    assert (await client.get("/api/v1/users", headers=bearer(token))).status_code == 403


async def test_scope_matching_no_permission_is_refused(client):
    uid = await make_user("ada@example.test")
    with pytest.raises(UserError, match="matches no permission"):
        await create_token(client.rapport, uid, scopes=["nothing.*"])


async def test_expired_revoked_and_unknown_tokens_get_401(client):
    uid = await make_user("ada@example.test")
    expired, row = await create_token(client.rapport, uid, expires_days=1)
    await ApiToken.update({ApiToken.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        ApiToken.id == row["id"]).run()
    revoked, row = await create_token(client.rapport, uid)
    await ApiToken.update({ApiToken.revoked_at: datetime.now(UTC)}).where(
        ApiToken.id == row["id"]).run()
    for token in (expired, revoked, "rpt_made-up"):
        response = await client.get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 401, token


async def test_bearer_requests_need_no_csrf_token(client):
    uid = await make_user("ada@example.test")
    token, _ = await create_token(client.rapport, uid)
    response = await client.post("/api/v1/users", json=NEW_USER, headers=bearer(token))
    assert response.status_code == 201, response.text


async def test_cookie_session_api_writes_still_need_the_csrf_header(admin_client):
    refused = await admin_client.post("/api/v1/users", json=NEW_USER)
    assert refused.status_code == 403
    accepted = await admin_client.post("/api/v1/users", json=NEW_USER,
                                       headers=await csrf_headers(admin_client))
    assert accepted.status_code == 201, accepted.text


async def test_api_validation_errors_name_the_field(admin_client):
    response = await admin_client.post("/api/v1/users", json={**NEW_USER, "roles": ["wizard"]},
                                       headers=await csrf_headers(admin_client))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "role"


async def test_user_creates_lists_and_revokes_tokens_in_the_ui(admin_client):
    page = await admin_client.post("/account/tokens", data={
        "name": "Export job", "scopes": "*.view", "expires_days": "30"},
        headers=await csrf_headers(admin_client))
    assert page.status_code == 200
    assert "shown only once" in page.text
    token = page.text.split('id="new-token">')[1].split("<")[0]
    assert (await admin_client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    listing = await admin_client.get("/account/tokens")
    assert "Export job" in listing.text and token not in listing.text
    token_id = (await ApiToken.select(ApiToken.id).first().run())["id"]
    await admin_client.post(f"/account/tokens/{token_id}/revoke",
                            headers=await csrf_headers(admin_client))
    assert (await admin_client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert "revoked" in (await admin_client.get("/account/tokens")).text


async def test_a_token_cannot_use_the_account_pages(client):
    uid = await make_user("ada@example.test")
    token, _ = await create_token(client.rapport, uid)
    response = await client.post("/account/tokens", data={"name": "more"}, headers=bearer(token))
    assert response.status_code == 403


async def test_a_bad_scope_in_the_ui_is_shown_next_to_the_field(admin_client):
    page = await admin_client.post("/account/tokens", data={"name": "x", "scopes": "nope.*"},
                                   headers=await csrf_headers(admin_client))
    assert page.status_code == 400 and 'id="scopes-error"' in page.text


async def test_signing_in_with_a_session_still_works_alongside_tokens(client):
    await make_user("ada@example.test")
    await sign_in(client, "ada@example.test")
    assert (await client.get("/api/v1/me")).json()["email"] == "ada@example.test"


async def test_a_deactivated_users_tokens_stop_working(client):
    from core.identity.tables import User

    uid = await make_user("ada@example.test")
    token, _ = await create_token(client.rapport, uid)
    await User.update({User.is_active: False}).where(User.id == uid).run()
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
