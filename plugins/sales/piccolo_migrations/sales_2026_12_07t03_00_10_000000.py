from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T03:00:10:000000"
VERSION = "1.38.0"
DESCRIPTION = ("Sales: indexes for the order list (by status, customer, owner, newest first) "
               "and one order per idempotency key")

# The staff order list and the API page on the order id, newest first, often filtered by
# status or by customer (the 360° panel, the portal): with (filter, id) both are one index
# range scan however many orders there are. Separate from the migration creating the
# columns: Piccolo runs add_raw before add_column within one migration.
STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS sales_order_status_id_idx ON sales_order (status, id)",
    "CREATE INDEX IF NOT EXISTS sales_order_customer_id_idx ON sales_order (customer, id)",
    "CREATE INDEX IF NOT EXISTS sales_order_owner_id_idx ON sales_order (owner, id)",
    # One order per API idempotency key (NULL for orders without one: NULLs are distinct).
    "CREATE UNIQUE INDEX IF NOT EXISTS sales_order_idempotency_idx "
    "ON sales_order (idempotency_key)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sales", description=DESCRIPTION)

    async def order_indexes():
        from plugins.sales.tables import SalesOrder

        for statement in STATEMENTS:
            await SalesOrder.raw(statement).run()

    manager.add_raw(order_indexes)
    return manager
