from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-06T20:25:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Service indexes: the All cases view; a conversation page's attachments"

# Same SQL on SQLite and PostgreSQL.
STATEMENTS = [
    # "All cases" without a status filter has no is_open condition, so none of the
    # (…, is_open, priority_rank, id) indexes fits: every case (200,000+ closed ones in a
    # busy help desk) was read and sorted for each page of 50.
    "CREATE INDEX service_case_all_view_idx ON service_case (priority_rank, id)",
    # The case page shows one page of the conversation; its files are read by message id
    # instead of every file of the case.
    "CREATE INDEX service_attachment_message_idx ON service_attachment (message)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="service", description=DESCRIPTION)

    async def indexes():
        from plugins.service.tables import Case

        for statement in STATEMENTS:
            await Case.raw(statement).run()

    async def undo():
        from plugins.service.tables import Case

        await Case.raw("DROP INDEX IF EXISTS service_case_all_view_idx").run()
        await Case.raw("DROP INDEX IF EXISTS service_attachment_message_idx").run()

    manager.add_raw(indexes)
    manager.add_raw_backwards(undo)
    return manager
