"""Each portal customer's time zone, from their browser at sign-in."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T06:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Portal: core_portal_identity.time_zone"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_portal", description=DESCRIPTION)

    async def column():
        from core.portal.tables import PortalIdentity

        # Empty means "the instance's" until the customer's next sign-in tells us theirs.
        await PortalIdentity.raw("ALTER TABLE core_portal_identity ADD COLUMN time_zone "
                                 "VARCHAR(64) NOT NULL DEFAULT ''").run()

    manager.add_raw(column)
    return manager
