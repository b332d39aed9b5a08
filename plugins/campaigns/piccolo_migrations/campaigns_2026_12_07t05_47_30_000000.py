from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T05:47:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "Campaigns: one message per campaign and customer; the send job's and report's indexes"

# The unique index is what makes queueing a recipient twice impossible (ON CONFLICT DO
# NOTHING); (campaign, state, id) serves the send job's batches and the report's counts.
STATEMENTS = (
    "CREATE UNIQUE INDEX campaigns_message_campaign_customer "
    "ON campaigns_message (campaign, customer)",
    "CREATE INDEX campaigns_message_campaign_state ON campaigns_message (campaign, state, id)",
)
UNDO = ("campaigns_message_campaign_customer", "campaigns_message_campaign_state")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="campaigns", description=DESCRIPTION)

    async def indexes():
        from plugins.campaigns.tables import Message

        for statement in STATEMENTS:
            await Message.raw(statement).run()

    async def undo():
        from plugins.campaigns.tables import Message

        for name in UNDO:
            await Message.raw(f"DROP INDEX IF EXISTS {name}").run()

    manager.add_raw(indexes)
    manager.add_raw_backwards(undo)
    return manager
