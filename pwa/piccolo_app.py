from pathlib import Path

from piccolo.conf.apps import AppConfig

from pwa.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="pwa",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=list(TABLES),
    migration_dependencies=["core.identity.piccolo_app", "core.customers.piccolo_app"],
)
