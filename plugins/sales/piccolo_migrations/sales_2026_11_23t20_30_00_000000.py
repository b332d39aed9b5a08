from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T20:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sales: index open deals by contact (activity noted on every interaction)"

# Every recorded interaction touches the customer's open deals (sales.customers.note_activity,
# run from on_event). It matched `customer = ? OR contact = ?` with no index on contact, so
# each interaction scanned every open deal: ~550 ms per POST /api/v1/interactions at 150,000
# deals (SQLite). With (contact, status) indexed both halves are index lookups.
STATEMENT = ("CREATE INDEX IF NOT EXISTS sales_opportunity_contact_status_idx "
             "ON sales_opportunity (contact, status)")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sales", description=DESCRIPTION)

    async def contact_index():
        from plugins.sales.tables import Opportunity

        await Opportunity.raw(STATEMENT).run()

    manager.add_raw(contact_index)
    return manager
