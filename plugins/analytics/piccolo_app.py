from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.analytics.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="analytics",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=list(TABLES),
    migration_dependencies=["core.customers.piccolo_app", "core.identity.piccolo_app"],
)
