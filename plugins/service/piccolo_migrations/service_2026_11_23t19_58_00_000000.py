from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T19:58:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Service: trigram search index on knowledge-base articles for global search"

# Global search looked every query word up with LIKE '%word%' in four columns of every
# article, bodies included: a scan per keystroke that grows with the knowledge base.
# core.search.text indexes them (FTS5 trigram on SQLite, pg_trgm GIN on PostgreSQL).


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="service", description=DESCRIPTION)

    async def search_index():
        from core.search.text import trigram_index_statements
        from plugins.service.tables import Article

        for statement in trigram_index_statements(
                Article, ["title", "keywords", "product", "body"]):
            await Article.raw(statement).run()

    manager.add_raw(search_index)
    return manager
