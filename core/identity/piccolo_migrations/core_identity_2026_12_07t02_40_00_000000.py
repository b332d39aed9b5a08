"""Data: the built-in service agent may find any caller (core.customer.find at all)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T02:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Identity: built-in service agents find any customer to open a case"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_identity",
                               description=DESCRIPTION)

    async def find_grant():
        from core.identity.tables import RolePermission

        # Only the built-in role, and only if an administrator has not granted it already.
        await RolePermission.raw(
            "INSERT INTO core_role_permission (role, permission, scope) "
            "SELECT id, 'core.customer.find', 'all' FROM core_role "
            "WHERE key = 'service_agent' AND builtin = {} AND NOT EXISTS ("
            "SELECT 1 FROM core_role_permission p WHERE p.role = core_role.id "
            "AND p.permission = 'core.customer.find')",
            True,
        ).run()

    manager.add_raw(find_grant)
    return manager
