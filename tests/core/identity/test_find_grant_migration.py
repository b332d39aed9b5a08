"""An existing installation's built-in service agent gets core.customer.find by migration,
once, and a role an administrator changed is left as it is."""

from __future__ import annotations

import importlib

from core.identity.tables import Role, RolePermission

MIGRATION = "core.identity.piccolo_migrations.core_identity_2026_12_07t02_40_00_000000"


async def _run_migration() -> None:
    manager = await importlib.import_module(MIGRATION).forwards()
    for step in manager.raw:
        await step()


async def _find_grants(key: str) -> list[dict]:
    role = await Role.select(Role.id).where(Role.key == key).first().run()
    return await RolePermission.select(RolePermission.scope).where(
        (RolePermission.role == role["id"])
        & (RolePermission.permission == "core.customer.find")).run()


async def test_the_built_in_service_agent_is_granted_find_once(rapport):
    role = await Role.select(Role.id).where(Role.key == "service_agent").first().run()
    # As an installation made before the grant existed.
    await RolePermission.delete().where((RolePermission.role == role["id"]) & (
        RolePermission.permission == "core.customer.find")).run()
    await _run_migration()
    await _run_migration()
    assert await _find_grants("service_agent") == [{"scope": "all"}]
    assert await _find_grants("sales_representative") == []


async def test_a_custom_role_is_not_touched(rapport):
    await Role.update({Role.builtin: False}).where(Role.key == "service_agent").run()
    role = await Role.select(Role.id).where(Role.key == "service_agent").first().run()
    await RolePermission.delete().where((RolePermission.role == role["id"]) & (
        RolePermission.permission == "core.customer.find")).run()
    await _run_migration()
    assert await _find_grants("service_agent") == []
