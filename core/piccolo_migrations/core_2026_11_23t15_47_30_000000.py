"""The audit log is append-only in the database itself, not only by convention: triggers
refuse DELETE (and TRUNCATE on PostgreSQL) and every UPDATE except the one-time redaction a
privacy erasure makes, which may blank values but never who, what, when or which record."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T15:47:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "Audit log: triggers make it append-only"

MESSAGE = "the audit log is append-only"

# The columns a redaction must leave as they were.
KEPT = ("id", "occurred_at", "actor_kind", "actor_id", "actor_label", "action", "record_type",
        "record_id")

SQLITE = [
    f"""CREATE TRIGGER core_audit_entry_no_delete BEFORE DELETE ON core_audit_entry
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER core_audit_entry_no_update BEFORE UPDATE ON core_audit_entry
    WHEN NOT (OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL AND
              {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in KEPT)})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]

POSTGRES = [
    f"""CREATE FUNCTION core_audit_entry_append_only() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL AND
           {" AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in KEPT)} THEN
          RETURN NEW;
        END IF;
      END IF;
      RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER core_audit_entry_append_only BEFORE UPDATE OR DELETE ON core_audit_entry
    FOR EACH ROW EXECUTE FUNCTION core_audit_entry_append_only()""",
    """CREATE TRIGGER core_audit_entry_no_truncate BEFORE TRUNCATE ON core_audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION core_audit_entry_append_only()""",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    async def append_only():
        from core.audit import AuditEntry

        engine = AuditEntry._meta.db
        for statement in SQLITE if engine.engine_type == "sqlite" else POSTGRES:
            await AuditEntry.raw(statement).run()

    manager.add_raw(append_only)
    return manager
