from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T16:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Loyalty cards and visits (test plugin)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="loyaltyfake", description=DESCRIPTION)

    async def create_tables():
        from core.customers.tables import Customer

        postgres = Customer._meta.db.engine_type == "postgres"
        key = "SERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY"
        await Customer.raw(
            f"CREATE TABLE loyaltyfake_card (id {key}, customer INTEGER NOT NULL "
            "REFERENCES core_customer(id) ON DELETE CASCADE, points INTEGER NOT NULL DEFAULT 0)"
        ).run()
        await Customer.raw(
            f"CREATE TABLE loyaltyfake_visit (id {key}, customer INTEGER NOT NULL "
            "REFERENCES core_customer(id) ON DELETE CASCADE, shop VARCHAR(50) NOT NULL)"
        ).run()

    manager.add_raw(create_tables)
    return manager
