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
    from core.customers.import_web import IMPORT_JOB, run_import
    from core.plugin import JobType

    # Three attempts: a database that was briefly away is worth another try; the file is
    # imported in one transaction, so a failed attempt wrote nothing.
    return [JobType(IMPORT_JOB, run_import, max_attempts=3, timeout_seconds=3600,
                    description="Import customers from a file uploaded on the import page")]


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
            file_format: str) -> None:
        from core.customers.importing import run_from_command_line

        run_from_command_line(ctx, kind, path, maps, dry_run, file_format)

    for kind in ("contacts", "accounts"):
        @import_group.command(name=kind, help=f"Import {kind} from a CSV file: every row is "
                              "checked first; nothing is written if any row is bad.")
        @click.argument("path", type=click.Path(exists=True, dir_okay=False))
        @click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
                      help="Map a CSV column to a field (repeatable); others are guessed.")
        @click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
        @click.pass_context
        def csv_command(ctx, path, maps, dry_run, _kind=kind[:-1]):
            run(ctx, _kind, path, maps, dry_run, "csv")

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
