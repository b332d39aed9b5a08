from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Configurator: saved configurations have an owner and a team (row-level scopes)"

# Core's row filter scopes a table by its owner and team columns, as for quotes. Existing
# configurations belong to whoever saved them, else to their customer's owner, and to their
# customer's team. Same SQL on both databases.
STATEMENTS = (
    "ALTER TABLE configurator_configuration ADD COLUMN owner INTEGER NULL "
    "REFERENCES core_user (id) ON DELETE SET NULL",
    "ALTER TABLE configurator_configuration ADD COLUMN team INTEGER NULL "
    "REFERENCES core_team (id) ON DELETE SET NULL",
    "UPDATE configurator_configuration SET owner = COALESCE(created_by, (SELECT c.owner FROM "
    "core_customer c WHERE c.id = configurator_configuration.customer)), team = (SELECT "
    "c.team FROM core_customer c WHERE c.id = configurator_configuration.customer)",
    "CREATE INDEX configurator_configuration_owner ON configurator_configuration (owner, id)",
    "CREATE INDEX configurator_configuration_team ON configurator_configuration (team, id)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="configurator",
                               description=DESCRIPTION)

    async def scopes():
        from plugins.configurator.tables import Configuration

        for statement in STATEMENTS:
            await Configuration.raw(statement).run()

    async def undo():
        from plugins.configurator.tables import Configuration

        for name in ("configurator_configuration_owner", "configurator_configuration_team"):
            await Configuration.raw(f"DROP INDEX IF EXISTS {name}").run()
        for column in ("owner", "team"):
            await Configuration.raw(
                f"ALTER TABLE configurator_configuration DROP COLUMN {column}").run()

    manager.add_raw(scopes)
    manager.add_raw_backwards(undo)
    return manager
