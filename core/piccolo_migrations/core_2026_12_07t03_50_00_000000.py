"""Outbound webhooks (core.webhooks): subscriptions and their delivery log.

Written by hand, like the jobs migration before it, so that auto-generation does not pick up
other modules' unmigrated changes; column types are spelled as Piccolo spells them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T03:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Outbound webhooks"


def _statements(engine_type: str) -> list[str]:
    pk = "BIGSERIAL PRIMARY KEY" if engine_type == "postgres" else "INTEGER PRIMARY KEY"
    return [
        f"""CREATE TABLE core_webhook (
            id {pk},
            name VARCHAR(200) NOT NULL,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret VARCHAR(100) NOT NULL,
            previous_secret VARCHAR(100) NULL,
            previous_secret_until TIMESTAMPTZ NULL,
            owner INTEGER NOT NULL,
            enabled BOOLEAN NOT NULL DEFAULT TRUE,
            disabled_reason TEXT NULL,
            disabled_at TIMESTAMPTZ NULL,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            last_delivery_at TIMESTAMPTZ NULL,
            last_status VARCHAR(20) NULL,
            last_response_code INTEGER NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )""",
        f"""CREATE TABLE core_webhook_delivery (
            id {pk},
            subscription BIGINT NOT NULL REFERENCES core_webhook (id) ON DELETE CASCADE,
            event_id BIGINT NULL,
            event_name VARCHAR(200) NOT NULL,
            body TEXT NOT NULL,
            status VARCHAR(20) NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            response_code INTEGER NULL,
            response_ms INTEGER NULL,
            response_excerpt TEXT NULL,
            error TEXT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            last_attempt_at TIMESTAMPTZ NULL
        )""",
        # One delivery per (subscription, event): a redelivered event is not sent twice.
        # Pings have no event id (NULLs never collide in a unique index on either database).
        """CREATE UNIQUE INDEX core_webhook_delivery_once ON core_webhook_delivery
           (subscription, event_id)""",
        # The log of one subscription, newest first (keyset on id); the purge by age.
        """CREATE INDEX core_webhook_delivery_log ON core_webhook_delivery
           (subscription, id)""",
        "CREATE INDEX core_webhook_delivery_created ON core_webhook_delivery (created_at)",
    ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def create():
        from core.webhooks_tables import WebhookSubscription

        for statement in _statements(WebhookSubscription._meta.db.engine_type):
            await WebhookSubscription.raw(statement).run()

    manager.add_raw(create)
    return manager
