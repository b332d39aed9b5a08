"""Administration: users, teams, roles, the permission matrix and field rules, all audited."""

from __future__ import annotations

import json

from core.audit import AuditEntry
from core.identity.tables import FieldRule, Role, RolePermission, Team, User, UserRole
from core.identity.users import load_actor
from core.permissions import redact
from tests.conftest import csrf_headers, make_user, sign_in


async def _audit(action):
    return await AuditEntry.select().where(AuditEntry.action == action).run()


async def test_admin_creates_a_user_with_roles_and_teams(admin_client):
    c = admin_client
    await Team.insert(Team(name="North")).run()
    team = await Team.select(Team.id).first().run()
    role = await Role.select(Role.id).where(Role.key == "manager").first().run()
    form = {"email": "new@example.test", "name": "New Person", "password": "long enough pw",
            "roles": str(role["id"]), "teams": str(team["id"])}
    response = await c.post("/admin/users/new", data=form, headers=await csrf_headers(c),
                            follow_redirects=False)
    assert response.status_code == 303, response.text
    listing = await c.get("/admin/users")
    assert "New Person" in listing.text and "Manager" in listing.text
    assert await _audit("create")


async def test_user_form_shows_errors_next_to_the_field(admin_client):
    c = admin_client
    response = await c.post("/admin/users/new", data={"email": "x@example.test", "name": "X",
                                                      "password": "short"},
                            headers=await csrf_headers(c))
    assert response.status_code == 400 and 'id="password-error"' in response.text


async def test_users_list_is_paginated(admin_client):
    c = admin_client
    for i in range(52):
        await User.insert(User(email=f"u{i}@example.test", name=f"U{i}", password_hash="x")).run()
    first = await c.get("/admin/users")
    assert first.text.count('href="/admin/users/') - first.text.count('/admin/users/new') == 50
    assert "Next page" in first.text


async def test_deactivating_a_user_signs_them_out_and_is_audited(admin_client, make_rapport):
    import httpx

    c = admin_client
    uid = await make_user("rep@example.test", roles=["sales_representative"])
    transport = httpx.ASGITransport(app=c.rapport.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as rep:
        await sign_in(rep, "rep@example.test")
        response = await c.post(f"/admin/users/{uid}", data={"name": "Rep"},
                                headers=await csrf_headers(c), follow_redirects=False)
        assert response.status_code == 303
        assert (await rep.get("/", headers={"accept": "application/json"})).status_code == 401
    assert any(json.loads(e["changes"]).get("is_active") == [True, False]
               for e in await _audit("permission_change"))


async def test_changing_a_users_roles_is_a_permission_change(admin_client):
    c = admin_client
    uid = await make_user("rep@example.test", roles=["sales_representative"])
    manager = await Role.select(Role.id).where(Role.key == "manager").first().run()
    await c.post(f"/admin/users/{uid}", data={"name": "Rep", "is_active": "on",
                                              "roles": str(manager["id"])},
                 headers=await csrf_headers(c))
    entry = (await _audit("permission_change"))[-1]
    assert json.loads(entry["changes"])["roles"] == [["sales_representative"], ["manager"]]
    assert await UserRole.count().where(UserRole.user == uid).run() == 1


async def test_admin_cannot_deactivate_themselves(admin_client):
    c = admin_client
    response = await c.post(f"/admin/users/{c.user_id}", data={"name": "Me"},
                            headers=await csrf_headers(c))
    assert response.status_code == 400 and "cannot deactivate yourself" in response.text


async def test_teams_nest(admin_client):
    c = admin_client
    await c.post("/admin/teams", data={"name": "Sales"}, headers=await csrf_headers(c))
    parent = await Team.select(Team.id).where(Team.name == "Sales").first().run()
    await c.post("/admin/teams", data={"name": "Sales North", "parent": str(parent["id"])},
                 headers=await csrf_headers(c))
    child = await Team.select(Team.parent).where(Team.name == "Sales North").first().run()
    assert child["parent"] == parent["id"]
    page = await c.get("/admin/teams")
    assert 'class="depth-1">Sales North' in page.text


async def test_custom_role_gets_permissions_through_the_matrix(admin_client):
    c = admin_client
    response = await c.post("/admin/roles", data={"key": "auditor", "name": "Auditor"},
                            headers=await csrf_headers(c), follow_redirects=False)
    assert response.status_code == 303
    role = await Role.select(Role.id).where(Role.key == "auditor").first().run()
    matrix = await c.get("/admin/roles/matrix")
    assert f'name="grant:{role["id"]}:core.dashboard.view"' in matrix.text
    assert "via pattern" in matrix.text  # built-in roles grant by pattern
    saved = await c.post("/admin/roles/matrix",
                         data={f"grant:{role['id']}:core.dashboard.view": "all"},
                         headers=await csrf_headers(c), follow_redirects=False)
    assert saved.status_code == 303
    uid = await make_user("aud@example.test", roles=["auditor"])
    actor = await load_actor(c.rapport, uid)
    assert actor.grants == {"core.dashboard.view": "all"}
    entry = (await _audit("permission_change"))[-1]
    assert json.loads(entry["changes"]) == {"core.dashboard.view": ["none", "all"]}


async def test_pattern_grants_are_added_and_removed_on_the_role_page(admin_client):
    c = admin_client
    await c.post("/admin/roles", data={"key": "viewer2", "name": "Viewer 2"},
                 headers=await csrf_headers(c))
    role = await Role.select(Role.id).where(Role.key == "viewer2").first().run()
    bad = await c.post(f"/admin/roles/{role['id']}/grants", data={"permission": "zzz.*",
                                                                  "scope": "all"},
                       headers=await csrf_headers(c))
    assert bad.status_code == 400 and "matches no permission" in bad.text
    await c.post(f"/admin/roles/{role['id']}/grants", data={"permission": "*.view",
                                                            "scope": "team"},
                 headers=await csrf_headers(c))
    grant = await RolePermission.select().where(RolePermission.role == role["id"]).first().run()
    assert grant["permission"] == "*.view" and grant["scope"] == "team"
    await c.post(f"/admin/roles/{role['id']}/grants/{grant['id']}/delete",
                 headers=await csrf_headers(c))
    assert await RolePermission.count().where(RolePermission.role == role["id"]).run() == 0


async def test_field_hidden_from_a_role_is_absent_after_redaction(admin_client):
    c = admin_client
    rep_role = await Role.select(Role.id).where(Role.key == "sales_representative").first().run()
    page = await c.get(f"/admin/roles/{rep_role['id']}")
    assert 'value="core_user.email"' in page.text
    await c.post(f"/admin/roles/{rep_role['id']}/fields",
                 data={"hidden": ["core_user.email", "core_team.name"]},
                 headers=await csrf_headers(c))
    assert await FieldRule.count().where(FieldRule.role == rep_role["id"]).run() == 2
    uid = await make_user("rep@example.test", roles=["sales_representative", "manager"])
    actor = await load_actor(c.rapport, uid)
    # Hidden by one of the user's roles is enough (deny wins).
    assert actor.hidden_fields == frozenset({"core_user.email", "core_team.name"})
    row = {"id": 1, "email": "x@example.test", "name": "X"}
    assert redact(actor, "core_user", row) == {"id": 1, "name": "X"}
    assert redact(actor, "core_customer", row) == row
    admin = await load_actor(c.rapport, c.user_id)
    assert redact(admin, "core_user", row) == row
    assert await _audit("field_rule_change")
    # Un-ticking makes the field visible again.
    await c.post(f"/admin/roles/{rep_role['id']}/fields", data={"hidden": ["core_team.name"]},
                 headers=await csrf_headers(c))
    assert (await load_actor(c.rapport, uid)).hidden_fields == frozenset({"core_team.name"})


async def test_hidden_fields_reach_api_clients(client):
    from core.identity.tokens import create_token

    role = await Role.select(Role.id).where(Role.key == "read_only").first().run()
    await FieldRule.insert(FieldRule(role=role["id"], record_type="core_customer",
                                     field="revenue")).run()
    uid = await make_user("val@example.test", roles=["read_only"])
    token, _ = await create_token(client.rapport, uid)
    me = await client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["hidden_fields"] == ["core_customer.revenue"]


async def test_administration_nav_shows_only_with_permission(client):
    await make_user("admin@example.test", roles=["administrator"])
    await make_user("rep@example.test", roles=["sales_representative"])
    await sign_in(client, "rep@example.test")
    page = await client.get("/")
    assert "Users &amp; teams" not in page.text and "My account" in page.text
    await sign_in(client, "admin@example.test")
    page = await client.get("/")
    assert "Users &amp; teams" in page.text and "Roles &amp; permissions" in page.text
