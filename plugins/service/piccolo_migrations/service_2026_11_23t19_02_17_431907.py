from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T19:02:17:431907"
VERSION = "1.38.0"
DESCRIPTION = "Service inbound mail: one stored message per Message-ID; the mail poll lease"

# Same SQL on SQLite (partial indexes since 3.8, RETURNING since 3.35) and PostgreSQL.
STATEMENTS = [
    # Two workers storing the same mail at once could each write it before this index existed;
    # the later copies keep their text but give up the Message-ID, so the index can be built.
    "UPDATE service_message SET message_id = '' WHERE message_id <> '' AND id NOT IN "
    "(SELECT MIN(id) FROM service_message WHERE message_id <> '' GROUP BY message_id)",
    # Messages without a Message-ID (notes, portal, phone) are many and stored as ''.
    "CREATE UNIQUE INDEX service_message_message_id_unique_idx "
    "ON service_message (message_id) WHERE message_id <> ''",
    # One row per poller ("mail"): who polls the mailboxes and until when (Unix seconds by the
    # database's clock), so several server processes never poll at the same time.
    "CREATE TABLE service_mail_lease (name VARCHAR(50) PRIMARY KEY, "
    "holder VARCHAR(200) NOT NULL DEFAULT '', expires_at DOUBLE PRECISION NOT NULL DEFAULT 0)",
    "INSERT INTO service_mail_lease (name, holder, expires_at) VALUES ('mail', '', 0)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="service", description=DESCRIPTION)

    async def inbound_mail():
        from plugins.service.tables import CaseMessage

        for statement in STATEMENTS:
            await CaseMessage.raw(statement).run()

    async def undo():
        from plugins.service.tables import CaseMessage

        await CaseMessage.raw("DROP TABLE IF EXISTS service_mail_lease").run()
        await CaseMessage.raw("DROP INDEX IF EXISTS service_message_message_id_unique_idx").run()

    manager.add_raw(inbound_mail)
    manager.add_raw_backwards(undo)
    return manager
