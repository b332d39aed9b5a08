"""One visit counter per identity and month: a unique index, so concurrent first visits of
a month cannot create two rows."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:58:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Portal visits: unique (identity, month)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_portal", description=DESCRIPTION)

    async def unique_month():
        from core.portal.tables import PortalVisit

        await PortalVisit.raw(
            "CREATE UNIQUE INDEX core_portal_visit_identity_month "
            "ON core_portal_visit (identity, month)"
        ).run()

    manager.add_raw(unique_month)
    return manager
