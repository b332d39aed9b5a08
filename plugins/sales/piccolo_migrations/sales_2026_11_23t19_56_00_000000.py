from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T19:56:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sales: trigram search indexes for global search (leads, opportunities, products)"

# Global search looked these up with ILIKE '%q%', a full scan per keystroke (150,000
# opportunities: the search box stalled). core.search.text indexes them: FTS5 trigram tables
# on SQLite, pg_trgm GIN indexes on PostgreSQL.
COLUMNS = {
    "Lead": ["first_name", "last_name", "company", "email"],
    "Opportunity": ["name"],
    "Product": ["name", "sku", "description"],
}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sales", description=DESCRIPTION)

    async def search_indexes():
        from core.search.text import trigram_index_statements
        from plugins.sales import tables

        for table_name, columns in COLUMNS.items():
            table = getattr(tables, table_name)
            for statement in trigram_index_statements(table, columns):
                await table.raw(statement).run()

    manager.add_raw(search_indexes)
    return manager
