"""Composite indexes on core_interaction (Piccolo runs raw SQL before creating tables, so
they live in a migration of their own, after the one that creates the table)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:46:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "Interaction indexes: timeline keyset, fatigue count, my day, lists"

# Same SQL on SQLite and PostgreSQL. "user" is quoted: it is a reserved word in PostgreSQL.
STATEMENTS = [
    # The customer timeline, newest first, keyset on (occurred_at, id).
    "CREATE INDEX core_interaction_timeline_idx ON core_interaction (customer, occurred_at, id)",
    # The contact-policy fatigue rule counts a customer's recent outbound interactions.
    "CREATE INDEX core_interaction_fatigue_idx "
    "ON core_interaction (customer, direction, occurred_at)",
    # "My day": a user's open follow-ups by due date.
    "CREATE INDEX core_interaction_my_day_idx "
    "ON core_interaction (followup_assignee, followup_done, followup_due)",
    # The interactions list (everyone's, newest first) and one user's interactions.
    "CREATE INDEX core_interaction_recent_idx ON core_interaction (occurred_at, id)",
    'CREATE INDEX core_interaction_by_user_idx ON core_interaction ("user", occurred_at)',
    # A plugin finding the interactions of one of its records.
    "CREATE INDEX core_interaction_plugin_idx ON core_interaction (plugin, plugin_record)",
]


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="core_interactions", description=DESCRIPTION
    )

    async def composite_indexes():
        from core.interactions.tables import Interaction

        for statement in STATEMENTS:
            await Interaction.raw(statement).run()

    manager.add_raw(composite_indexes)
    return manager
