from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-07T03:03:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "Loyalty: one membership per program and customer, one month row per program"

# The month totals are upserted (ON CONFLICT (program, month)), which needs the unique index;
# lots are read first earned first spent per member and state. Same SQL on both databases.
STATEMENTS = (
    "CREATE UNIQUE INDEX loyalty_member_program_customer ON loyalty_member (program, customer)",
    "CREATE UNIQUE INDEX loyalty_month_program_month ON loyalty_month (program, month)",
    "CREATE INDEX loyalty_lot_member_state ON loyalty_lot (member, state, id)",
    "CREATE INDEX loyalty_ledger_member_id ON loyalty_ledger (member, id)",
)
UNDO = ("loyalty_member_program_customer", "loyalty_month_program_month",
        "loyalty_lot_member_state", "loyalty_ledger_member_id")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="loyalty", description=DESCRIPTION)

    async def indexes():
        from plugins.loyalty.tables import Member

        for statement in STATEMENTS:
            await Member.raw(statement).run()

    async def undo():
        from plugins.loyalty.tables import Member

        for name in UNDO:
            await Member.raw(f"DROP INDEX IF EXISTS {name}").run()

    manager.add_raw(indexes)
    manager.add_raw_backwards(undo)
    return manager
