from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:28:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sales indexes for the forecast at scale, targets and documents"

# Same SQL on SQLite and PostgreSQL. A separate migration: Piccolo runs add_raw before
# add_table within one migration, and these index the tables the previous one creates.
STATEMENTS = [
    # Forecast: open deals by expected close date; won deals by the day they closed.
    "CREATE INDEX sales_opportunity_forecast_idx "
    "ON sales_opportunity (status, expected_close)",
    "CREATE INDEX sales_opportunity_closed_idx ON sales_opportunity (status, closed_at)",
    # The board's closed columns: a stage's deals closed in the last 30 days.
    "CREATE INDEX sales_opportunity_stage_closed_idx ON sales_opportunity (stage, closed_at)",
    # Bundle mining reads the latest orders' lines by order.
    "CREATE INDEX sales_order_line_order_product_idx ON sales_order_line (sales_order, product)",
    # One target per period, person or team, and currency.
    "CREATE INDEX sales_target_period_idx ON sales_target (period_kind, period_start, currency)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sales", description=DESCRIPTION)

    async def composite_indexes():
        from plugins.sales.tables import Lead

        for statement in STATEMENTS:
            await Lead.raw(statement).run()

    manager.add_raw(composite_indexes)
    return manager
