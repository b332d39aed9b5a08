from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:47:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sales indexes: unique prices, board and stale-deal lists, 360 panels, quote versions"

# Same SQL on SQLite and PostgreSQL.
STATEMENTS = [
    # One price per product, price book and currency.
    "CREATE UNIQUE INDEX sales_product_price_unique_idx "
    "ON sales_product_price (price_book, product, currency)",
    # The board and list: open deals of a stage, keyset on id.
    "CREATE INDEX sales_opportunity_board_idx ON sales_opportunity (status, stage, id)",
    # Stale-deal warnings: open deals by last activity.
    "CREATE INDEX sales_opportunity_stale_idx ON sales_opportunity (status, last_activity_at)",
    # The 360 panels: a customer's quotes and orders, newest first.
    "CREATE INDEX sales_quote_customer_idx ON sales_quote (customer, status, id)",
    "CREATE INDEX sales_order_customer_idx ON sales_order (customer, ordered_at)",
    "CREATE UNIQUE INDEX sales_quote_number_version_idx ON sales_quote (number, version)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sales", description=DESCRIPTION)

    async def composite_indexes():
        from plugins.sales.tables import Lead

        for statement in STATEMENTS:
            await Lead.raw(statement).run()

    manager.add_raw(composite_indexes)
    return manager
