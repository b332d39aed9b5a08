from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T06:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Campaigns: a control group (holdout) share per campaign"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="campaigns", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Campaign",
        tablename="campaigns_campaign",
        column_name="holdout_percent",
        db_column_name="holdout_percent",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
