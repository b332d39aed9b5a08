"""Data: the built-in roles and their grants."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:29:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "Built-in roles"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_identity", description=DESCRIPTION)

    async def builtin_roles():
        from core.identity.roles import BUILTIN_ROLES
        from core.identity.tables import Role, RolePermission

        # Raw SQL naming its columns: later migrations may add columns to these tables.
        for key, spec in BUILTIN_ROLES.items():
            rows = await Role.raw(
                "INSERT INTO core_role (key, name, description, builtin) "
                "VALUES ({}, {}, {}, {}) RETURNING id",
                key, spec["name"], spec["description"], True,
            ).run()
            for permission, scope in spec["grants"]:
                await RolePermission.raw(
                    "INSERT INTO core_role_permission (role, permission, scope) VALUES ({}, {}, {})",
                    rows[0]["id"], permission, scope,
                ).run()

    manager.add_raw(builtin_roles)
    return manager
