from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-06T20:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Service index: All cases of an agent who sees only their own cases"

# An agent whose scope is "own" sees "All cases" as owner = me, in any status. Once
# (priority_rank, id) existed, SQLite with ANALYZE statistics walked that index for it,
# filtering on owner (82 ms at 220,000 cases for an agent with 44), instead of sorting the
# agent's own cases; this index gives them in order at once. Same SQL on both databases.
STATEMENT = "CREATE INDEX service_case_owner_all_idx ON service_case (owner, priority_rank, id)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="service", description=DESCRIPTION)

    async def index():
        from plugins.service.tables import Case

        await Case.raw(STATEMENT).run()

    async def undo():
        from plugins.service.tables import Case

        await Case.raw("DROP INDEX IF EXISTS service_case_owner_all_idx").run()

    manager.add_raw(index)
    manager.add_raw_backwards(undo)
    return manager
