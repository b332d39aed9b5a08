"""Each staff user's time zone and locale (My account)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T03:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Identity: core_user.time_zone and core_user.locale"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_identity",
                               description=DESCRIPTION)

    async def columns():
        from core.identity.tables import User

        # Empty means "the instance's": existing users keep seeing what they saw until they
        # choose (or their browser tells us at the next sign-in).
        await User.raw(
            "ALTER TABLE core_user ADD COLUMN time_zone VARCHAR(64) NOT NULL DEFAULT ''").run()
        await User.raw(
            "ALTER TABLE core_user ADD COLUMN locale VARCHAR(35) NOT NULL DEFAULT ''").run()

    manager.add_raw(columns)
    return manager
