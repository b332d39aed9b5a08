"""E-mail templates staff start from on a customer's 360° page (core.interactions.email).
Written by hand like core's recent migrations; column types spelled as Piccolo spells them."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T07:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "E-mail templates"


def _statements(engine_type: str) -> list[str]:
    pk = "BIGSERIAL PRIMARY KEY" if engine_type == "postgres" else "INTEGER PRIMARY KEY"
    return [
        f"""CREATE TABLE core_email_template (
            id {pk},
            name VARCHAR(100) NOT NULL UNIQUE,
            subject VARCHAR(300) NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )""",
    ]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core_interactions",
                               description=DESCRIPTION)

    async def create():
        from core.interactions.tables import EmailTemplate

        for statement in _statements(EmailTemplate._meta.db.engine_type):
            await EmailTemplate.raw(statement).run()

    manager.add_raw(create)
    return manager
