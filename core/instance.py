"""The instance itself: its settings table and core's instance-level permissions."""

from __future__ import annotations

from pathlib import Path

from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

from core.plugin import Permission, hookimpl


class InstanceSetting(Table, tablename="core_instance_setting"):
    """Settings an administrator changes in the UI (branding, policies), as JSON text."""

    key = Varchar(length=100, unique=True)
    value = Text()
    updated_at = Timestamptz()


def _tables() -> list[type[Table]]:
    from core.audit import AuditEntry
    from core.jobs_tables import TABLES as JOB_TABLES
    from core.rate_limits import RateCount
    from core.webhooks_tables import TABLES as WEBHOOK_TABLES

    return [InstanceSetting, AuditEntry, *JOB_TABLES, *WEBHOOK_TABLES, RateCount]


APP_CONFIG = AppConfig(
    app_name="core",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=_tables(),
)


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_permissions():
    return [
        Permission("core.dashboard.view", "See the staff dashboard", scoped=False),
        Permission("core.settings.manage", "Change instance settings", scoped=False),
        Permission("core.audit.manage", "Read and export the audit log (administration)", scoped=False),
    ]
