from pathlib import Path

from piccolo.conf.apps import AppConfig

from rapport_visit_notes.tables import Note

APP_CONFIG = AppConfig(
    app_name="visit_notes",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Note],
    # Notes point at customers and users: core's apps are migrated first.
    migration_dependencies=["core.customers.piccolo_app"],
)
