"""Hook implementations for bringing customer data in and keeping it clean: CSV and vCard
import and export, likely duplicates and merging (core module, always enabled)."""

from __future__ import annotations

from core.plugin import Action, NavItem, hookimpl


@hookimpl
def register_routes():
    from core.customers.import_web import ROUTES

    return list(ROUTES)


@hookimpl
def register_jobs(rapport):
    from core.customers.import_web import CLEANUP_JOB, IMPORT_JOB, cleanup_imports, run_import
    from core.plugin import JobType

    # Three attempts: a database that was briefly away is worth another try; the file is
    # imported in one transaction, so a failed attempt wrote nothing.
    return [JobType(IMPORT_JOB, run_import, max_attempts=3, timeout_seconds=3600,
                    description="Check or import a file of customers uploaded on the import "
                                "page"),
            JobType(CLEANUP_JOB, cleanup_imports, schedule="41 * * * *", unique=True,
                    description="Delete uploaded import files nobody has touched for a day "
                                "(abandoned or already imported)")]


@hookimpl
def register_nav_items():
    return [NavItem(label="Import", href="/customers/import",
                    permission="core.customer.create", order=38, group="Customers"),
            NavItem(label="Duplicates", href="/customers/duplicates",
                    permission="core.customer.edit", order=40, group="Customers")]


@hookimpl
def register_commands(cli):
    import click

    @cli.group(name="import", help="Import accounts and contacts (CSV) or contacts (vCard).")
    def import_group() -> None:
        pass

    def run(ctx: click.Context, kind: str, path: str, maps: tuple[str, ...], dry_run: bool,
            file_format: str, **options) -> None:
        from core.customers.importing import run_from_command_line

        run_from_command_line(ctx, kind, path, maps, dry_run, file_format, **options)

    for kind in ("contacts", "accounts"):
        @import_group.command(name=kind, help=f"Import {kind} from a CSV file: every row is "
                              "checked; nothing is written if any row is bad, unless "
                              "--skip-bad-rows.")
        @click.argument("path", type=click.Path(exists=True, dir_okay=False))
        @click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
                      help="Map a CSV column to a field (repeatable); others are guessed.")
        @click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
        @click.option("--skip-bad-rows", is_flag=True,
                      help="Import the good rows even if some rows are bad.")
        @click.option("--bad-rows", "bad_rows_path", type=click.Path(dir_okay=False),
                      help="Write the bad rows to this CSV file, with a column saying why.")
        @click.option("--duplicates", "on_duplicate", default="new", show_default=True,
                      type=click.Choice(["new", "skip", "update"]),
                      help="Rows that match a stored customer (same email or phone, or a "
                           "close name): import as new, skip, or update the stored one.")
        @click.pass_context
        def csv_command(ctx, path, maps, dry_run, skip_bad_rows, bad_rows_path, on_duplicate,
                        _kind=kind[:-1]):
            run(ctx, _kind, path, maps, dry_run, "csv", skip_bad_rows=skip_bad_rows,
                bad_rows_path=bad_rows_path, on_duplicate=on_duplicate)

    @import_group.command(name="vcard", help="Import contacts from a .vcf file (vCard 3.0/4.0).")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--dry-run", is_flag=True, help="Check every card, write nothing.")
    @click.pass_context
    def vcard_command(ctx, path, dry_run):
        run(ctx, "contact", path, (), dry_run, "vcard")


@hookimpl
def record_actions(record_type, record):
    # A contact's card for a phone's address book (the export existed with nothing leading to it).
    if record_type == "customer" and record.get("kind") == "contact":
        return [Action("Download vCard", f"/contacts/{record['id']}/vcard",
                       permission="core.customer.view", order=90)]
    return None
