"""Analytical CRM: RFM segments, customer lifetime value (historic and predicted, with its
accuracy measured on a hold-out period), churn risk with reasons, cohort retention; a
dashboard, an at-risk list that becomes a call list, a 360° panel and an API.

Analytics never imports another plugin: it reads orders through the sales plugin's
``sales_read_api`` hook (without sales there is nothing to measure) and keeps its summary
tables current with the recurring ``analytics.refresh`` job and the sales order events. Pages
read only the summary tables.
"""

from __future__ import annotations

from pathlib import Path

from core.plugin import NavItem, Panel, Permission, Plugin, Widget, hookimpl, subscribes_to

plugin = Plugin(id="analytics", name="Analytics", version="0.1.0",
                description="Customer segments, lifetime value and churn risk.")

HERE = Path(__file__).resolve().parent


@hookimpl
def register_piccolo_apps():
    from plugins.analytics.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


@hookimpl
def register_routes(rapport):
    from plugins.analytics import values_api, values_web

    return values_web.ROUTES + values_api.ROUTES


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    return {"plugins/analytics": HERE / "static"}


@hookimpl
def register_permissions():
    return [
        Permission("analytics.report.view", "See customer analytics (segments, value, churn "
                   "risk) over the customers in scope"),
        Permission("analytics.report.export", "Export customer analytics as CSV and tag "
                   "customers at risk for call lists and campaigns"),
        Permission("analytics.model.manage", "Recompute customer analytics now",
                   scoped=False),
    ]


@hookimpl
def register_nav_items():
    return [
        NavItem("Customer analytics", "/analytics", permission="analytics.report.view",
                order=70, group="Analytics"),
        NavItem("Customers at risk", "/analytics/at-risk", permission="analytics.report.view",
                order=71, group="Analytics"),
    ]


@hookimpl
def dashboard_widgets():
    return [Widget("analytics-segments", "Customer segments", url="/analytics/widgets/segments",
                   permission="analytics.report.view", order=70)]


@hookimpl
def customer_panels(customer, user):
    if not user.can("analytics.report.view"):
        return None
    return [Panel("analytics", "Value and churn risk",
                  url=f"/analytics/panels/customer/{customer['id']}", order=40)]


@hookimpl
def register_jobs(rapport):
    from plugins.analytics import jobs

    return jobs.job_types()


@hookimpl
@subscribes_to("sales.order.*", "core.customer.updated", "core.customer.merged",
               "core.customer.deleted")
async def on_event(rapport, event):
    from plugins.analytics import jobs

    await jobs.on_event(rapport, event)


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from plugins.analytics.customers import merge

    await merge(survivor_id, merged_id)


@hookimpl
async def privacy_export(customer_id):
    from plugins.analytics.customers import export

    return await export(customer_id)


@hookimpl
async def privacy_erase(rapport, customer_id):
    from plugins.analytics.customers import erase

    await erase(customer_id)


@hookimpl
def register_commands(cli):
    import click

    @cli.group(name="analytics", help="Customer analytics: recompute, export for BI tools.")
    def analytics_group() -> None:
        pass

    def run(ctx, work):
        import asyncio

        from core import db
        from core.cli import get_rapport

        rapport = get_rapport(ctx)

        async def wrapped():
            rapport.activate()
            await db.connect(rapport.engine, pool_size=2)
            try:
                await db.ensure_migrated(rapport.piccolo_apps())
                return await work(rapport)
            finally:
                await db.disconnect(rapport.engine)

        return asyncio.run(wrapped())

    @analytics_group.command(name="refresh", help="Recompute segments, value, churn risk "
                             "and cohorts now (also runs every night).")
    @click.pass_context
    def refresh_command(ctx) -> None:
        from plugins.analytics import values

        result = run(ctx, values.refresh_all)
        if result is None:
            raise click.ClickException("the sales plugin is not enabled: no orders to measure")
        click.echo(f"{result['customers']} customers from {result['orders']} orders "
                   f"in {result['seconds']:.1f} s")

    @analytics_group.command(name="export", help="Write customer-level facts as CSV files "
                             "for a BI tool into DIRECTORY (only what changed since the "
                             "last export there, unless --since).")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--since", default=None, help="ISO date or time (UTC): export what "
                  "changed from then on")
    @click.option("--pseudonymise", is_flag=True, help="leave out names, e-mail addresses "
                  "and phone numbers and replace customer ids by stable pseudonyms")
    @click.pass_context
    def export_command(ctx, directory: str, since: str | None, pseudonymise: bool) -> None:
        from datetime import UTC, datetime
        from pathlib import Path

        from plugins.analytics import export

        moment = None
        if since:
            try:
                moment = datetime.fromisoformat(since)
            except ValueError:
                raise click.BadParameter("an ISO date such as 2026-12-01",
                                         param_hint="--since") from None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        entry = run(ctx, lambda rapport: export.export(rapport, Path(directory), since=moment,
                                                        pseudonymise=pseudonymise))
        rows = ", ".join(f"{name}: {count}" for name, count in entry["rows"].items())
        click.echo(f"{Path(directory) / entry['folder']}: {rows}")


@hookimpl
async def seed_demo_data(rapport, customers):
    # Queued, not run here: the other plugins' demo orders may be seeded after this hook.
    # The worker of `rapport serve` (or `rapport worker`) computes the figures at once.
    from core import jobs

    await jobs.enqueue(rapport, "analytics.refresh", {})
