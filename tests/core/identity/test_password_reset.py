"""Password reset by a single-use link that expires after an hour."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.identity.tables import PasswordReset
from tests.conftest import csrf_headers, make_user, sign_in

NEW = "my new password 1"


def outbox(client) -> list:
    folder = Path(client.rapport.settings.data_dir) / "outbox"
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))] \
        if folder.exists() else []


def link_in(message) -> str:
    body = message.get_payload(decode=True).decode()
    return re.search(r"https?://\S+/password/reset/(\S+)", body).group(0)


async def _forgot(client, address):
    return await client.post("/password/forgot", data={"email": address},
                             headers=await csrf_headers(client))


async def _reset(client, path, password=NEW, confirm=None):
    return await client.post(path, data={"password": password, "confirm": confirm or password},
                             headers=await csrf_headers(client), follow_redirects=False)


async def test_forgot_password_answers_the_same_for_unknown_addresses(client):
    await make_user("ada@example.test")
    known = await _forgot(client, "ada@example.test")
    unknown = await _forgot(client, "nobody@example.test")
    assert known.status_code == unknown.status_code == 200
    assert "If an account exists" in known.text and "If an account exists" in unknown.text
    messages = outbox(client)
    assert len(messages) == 1 and messages[0]["To"] == "ada@example.test"


async def test_reset_link_sets_a_new_password_once_and_stores_only_a_hash(client):
    await make_user("ada@example.test")
    await _forgot(client, "ada@example.test")
    link = link_in(outbox(client)[0])
    token = link.rsplit("/", 1)[1]
    stored = await PasswordReset.select(PasswordReset.token_hash).first().run()
    assert token not in stored["token_hash"]
    path = link.split("testserver.local")[-1] if "testserver.local" in link else \
        "/password/reset/" + token
    assert (await client.get(path)).status_code == 200
    done = await _reset(client, path)
    assert done.status_code == 303 and done.headers["location"] == "/login?notice=reset"
    await sign_in(client, "ada@example.test", NEW)
    again = await _reset(client, path, "another password 2")
    assert again.status_code == 410 and "expired or was already used" in again.text


async def test_reset_link_expires_after_an_hour(client):
    await make_user("ada@example.test")
    await _forgot(client, "ada@example.test")
    token = link_in(outbox(client)[0]).rsplit("/", 1)[1]
    await PasswordReset.update({PasswordReset.expires_at: datetime.now(UTC) - timedelta(
        seconds=1)}, force=True).run()
    page = await client.get(f"/password/reset/{token}")
    assert page.status_code == 410
    assert (await _reset(client, f"/password/reset/{token}")).status_code == 410


async def test_new_password_must_follow_the_policy(client):
    await make_user("ada@example.test")
    await _forgot(client, "ada@example.test")
    token = link_in(outbox(client)[0]).rsplit("/", 1)[1]
    short = await _reset(client, f"/password/reset/{token}", "short")
    assert short.status_code == 400 and "at least 10 characters" in short.text
    differ = await _reset(client, f"/password/reset/{token}", NEW, "something else entirely")
    assert differ.status_code == 400 and "differ" in differ.text
    # The link survived the refused attempts.
    assert (await _reset(client, f"/password/reset/{token}")).status_code == 303


async def test_reset_ends_existing_sessions(client):
    await make_user("ada@example.test")
    await sign_in(client, "ada@example.test")
    await _forgot(client, "ada@example.test")
    token = link_in(outbox(client)[0]).rsplit("/", 1)[1]
    await _reset(client, f"/password/reset/{token}")
    assert (await client.get("/", headers={"accept": "application/json"})).status_code == 401


async def test_reset_links_are_limited_so_nobody_floods_an_inbox(client):
    await make_user("ada@example.test")
    for _ in range(5):
        assert (await _forgot(client, "ada@example.test")).status_code == 200
    assert len(outbox(client)) == 3
