"""Signing in and out, and what signed-in users may see."""

from __future__ import annotations

from tests.conftest import csrf_headers, make_user, sign_in


async def test_browser_is_sent_to_sign_in_and_back(client):
    response = await client.get("/?tab=x", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Ftab%3Dx"


async def test_admin_signs_in_and_sees_the_dashboard(client):
    await make_user("ada@example.test", roles=["administrator"])
    response = await sign_in(client, "Ada@Example.test ")
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "rapport_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await client.get("/")
    assert page.status_code == 200
    assert "<h1>Dashboard</h1>" in page.text
    assert "Ada" in page.text


async def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client):
    await make_user("ada@example.test")
    response = await client.post("/login", data={"email": "ada@example.test", "password": "nope"},
                                 headers=await csrf_headers(client))
    assert response.status_code == 400
    assert "Wrong email or password." in response.text
    unknown = await client.post("/login", data={"email": "who@example.test", "password": "nope"},
                                headers=await csrf_headers(client))
    assert unknown.status_code == 400 and "Wrong email or password." in unknown.text


async def test_sign_in_without_csrf_token_is_refused(client):
    await make_user("ada@example.test")
    response = await client.post("/login", data={"email": "ada@example.test",
                                                 "password": "correct horse battery"})
    assert response.status_code == 403


async def test_sign_in_never_redirects_off_site(client):
    await make_user("ada@example.test")
    response = await client.post(
        "/login", data={"email": "ada@example.test", "password": "correct horse battery",
                        "next": "//evil.example/"},
        headers=await csrf_headers(client), follow_redirects=False)
    assert response.headers["location"] == "/"


async def test_sign_out_ends_the_session(admin_client):
    response = await admin_client.post("/logout", headers=await csrf_headers(admin_client),
                                       follow_redirects=False)
    assert response.status_code == 303
    again = await admin_client.get("/", headers={"accept": "application/json"})
    assert again.status_code == 401


async def test_role_without_dashboard_permission_is_forbidden(client):
    from core.identity.tables import Role

    await Role.insert(Role(key="nobody", name="Nobody")).run()
    await make_user("nobody@example.test", roles=["nobody"])
    await sign_in(client, "nobody@example.test")
    response = await client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 403
    assert "Not allowed" in response.text


async def test_built_in_roles_expand_to_declared_permissions(client):
    from core.identity.users import load_actor

    uid = await make_user("viewer@example.test", roles=["read_only"])
    actor = await load_actor(client.rapport, uid)
    assert actor.grants["core.dashboard.view"] == "all"
    assert "core.user.manage" not in actor.grants


async def test_only_administrators_get_administration_permissions(client):
    """Patterns like *.edit must never hand out settings, roles, users or the audit log."""
    from core.identity.roles import BUILTIN_ROLES
    from core.identity.users import load_actor

    for role in BUILTIN_ROLES:
        uid = await make_user(f"{role}@example.test", roles=[role])
        actor = await load_actor(client.rapport, uid)
        administration = sorted(p for p in actor.grants if p.endswith(".manage"))
        if role == "administrator":
            assert "core.settings.manage" in administration
            assert "core.audit.manage" in administration
        else:
            assert administration == [], role
