"""The ``rapport`` command. Plugins add sub-commands through ``register_commands``."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from pathlib import Path

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
        # The app reads forwarded headers itself, from RAPPORT_TRUSTED_PROXIES only (uvicorn's
        # default would believe any X-Forwarded-For arriving from 127.0.0.1).
        proxy_headers=False,
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


@cli.group(name="plugin", help="Tools for plugin authors.")
def plugin_group() -> None:
    pass


@plugin_group.command(name="new", help="Create a working third-party plugin package: entry "
                      "point, table and migration, a page, an API route, permissions, tests.")
@click.argument("name")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write it (default: ./rapport-NAME, which must not exist or be "
              "empty).")
def plugin_new(name: str, folder: Path | None) -> None:
    from core import scaffold

    target = folder or scaffold.default_folder(name)
    try:
        scaffold.create(name, target, set(installed_plugins()))
    except scaffold.ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"Created plugin {name!r} in {target}")
    console.print(f"Next: cd {target} && pip install -e . && pytest "
                  "(see docs/plugin-authors.md)")


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


async def _connected(rapport, work, pool_size: int = 2):
    """Run ``work()`` with the instance's migrated database open."""
    from core import db

    rapport.activate()
    await db.connect(rapport.engine, pool_size=pool_size)
    try:
        await db.ensure_migrated(rapport.piccolo_apps())
        return await work()
    finally:
        await db.disconnect(rapport.engine)


@cli.command(help="Run background jobs and deliver durable events until stopped (Ctrl-C or "
             "SIGTERM). Run as many as needed, on any host, against one PostgreSQL database.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Jobs run at once (default 4, or RAPPORT_JOBS_CONCURRENCY).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    import dataclasses
    import signal

    from core import jobs

    rapport = get_rapport(ctx)
    config = jobs.WorkerConfig.for_rapport(rapport)
    if concurrency:
        config = dataclasses.replace(config, concurrency=concurrency)

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = jobs.Worker(rapport, config)
        await running.start()
        console.print(f"Worker {running.id} started ({config.concurrency} jobs at once).")
        await stop.wait()
        console.print("Stopping: waiting for running jobs...")
        await running.stop()

    asyncio.run(_connected(rapport, work, pool_size=config.concurrency
                           + config.event_concurrency + 2))
    console.print("Worker stopped.")


@cli.group(name="jobs", help="Background jobs: list, retry, cancel, health.")
def jobs_group() -> None:
    pass


@jobs_group.command(name="list", help="List jobs of one kind: waiting, running, scheduled, "
                    "failed or recent.")
@click.argument("view", type=click.Choice(["waiting", "running", "scheduled", "failed",
                                           "recent"]), default="waiting")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
def jobs_list(ctx: click.Context, view: str, limit: int) -> None:
    from core import jobs

    rapport = get_rapport(ctx)
    rows, more = asyncio.run(_connected(rapport, lambda: jobs.list_jobs(view, limit=limit)))
    if not rows:
        console.print(f"No {view} jobs.")
        return
    table = RichTable("id", "job", "status", "due", "attempts", "last error")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["status"],
                      row["run_at"].strftime("%Y-%m-%d %H:%M:%S"),
                      f"{row['attempts']}/{row['max_attempts']}", (row["last_error"] or "")[:80])
    console.print(table)
    if more:
        console.print(f"(more than {limit}; use --limit)")


@jobs_group.command(name="retry", help="Queue a failed or cancelled job again now.")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_retry(ctx: click.Context, job_id: int) -> None:
    from core import jobs

    rapport = get_rapport(ctx)
    if not asyncio.run(_connected(rapport, lambda: jobs.retry(rapport, job_id))):
        raise click.ClickException(f"job {job_id} is not failed or cancelled (or an identical "
                                   "job is waiting)")
    console.print(f"Job {job_id} queued again.")


@jobs_group.command(name="cancel", help="Cancel a waiting job, or stop a running one.")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: int) -> None:
    from core import jobs

    rapport = get_rapport(ctx)
    outcome = asyncio.run(_connected(rapport, lambda: jobs.cancel(job_id)))
    if outcome is None:
        raise click.ClickException(f"job {job_id} is not waiting or running")
    console.print(f"Job {job_id} {outcome}.")


@jobs_group.command(name="health", help="One line for monitoring; exit 1 when the oldest due "
                    "job has waited longer than --max-wait seconds or deliveries failed.")
@click.option("--max-wait", type=float, default=300.0, show_default=True)
@click.pass_context
def jobs_health(ctx: click.Context, max_wait: float) -> None:
    from core import jobs

    rapport = get_rapport(ctx)
    health = asyncio.run(_connected(rapport, lambda: jobs.health(rapport)))
    oldest = health["oldest_queued_seconds"]
    counts, deliveries = health["jobs"], health["deliveries"]
    waited = "none waiting" if oldest is None else f"oldest waiting {oldest:.0f}s"
    bad = (oldest is not None and oldest > max_wait) or deliveries["failed"] > 0
    click.echo(f"{'PROBLEM' if bad else 'OK'}: jobs {counts['queued']} queued, "
               f"{counts['running']} running, {counts['failed']} failed; {waited}; "
               f"event deliveries {deliveries['retrying']} retrying, "
               f"{deliveries['failed']} failed")
    if bad:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    import logging

    from core.web_app import RouteDeclarationError

    # Piccolo says which SQLite version it found at every first connection; commands print
    # their own results, and that line only interleaves with them.
    logging.getLogger("piccolo.engine").setLevel(logging.WARNING)
    # Piccolo also warns "Unable to connect" before Rapport says so in one line of its own.
    warnings.filterwarnings("ignore", message=r".*Unable to (connect|fetch server version)")

    # Plugins' sub-commands must exist before click parses the command line.
    ctx_obj: dict = {}
    try:
        from core.app import Rapport

        rapport = Rapport(Settings.from_env())
        ctx_obj["rapport"] = rapport
        rapport.pm.hook.register_commands(cli=cli)
    except (PluginError, DatabaseError) as exc:  # e.g. a database URL of an unknown scheme
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
