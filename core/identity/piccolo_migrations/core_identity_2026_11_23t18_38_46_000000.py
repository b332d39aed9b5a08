"""Index for the hourly purge of expired staff sessions."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:38:46:000000"
VERSION = "1.38.0"
DESCRIPTION = "Identity: index on core_staff_session.expires_at for the expired-session purge"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_identity",
                               description=DESCRIPTION)

    async def index():
        from core.identity.tables import StaffSession

        await StaffSession.raw(
            "CREATE INDEX core_staff_session_expires ON core_staff_session (expires_at)"
        ).run()

    manager.add_raw(index)
    return manager
