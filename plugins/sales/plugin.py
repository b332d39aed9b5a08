"""Sales force automation: leads, pipeline, products, quotes and orders.

Everything here plugs in through core's hooks; nothing in core knows this plugin exists.
The functions are thin: the work lives in ``leads``, ``pipeline``, ``quotes`` and
``controllers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.plugin import (
    Action,
    EventType,
    NavItem,
    Panel,
    Permission,
    Plugin,
    PushMessage,
    SearchProvider,
    Widget,
    hookimpl,
    subscribes_to,
)
from plugins.sales import hookspecs  # noqa: F401  (core's loader adds sales' own hooks)

plugin = Plugin(id="sales", name="Sales", version="0.1.0",
                description="Leads, opportunities and pipeline, products, quotes and orders.")

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SalesSettings:
    """``[plugins.sales]`` in plugins.toml."""

    default_currency: str = "EUR"
    stale_after_days: int = 14  # an open deal with no activity for this long is flagged
    webform_min_seconds: int = 3  # faster than this, a web-form lead is a bot
    webform_max_per_hour: int = 20  # web-form leads accepted per IP address and hour
    webform_frame_ancestors: str = "*"  # sites allowed to embed the web-to-lead form
    bundle_orders: int = 100_000  # bundles are mined from this many latest orders
    bundle_min_orders: int = 3  # a bundle must appear in at least this many orders
    bundle_min_confidence: float = 0.2
    bundle_min_lift: float = 1.2
    bundle_refresh_minutes: int = 60  # re-mine after a new order at most this often; 0: CLI only
    document_max_mb: int = 20  # largest product document accepted
    target_period: str = "quarter"  # the period the forecast vs target widget shows

    def __post_init__(self) -> None:
        if len(self.default_currency) != 3 or not self.default_currency.isalpha():
            raise ValueError("default_currency must be an ISO 4217 code such as EUR")
        if self.stale_after_days < 1:
            raise ValueError("stale_after_days must be at least 1")
        if self.bundle_orders < 1 or self.bundle_min_orders < 1:
            raise ValueError("bundle_orders and bundle_min_orders must be at least 1")
        if self.target_period not in ("month", "quarter"):
            raise ValueError("target_period must be month or quarter")
        if self.document_max_mb < 1:
            raise ValueError("document_max_mb must be at least 1")


@hookimpl
def register_settings():
    return SalesSettings


@hookimpl
def register_piccolo_apps():
    from plugins.sales.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


@hookimpl
def register_routes():
    from plugins.sales import (
        api,
        catalog,
        controllers,
        deals_ui,
        orders_api,
        orders_web,
        pipelines_ui,
        targets,
    )

    return (controllers.ROUTES + api.ROUTES + targets.ROUTES + deals_ui.ROUTES
            + pipelines_ui.ROUTES + catalog.ROUTES + orders_web.ROUTES + orders_api.ROUTES
            + quote_and_deal_routes())


@hookimpl
def register_portal_routes():
    from plugins.sales import catalog, portal, quotes_portal

    return portal.ROUTES + catalog.PORTAL_ROUTES + quotes_portal.ROUTES


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    return {"plugins/sales": HERE / "static" / "sales"}


@hookimpl
def register_permissions():
    return [
        Permission("sales.lead.view", "See leads"),
        Permission("sales.lead.create", "Capture and import leads"),
        Permission("sales.lead.edit", "Change and convert leads"),
        Permission("sales.lead.assign", "Give leads to another representative"),
        Permission("sales.rule.manage", "Edit lead scoring and assignment rules", scoped=False),
        Permission("sales.opportunity.view", "See opportunities and the pipeline"),
        Permission("sales.opportunity.create", "Create opportunities"),
        Permission("sales.opportunity.edit", "Change opportunities and move them between stages"),
        Permission("sales.opportunity.export", "Export the forecast"),
        Permission("sales.pipeline.manage", "Create and edit pipelines and their stages",
                   scoped=False),
        Permission("sales.target.manage", "Set sales targets per period, representative and "
                   "team", scoped=False),
        Permission("sales.product.view", "See the product catalogue", scoped=False),
        Permission("sales.product.create", "Add products and prices", scoped=False),
        Permission("sales.product.edit", "Change products and prices", scoped=False),
        Permission("sales.quote.view", "See quotes"),
        Permission("sales.quote.create", "Write quotes"),
        Permission("sales.quote.edit", "Change, version and send quotes"),
        Permission("sales.order.view", "See orders, their shipments, returns and refunds"),
        Permission("sales.order.create", "Take orders for customers (telesales) and record "
                   "a customer's acceptance of a quote"),
        Permission("sales.order.edit", "Confirm, cancel and complete orders; record returns"),
        Permission("sales.order.fulfil", "Record shipments of orders"),
        Permission("sales.order.refund", "Record refunds against returns"),
        Permission("sales.call_list.view", "See telesales call lists"),
        Permission("sales.call_list.create", "Build call lists and log calls"),
        Permission("sales.portal.view", "Portal customers: see their quotes and orders, "
                   "accept or decline quotes"),
    ]


@hookimpl
def register_nav_items():
    return [
        NavItem("Leads", "/sales/leads", permission="sales.lead.view", order=20),
        NavItem("Pipeline", "/sales/board", permission="sales.opportunity.view", order=21),
        NavItem("Forecast", "/sales/forecast", permission="sales.opportunity.view", order=24),
        NavItem("Call lists", "/sales/calls", permission="sales.call_list.view", order=25),
        NavItem("Products", "/sales/products", permission="sales.product.view", order=22),
        NavItem("Quotes", "/sales/quotes", permission="sales.quote.view", order=23),
        NavItem("Orders", "/sales/orders", permission="sales.order.view", order=23),
    ]


@hookimpl
def dashboard_widgets():
    return [
        Widget("sales-my-leads", "New leads for you", url="/sales/widgets/my-leads",
               permission="sales.lead.view", order=20),
        # Two columns wide: four figures per row do not fit a third of a laptop screen.
        Widget("sales-pipeline", "Pipeline by stage", url="/sales/widgets/pipeline",
               permission="sales.opportunity.view", order=21, width=2),
        Widget("sales-win-rate", "Win rate (90 days)", url="/sales/widgets/win-rate",
               permission="sales.opportunity.view", order=22),
        Widget("sales-forecast-target", "Forecast vs target",
               url="/sales/widgets/forecast-target", permission="sales.opportunity.view",
               order=23, width=2),
    ]


@hookimpl
def customer_panels(customer, user):
    cid = customer["id"]
    panels = []
    if user.can("sales.opportunity.view"):
        panels.append(Panel("sales-opportunities", "Open opportunities",
                            url=f"/sales/panels/customer/{cid}/opportunities", order=30))
    if user.can("sales.order.view"):
        panels.append(Panel("sales-orders", "Orders", url=f"/sales/panels/customer/{cid}/orders",
                            order=32))
    if user.can("sales.quote.view"):
        panels.append(Panel("sales-quotes", "Quotes", url=f"/sales/panels/customer/{cid}/quotes",
                            order=31))
        panels.append(Panel("sales-suggestions", "Suggested products",
                            url=f"/sales/panels/customer/{cid}/suggestions", order=33))
    return panels


@hookimpl
def portal_home_cards():
    return [Panel("sales-open-quotes", "Quotes to review", url="/portal/sales/quotes/card",
                  order=20)]


@hookimpl
def register_portal_nav_items():
    return [NavItem("Products", "/portal/sales/products", order=19),
            NavItem("Quotes", "/portal/sales/quotes", order=20),
            NavItem("Orders", "/portal/sales/orders", order=21)]


@hookimpl
def register_search_providers():
    from plugins.sales import search

    return [
        SearchProvider("sales.product", "Products", search.products,
                       permission="sales.product.view", order=30),
        SearchProvider("sales.lead", "Leads", search.leads, permission="sales.lead.view",
                       order=31),
        SearchProvider("sales.opportunity", "Opportunities", search.opportunities,
                       permission="sales.opportunity.view", order=32),
    ]


@hookimpl
def register_events():
    return [
        EventType("sales.lead.assigned", "A lead was given to a representative "
                  "(payload: lead_id, owner_id, name, score).",
                  topic_label="A lead is given to me", label="Lead assigned", area="Sales"),
        EventType("sales.quote.requested", "A portal customer asked for a quote for lines a "
                  "plugin supplied; staff find it as an opportunity with a draft quote "
                  "(payload in docs/plugins/sales.md).", durable=True,
                  label="Quote requested in the customer portal", area="Sales"),
    ] + orders_events()


# What staff read where events are chosen (webhooks), in the lifecycle's order.
ORDER_EVENT_LABELS = {
    "sales.order.created": "Order placed",
    "sales.order.confirmed": "Order confirmed",
    "sales.order.fulfilled": "Shipment sent",
    "sales.order.completed": "Order completed",
    "sales.order.cancelled": "Order or order lines cancelled",
    "sales.order.returned": "Goods returned by the customer",
    "sales.order.refunded": "Refund paid",
    "sales.quote.accepted": "Quote accepted",
}


def orders_events():
    """The order lifecycle's durable events (payloads in docs/plugins/sales.md)."""
    from plugins.sales.orders import EVENTS

    return [EventType(name, description, durable=True, area="Sales",
                      label=ORDER_EVENT_LABELS.get(name, ""))
            for name, description in EVENTS.items()]


@hookimpl
def push_notifications(event):
    if event.name == "sales.lead.assigned" and event.payload.get("owner_id"):
        payload = event.payload
        return [PushMessage(
            user_id=payload["owner_id"], topic="sales.lead.assigned",
            title="New lead for you", body=f"{payload['name']} (score {payload['score']})",
            url=f"/sales/leads/{payload['lead_id']}",
        )]
    return None


@hookimpl
async def seed_demo_data(rapport, customers):
    from plugins.sales.demo import seed

    await seed(rapport, customers)


@hookimpl
@subscribes_to("core.interaction.created", "sales.order.created")
async def on_event(rapport, event):
    if event.name == "core.interaction.created" and event.payload.get("customer_id"):
        from plugins.sales.customers import note_activity

        await note_activity(event.payload["customer_id"])
    elif event.name == "sales.order.created":
        from plugins.sales.bundles import refresh_if_due

        await refresh_if_due(rapport)


@hookimpl
def register_jobs(rapport):
    from core.plugin import JobType
    from plugins.sales.bundles import REFRESH_JOB, refresh_job

    return [JobType(REFRESH_JOB, refresh_job, unique=True, max_attempts=3,
                    timeout_seconds=1800,
                    description="Find products bought together again after new orders "
                                "(at most every bundle_refresh_minutes)")]


@hookimpl
def register_commands(cli):
    import click

    @cli.group(name="sales", help="Sales plugin maintenance.")
    def sales_group() -> None:
        pass

    @sales_group.command(name="bundles", help="Mine 'bought together' bundles from the latest "
                         "orders now (also runs after new orders, at most hourly).")
    @click.pass_context
    def bundles_command(ctx) -> None:
        import asyncio

        from core import db
        from core.cli import get_rapport
        from plugins.sales import bundles

        rapport = get_rapport(ctx)

        async def work() -> dict:
            rapport.activate()
            await db.connect(rapport.engine, pool_size=2)
            try:
                await db.ensure_migrated(rapport.piccolo_apps())
                return await bundles.refresh(bundles.thresholds_of(rapport))
            finally:
                await db.disconnect(rapport.engine)

        result = asyncio.run(work())
        click.echo(f"{result['bundles']} bundles from {result['orders']} orders "
                   f"in {result['milliseconds']} ms")


@hookimpl
def record_actions(record_type, record):
    if record_type == "sales.order":
        from plugins.sales.orders_web import order_actions

        return order_actions(record)
    if record_type == "sales.quote":
        from plugins.sales.orders_web import quote_actions

        return quote_actions(record)
    if record_type != "customer":
        return None
    cid = record["id"]
    return [
        Action("New order", f"/sales/orders/new?customer={cid}",
               permission="sales.order.create", order=32),
        Action("New opportunity", f"/sales/opportunities/new?customer={cid}",
               permission="sales.opportunity.create", order=30),
        Action("New quote", f"/sales/quotes/new?customer={cid}",
               permission="sales.quote.create", order=31),
    ]


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from plugins.sales.customers import repoint

    await repoint(survivor_id, merged_id)


@hookimpl
async def privacy_export(customer_id):
    from plugins.sales.customers import export

    return await export(customer_id)


@hookimpl
async def privacy_erase(customer_id):
    from plugins.sales.customers import erase

    await erase(customer_id)


def quote_and_deal_routes():
    """Deals and quotes: their pages, the editor's fragments and the customer picker."""
    from plugins.sales import opportunities_web, quotes_web

    return opportunities_web.ROUTES + quotes_web.ROUTES


@hookimpl
def sales_read_api(rapport):
    from plugins.sales.public import SalesReadApi

    return SalesReadApi(rapport)
