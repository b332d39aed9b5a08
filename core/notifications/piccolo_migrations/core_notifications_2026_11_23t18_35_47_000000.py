"""The inbox's composite index (after the table exists): the bell's unread count and the
/notifications page both read one user's rows by read_at and id."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:35:47:000000"
VERSION = "1.38.0"
DESCRIPTION = "In-app notifications: index (user, read_at, id)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_notifications",
                               description=DESCRIPTION)

    async def composite_indexes():
        from core.notifications.tables import Notification

        await Notification.raw(
            'CREATE INDEX core_notification_user_read_id '
            'ON core_notification ("user", read_at, id)'
        ).run()
        # The purge looks for read rows older than the retention period.
        await Notification.raw(
            "CREATE INDEX core_notification_read_at ON core_notification (read_at)"
        ).run()

    manager.add_raw(composite_indexes)
    return manager
