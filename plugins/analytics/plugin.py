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
async def seed_demo_data(rapport, customers):
    # Queued, not run here: the other plugins' demo orders may be seeded after this hook.
    # The worker of `rapport serve` (or `rapport worker`) computes the figures at once.
    from core import jobs

    await jobs.enqueue(rapport, "analytics.refresh", {})
