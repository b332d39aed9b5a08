"""Composite indexes of the field app's tables (after the tables exist)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:47:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "Field app: one preference per user and topic; due-row indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="pwa", description=DESCRIPTION)

    async def composite_indexes():
        from pwa.tables import PushPreference

        await PushPreference.raw(
            'CREATE UNIQUE INDEX pwa_push_preference_user_topic '
            'ON pwa_push_preference ("user", topic)'
        ).run()
        # The outbox worker and the reminder scheduler scan due pending rows.
        await PushPreference.raw(
            "CREATE INDEX pwa_push_outbox_due ON pwa_push_outbox (status, next_attempt_at)"
        ).run()
        await PushPreference.raw(
            "CREATE INDEX pwa_reminder_due ON pwa_reminder (status, due_at)"
        ).run()

    manager.add_raw(composite_indexes)
    return manager
