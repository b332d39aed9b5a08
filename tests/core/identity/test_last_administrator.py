"""Nobody can take administration away from the last active administrator, by any route; the
command line can give it back, and ``rapport check`` says when nobody has it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.identity.administrators import active_administrators
from core.identity.tables import Role, RolePermission, User, UserRole
from core.identity.users import load_actor
from tests.conftest import connected, csrf_headers, make_user, sign_in

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
LAST = "nobody able to administer"


async def _role_id(key: str) -> int:
    return (await Role.select(Role.id).where(Role.key == key).first().run())["id"]


async def test_the_administrator_roles_only_grant_cannot_be_deleted(admin_client):
    c = admin_client
    role_id = await _role_id("administrator")
    grant = await RolePermission.select(RolePermission.id).where(
        RolePermission.role == role_id).first().run()
    response = await c.post(f"/admin/roles/{role_id}/grants/{grant['id']}/delete",
                            headers=await csrf_headers(c))
    assert response.status_code == 409 and LAST in response.text
    assert await RolePermission.count().where(RolePermission.role == role_id).run() == 1
    assert await active_administrators(c.rapport) == [c.user_id]


async def test_narrowing_the_administrator_grant_to_viewing_is_refused(admin_client):
    c = admin_client
    role_id = await _role_id("administrator")
    # Replacing "*" by a pattern that leaves out users and roles, then dropping "*".
    await c.post(f"/admin/roles/{role_id}/grants", data={"permission": "*.view", "scope": "all"},
                 headers=await csrf_headers(c))
    star = await RolePermission.select(RolePermission.id).where(
        (RolePermission.role == role_id) & (RolePermission.permission == "*")).first().run()
    response = await c.post(f"/admin/roles/{role_id}/grants/{star['id']}/delete",
                            headers=await csrf_headers(c))
    assert response.status_code == 409
    assert (await load_actor(c.rapport, c.user_id)).can("core.role.manage")


async def test_the_only_administrator_cannot_save_themselves_without_the_role(admin_client):
    c = admin_client
    manager = await _role_id("manager")
    response = await c.post(f"/admin/users/{c.user_id}", headers=await csrf_headers(c),
                            data={"name": "Admin", "is_active": "on", "roles": str(manager)})
    assert response.status_code == 409 and LAST in response.text
    assert await active_administrators(c.rapport) == [c.user_id]
    assert await UserRole.count().where(UserRole.user == c.user_id).run() == 1


async def test_with_a_second_administrator_the_role_can_be_removed(admin_client):
    c = admin_client
    other = await make_user("second@example.test", roles=["administrator"])
    response = await c.post(f"/admin/users/{other}", headers=await csrf_headers(c),
                            data={"name": "Second", "is_active": "on"}, follow_redirects=False)
    assert response.status_code == 303
    assert await active_administrators(c.rapport) == [c.user_id]


async def test_the_last_administrator_cannot_be_deactivated_by_a_user_manager(client):
    admin = await make_user("admin@example.test", roles=["administrator"])
    rows = await Role.insert(Role(key="people", name="People")).returning(Role.id).run()
    await RolePermission.insert(RolePermission(role=rows[0]["id"], permission="core.user.manage",
                                               scope="all")).run()
    await make_user("hr@example.test", roles=["people"])
    await sign_in(client, "hr@example.test")
    response = await client.post(f"/admin/users/{admin}", headers=await csrf_headers(client),
                                 data={"name": "Admin", "roles": str(await _role_id(
                                     "administrator"))})
    assert response.status_code == 409 and LAST in response.text
    assert (await User.select(User.is_active).where(User.id == admin).first().run())["is_active"]


@pytest.fixture
async def cli(make_rapport, tmp_path):
    instance = await make_rapport()
    env = {**os.environ, "RAPPORT_DATA_DIR": str(instance.settings.data_dir),
           "RAPPORT_DATABASE_URL": instance.settings.database_url,
           "RAPPORT_PLUGINS_TOML": str(tmp_path / "plugins.toml")}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core.cli", *args], input=stdin, env=env,
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert run("migrate").returncode == 0
    run.rapport = instance
    return run


async def test_check_reports_no_active_administrator_and_grant_admin_rescues(cli):
    assert cli("user", "create", "ada@example.test", "--role", "manager",
               stdin="a long password\n").returncode == 0
    result = cli("check")
    assert result.returncode == 1 and "no active administrator" in result.stdout
    rescued = cli("user", "grant-admin", "ada@example.test")
    assert rescued.returncode == 0, rescued.stderr
    async with connected(cli.rapport) as rapport:
        ada = await User.select(User.id).where(User.email == "ada@example.test").first().run()
        assert await active_administrators(rapport) == [ada["id"]]
    result = cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "administrators: ok (1 active)" in result.stdout


async def test_an_administrator_created_after_the_role_lost_its_grant_can_administer(cli):
    async with connected(cli.rapport):
        await RolePermission.delete().where(
            RolePermission.role == await _role_id("administrator")).run()
    result = cli("user", "create", "ada@example.test", "--role", "administrator",
                 stdin="a long password\n")
    assert result.returncode == 0, result.stderr
    assert "'*' grant back" in result.stdout
    async with connected(cli.rapport) as rapport:
        ada = await User.select(User.id).where(User.email == "ada@example.test").first().run()
        actor = await load_actor(rapport, ada["id"])
        assert actor.can("core.user.manage") and actor.can("core.role.manage")
        assert actor.can("core.customer.delete")


async def test_grant_admin_names_an_unknown_user(cli):
    result = cli("user", "grant-admin", "nobody@example.test")
    assert result.returncode == 1 and "no user with email nobody@example.test" in result.stderr
