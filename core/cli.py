"""The ``rapport`` command. Plugins add sub-commands through ``register_commands``."""

from __future__ import annotations

import asyncio
import os
import sys

import click
from rich.console import Console
from rich.table import Table as RichTable

from core.db import DatabaseError
from core.loader import PluginError, installed_plugins
from core.settings import Settings

console = Console(stderr=False)


def get_rapport(ctx: click.Context):
    """The instance for this command, built once (plugins.toml errors surface here)."""
    from core.app import Rapport

    obj = ctx.ensure_object(dict)
    if "rapport" not in obj:
        obj["rapport"] = Rapport(Settings.from_env())
    return obj["rapport"]


@click.group(help="Rapport: a self-hosted, pluggable CRM.")
@click.pass_context
def cli(ctx: click.Context) -> None:
    ctx.ensure_object(dict)


@cli.command(help="Apply every pending database migration (core first, then plugins).")
@click.pass_context
def migrate(ctx: click.Context) -> None:
    rapport = get_rapport(ctx)
    ran = asyncio.run(rapport.migrate())
    if not ran:
        console.print("Database is up to date.")
    for app_name, migration_id in ran:
        console.print(f"applied {app_name}: {migration_id}")


@cli.command(help="Serve the web app with uvicorn.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    from core import db

    rapport = get_rapport(ctx)

    async def preflight() -> None:
        rapport.activate()
        await db.connect(rapport.engine, pool_size=1)
        try:
            await db.ensure_migrated(rapport.piccolo_apps())
        finally:
            await db.disconnect(rapport.engine)

    asyncio.run(preflight())
    _ = rapport.settings.secret_key  # create it once, before several workers race for it
    console.print(f"Serving {rapport.settings.instance_name} on http://{host}:{port}")
    uvicorn.run(
        "core.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        log_level="info",
    )


@cli.command(help="Seed realistic demo data (idempotent).")
@click.option("--customers", default=200, show_default=True, type=click.IntRange(min=0),
              help="How many customers to create (scales to 1,000,000).")
@click.pass_context
def demo(ctx: click.Context, customers: int) -> None:
    from core import db

    rapport = get_rapport(ctx)

    async def seed() -> None:
        rapport.activate()
        await db.connect(rapport.engine, pool_size=2)
        try:
            await db.ensure_migrated(rapport.piccolo_apps())
            await rapport.acollect("seed_demo_data", rapport=rapport, customers=customers)
        finally:
            await db.disconnect(rapport.engine)

    asyncio.run(seed())
    console.print("Demo data is in place.")


@cli.command(name="plugins", help="List installed plugins, which are enabled, and versions.")
@click.pass_context
def plugins_command(ctx: click.Context) -> None:
    rapport = get_rapport(ctx)
    enabled = {p.meta.id for p in rapport.plugins}
    table = RichTable("id", "name", "version", "enabled", "requires")
    for pid, module in sorted(installed_plugins().items()):
        meta = module.plugin
        table.add_row(pid, meta.name, meta.version, "yes" if pid in enabled else "no",
                      ", ".join(meta.requires) or "-")
    console.print(table)


@cli.command(help="Validate configuration and database state; exit 1 on any problem.")
@click.pass_context
def check(ctx: click.Context) -> None:
    from core import db

    rapport = get_rapport(ctx)
    console.print(f"plugins.toml: ok ({len(rapport.plugins)} plugin(s) enabled)")
    _ = rapport.asgi  # builds every route: undeclared permissions fail here
    console.print(f"routes: ok ({len(rapport.permissions)} permissions declared)")

    async def database() -> None:
        rapport.activate()
        await db.connect(rapport.engine, pool_size=1)
        try:
            await db.ensure_migrated(rapport.piccolo_apps())
            from core.identity.administrators import active_administrators

            return await active_administrators(rapport)
        finally:
            await db.disconnect(rapport.engine)

    administrators = asyncio.run(database())
    console.print("database: ok (reachable and migrated)")
    if not administrators:
        # Nobody can manage users or roles: every other right is out of reach too.
        console.print("administrators: no active administrator (nobody can manage users and "
                      "roles); run `rapport user grant-admin EMAIL` or "
                      "`rapport user create EMAIL --role administrator`")
        sys.exit(1)
    console.print(f"administrators: ok ({len(administrators)} active)")


def main(argv: list[str] | None = None) -> None:
    import logging

    from core.web_app import RouteDeclarationError

    # Piccolo says which SQLite version it found at every first connection; commands print
    # their own results, and that line only interleaves with them.
    logging.getLogger("piccolo.engine").setLevel(logging.WARNING)

    # Plugins' sub-commands must exist before click parses the command line.
    ctx_obj: dict = {}
    try:
        from core.app import Rapport

        rapport = Rapport(Settings.from_env())
        ctx_obj["rapport"] = rapport
        rapport.pm.hook.register_commands(cli=cli)
    except PluginError as exc:
        if not (argv or sys.argv[1:]) or (argv or sys.argv[1:])[0] in {"--help", "-h"}:
            pass
        else:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
    try:
        cli.main(args=argv, obj=ctx_obj, standalone_mode=False, prog_name="rapport")
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (PluginError, DatabaseError, RouteDeclarationError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if os.environ.get("RAPPORT_DEBUG"):
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
