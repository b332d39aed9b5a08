from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T19:56:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Service: trigram search index on case subjects for global search"

# Global search looked subjects up with ILIKE '%q%' over every case (220,000 in the bench:
# seconds per keystroke). core.search.text indexes them: an FTS5 trigram table on SQLite,
# a pg_trgm GIN index on PostgreSQL.


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="service", description=DESCRIPTION)

    async def search_index():
        from core.search.text import trigram_index_statements
        from plugins.service.tables import Case

        for statement in trigram_index_statements(Case, ["subject"]):
            await Case.raw(statement).run()

    manager.add_raw(search_index)
    return manager
