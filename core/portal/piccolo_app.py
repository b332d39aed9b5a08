from pathlib import Path

from piccolo.conf.apps import AppConfig

from core.portal.tables import (
    PortalIdentity,
    PortalLoginAttempt,
    PortalLoginLink,
    PortalSession,
    PortalVisit,
)

APP_CONFIG = AppConfig(
    app_name="core_portal",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[PortalIdentity, PortalSession, PortalLoginLink, PortalVisit,
                   PortalLoginAttempt],
    migration_dependencies=["core.customers.piccolo_app"],
)
