from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T05:47:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Analytics: one row per customer; the at-risk list and segment months indexed"

# The at-risk list reads by churn risk then predicted value (highest first), bounded; the
# per-customer update finds its row by customer. Same SQL on both databases.
STATEMENTS = (
    "CREATE UNIQUE INDEX analytics_customer_customer_idx ON analytics_customer (customer)",
    "CREATE INDEX analytics_customer_risk_value ON analytics_customer "
    "(churn_risk, predicted_value, id)",
    "CREATE INDEX analytics_customer_owner_risk ON analytics_customer (owner, churn_risk)",
    "CREATE UNIQUE INDEX analytics_segment_month_idx ON analytics_segment_month "
    "(month, segment)",
    "CREATE INDEX analytics_cohort_idx ON analytics_cohort (cohort, age)",
)
UNDO = ("analytics_customer_customer_idx", "analytics_customer_risk_value",
        "analytics_customer_owner_risk", "analytics_segment_month_idx", "analytics_cohort_idx")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="analytics", description=DESCRIPTION)

    async def indexes():
        from plugins.analytics.tables import CustomerValue

        for statement in STATEMENTS:
            await CustomerValue.raw(statement).run()

    async def undo():
        from plugins.analytics.tables import CustomerValue

        for name in UNDO:
            await CustomerValue.raw(f"DROP INDEX IF EXISTS {name}").run()

    manager.add_raw(indexes)
    manager.add_raw_backwards(undo)
    return manager
