"""Optional TOTP two-factor authentication: enrol, sign in with a code, disable."""

from __future__ import annotations

import re

import pyotp

from tests.conftest import DEMO_PASSWORD, csrf_headers, make_user


async def _enrol(client) -> str:
    page = await client.post("/account/two-factor", headers=await csrf_headers(client))
    assert page.status_code == 200, page.text
    assert "otpauth://totp/" in page.text and 'src="data:image/svg+xml' in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    wrong = await client.post("/account/two-factor/confirm", data={"code": "000000"},
                              headers=await csrf_headers(client))
    assert wrong.status_code == 400 and "not right" in wrong.text
    done = await client.post("/account/two-factor/confirm",
                             data={"code": pyotp.TOTP(secret).now()},
                             headers=await csrf_headers(client), follow_redirects=False)
    assert done.status_code == 303
    return secret


async def _password_step(client):
    return await client.post("/login", data={"email": "ada@example.test",
                                             "password": DEMO_PASSWORD, "next": "/"},
                             headers=await csrf_headers(client), follow_redirects=False)


async def test_signing_in_asks_for_the_code_after_the_password(client):
    await make_user("ada@example.test")
    await _sign_in_plain(client)
    secret = await _enrol(client)
    await client.post("/logout", headers=await csrf_headers(client))

    step = await _password_step(client)
    assert step.headers["location"].startswith("/login/verify")
    # Password alone signs nobody in.
    assert (await client.get("/", headers={"accept": "application/json"})).status_code == 401
    assert "Enter your code" in (await client.get("/login/verify")).text
    bad = await client.post("/login/verify", data={"code": "123456", "next": "/"},
                            headers=await csrf_headers(client))
    assert bad.status_code == 400
    good = await client.post("/login/verify", data={"code": pyotp.TOTP(secret).now(), "next": "/"},
                             headers=await csrf_headers(client), follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/"
    assert (await client.get("/", headers={"accept": "application/json"})).status_code == 200


async def test_disabling_needs_a_valid_code(client):
    await make_user("ada@example.test")
    await _sign_in_plain(client)
    secret = await _enrol(client)
    refused = await client.post("/account/two-factor/disable", data={"code": "000000"},
                                headers=await csrf_headers(client))
    assert refused.status_code == 400 and "stays on" in refused.text
    await client.post("/account/two-factor/disable", data={"code": pyotp.TOTP(secret).now()},
                      headers=await csrf_headers(client))
    await client.post("/logout", headers=await csrf_headers(client))
    step = await _password_step(client)
    assert step.headers["location"] == "/"


async def test_wrong_codes_count_towards_the_lockout(client):
    await make_user("ada@example.test")
    await _sign_in_plain(client)
    await _enrol(client)
    await client.post("/logout", headers=await csrf_headers(client))
    await _password_step(client)
    statuses = []
    for _ in range(5):
        r = await client.post("/login/verify", data={"code": "000000", "next": "/"},
                              headers=await csrf_headers(client))
        statuses.append(r.status_code)
    assert statuses[-1] == 429


async def _sign_in_plain(client):
    response = await _password_step(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
