"""List pages keep the signed-in actor and the filter choices for a few seconds per worker;
a write answered by the worker (sign-out, a role change, a new user) takes effect on the very
next request, never a few seconds later."""

from __future__ import annotations

from core.identity.sessions import COOKIE
from core.identity.tables import User
from tests.conftest import app_client, csrf_headers, make_user, sign_in


async def test_a_role_removed_by_an_administrator_applies_to_the_next_request(make_rapport):
    instance = await make_rapport()
    async with app_client(instance) as admin, app_client(instance) as rep:
        await make_user("admin@example.test")
        rep_id = await make_user("rep@example.test", roles=["sales_representative"],
                                 name="Rep")
        await sign_in(admin, "admin@example.test")
        await sign_in(rep, "rep@example.test")
        assert (await rep.get("/contacts")).status_code == 200
        assert (await rep.get("/contacts")).status_code == 200  # now from the cache
        response = await admin.post(f"/admin/users/{rep_id}", data={"name": "Rep",
                                    "is_active": "on"}, headers=await csrf_headers(admin),
                                    follow_redirects=False)
        assert response.status_code == 303, response.text
        assert (await rep.get("/contacts", follow_redirects=False)).status_code in (401, 403)


async def test_signing_out_applies_to_the_next_request(make_rapport):
    instance = await make_rapport()
    async with app_client(instance) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        assert (await client.get("/contacts")).status_code == 200
        key = client.cookies[COOKIE]
        response = await client.post("/logout", headers=await csrf_headers(client),
                                     follow_redirects=False)
        assert response.status_code == 303
        # The browser may still hold the old cookie (a stolen copy would): it must not work.
        client.cookies.set(COOKIE, key)
        assert (await client.get("/contacts", follow_redirects=False)).status_code in (
            302, 303, 401)


async def test_a_new_user_shows_up_in_the_owner_filter_after_a_write(make_rapport):
    instance = await make_rapport()
    async with app_client(instance) as client:
        await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        assert "Zelda Newcomer" not in (await client.get("/contacts")).text
        await User.update({User.name: "Zelda Newcomer"}).where(
            User.email == "admin@example.test").run()
        # Any write answered by this worker drops the cached choices.
        await client.post("/logout", headers=await csrf_headers(client))
        await sign_in(client, "admin@example.test")
        assert "Zelda Newcomer" in (await client.get("/contacts")).text
