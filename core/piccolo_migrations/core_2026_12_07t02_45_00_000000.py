"""Background jobs and the durable-event outbox (core.jobs, core.events).

Written by hand: the partial indexes the claim queries rely on cannot be described to
Piccolo's auto-migrations. Column types are spelled as Piccolo spells them, so Piccolo's
SQLite converters (TIMESTAMPTZ, BOOLEAN) apply when reading."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T02:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Background jobs and durable events"


def _statements(engine_type: str) -> list[str]:
    pk = "BIGSERIAL PRIMARY KEY" if engine_type == "postgres" else "INTEGER PRIMARY KEY"
    return [
        f"""CREATE TABLE core_job (
            id {pk},
            name VARCHAR(200) NOT NULL,
            args TEXT NOT NULL,
            status VARCHAR(20) NOT NULL DEFAULT 'queued',
            run_at TIMESTAMPTZ NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5,
            unique_key VARCHAR(200) NULL,
            schedule_slot TIMESTAMPTZ NULL,
            exclusive BOOLEAN NOT NULL DEFAULT FALSE,
            locked_until TIMESTAMPTZ NULL,
            worker VARCHAR(100) NULL,
            cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
            last_error TEXT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ NULL,
            finished_at TIMESTAMPTZ NULL
        )""",
        # What a worker looks for: due queued jobs and running ones whose lease ran out.
        """CREATE INDEX core_job_due ON core_job (run_at)
           WHERE status IN ('queued', 'running')""",
        """CREATE UNIQUE INDEX core_job_waiting_once ON core_job (name, unique_key)
           WHERE status = 'queued' AND unique_key IS NOT NULL""",
        """CREATE UNIQUE INDEX core_job_slot_once ON core_job (name, schedule_slot)
           WHERE schedule_slot IS NOT NULL""",
        "CREATE INDEX core_job_by_status ON core_job (status, id)",
        "CREATE INDEX core_job_by_name ON core_job (name, status)",
        f"""CREATE TABLE core_event (
            id {pk},
            name VARCHAR(200) NOT NULL,
            payload TEXT NOT NULL,
            actor_id INTEGER NULL,
            key VARCHAR(200) NULL,
            created_at TIMESTAMPTZ NOT NULL
        )""",
        "CREATE INDEX core_event_created ON core_event (created_at)",
        f"""CREATE TABLE core_event_delivery (
            id {pk},
            event_id BIGINT NOT NULL REFERENCES core_event (id) ON DELETE CASCADE,
            subscriber VARCHAR(200) NOT NULL,
            key VARCHAR(200) NULL,
            status VARCHAR(20) NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            run_at TIMESTAMPTZ NOT NULL,
            locked_until TIMESTAMPTZ NULL,
            last_error TEXT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            handled_at TIMESTAMPTZ NULL
        )""",
        """CREATE INDEX core_event_delivery_due ON core_event_delivery (run_at)
           WHERE status IN ('pending', 'running')""",
        # Order per aggregate: "is an earlier event for this key still open for me?"
        """CREATE INDEX core_event_delivery_key_order ON core_event_delivery
           (subscriber, key, event_id) WHERE status IN ('pending', 'running')
           AND key IS NOT NULL""",
        "CREATE INDEX core_event_delivery_event ON core_event_delivery (event_id)",
        "CREATE INDEX core_event_delivery_by_status ON core_event_delivery (status, id)",
    ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def create():
        from core.jobs_tables import JobRow

        engine = JobRow._meta.db
        for statement in _statements(engine.engine_type):
            await JobRow.raw(statement).run()

    manager.add_raw(create)
    return manager
