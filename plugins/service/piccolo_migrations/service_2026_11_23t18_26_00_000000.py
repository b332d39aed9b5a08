from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:26:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Service indexes: queue views, SLA sweeps, customer panels, numbering, visits"

# Same SQL on SQLite and PostgreSQL. Queue views page by (priority_rank, id) over open cases
# of a queue, of an agent, or of everyone; the SLA sweeper scans open cases by deadline.
STATEMENTS = [
    "CREATE INDEX service_case_queue_view_idx "
    "ON service_case (queue, is_open, priority_rank, id)",
    "CREATE INDEX service_case_owner_view_idx "
    "ON service_case (owner, is_open, priority_rank, id)",
    "CREATE INDEX service_case_team_view_idx "
    "ON service_case (team, is_open, priority_rank, id)",
    "CREATE INDEX service_case_open_view_idx ON service_case (is_open, priority_rank, id)",
    "CREATE INDEX service_case_response_due_idx "
    "ON service_case (is_open, first_response_due)",
    "CREATE INDEX service_case_resolution_due_idx ON service_case (is_open, resolution_due)",
    "CREATE INDEX service_case_customer_idx ON service_case (customer, id)",
    "CREATE INDEX service_case_created_idx ON service_case (created_at)",
    "CREATE INDEX service_message_case_idx ON service_message (\"case\", id)",
    "CREATE INDEX service_visit_assignee_idx ON service_visit (assignee, starts_at)",
    "CREATE UNIQUE INDEX service_queue_member_unique_idx "
    "ON service_queue_member (queue, \"user\")",
    "CREATE UNIQUE INDEX service_holiday_unique_idx ON service_holiday (calendar, day)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="service", description=DESCRIPTION)

    async def composite_indexes():
        from plugins.service.tables import Case

        for statement in STATEMENTS:
            await Case.raw(statement).run()

    manager.add_raw(composite_indexes)
    return manager
