from pathlib import Path

from piccolo.conf.apps import AppConfig

# No Piccolo tables of its own: the search index is a SQLite FTS5 table (or PostgreSQL trigram
# indexes on the customer tables) created by raw SQL in this app's migrations.
APP_CONFIG = AppConfig(
    app_name="core_search",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
    migration_dependencies=["core.customers.piccolo_app", "core.interactions.piccolo_app"],
)
