"""Campaigns: segments built from rules (AND/OR groups over customer fields, tags, lifecycle
stage, owner and team, touch points and consent, plus criteria other plugins contribute),
e-mail campaigns with sandboxed personalisation sent as durable jobs, one-click unsubscribe,
open and click tracking recorded as touch points, and a report per campaign.

Campaigns never imports another plugin: other plugins add segment criteria through its own
hook ``campaigns_segment_criteria`` (hookspecs.py, implemented with optionalhook=True). Every
recipient passes core's contact-policy check at send time.
"""

from __future__ import annotations

from pathlib import Path

from core.plugin import JobType, NavItem, Panel, Permission, Plugin, hookimpl
from plugins.campaigns import hookspecs  # noqa: F401 (the loader adds these hook specs)

plugin = Plugin(id="campaigns", name="Campaigns",  version="0.1.0",
                description="Segments, e-mail campaigns, unsubscribe, tracking and reports.")

HERE = Path(__file__).resolve().parent


@hookimpl
def register_piccolo_apps():
    from plugins.campaigns.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


@hookimpl
def register_routes(rapport):
    from plugins.campaigns import campaigns_api, campaigns_web, segments_web, tracking_web

    return (segments_web.ROUTES + campaigns_web.ROUTES + tracking_web.ROUTES
            + campaigns_api.ROUTES)


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    return {"plugins/campaigns": HERE / "static"}


@hookimpl
def register_permissions():
    return [
        Permission("campaigns.segment.view", "See segments, their size and members (only "
                   "customers the user may see)", scoped=False),
        Permission("campaigns.segment.manage", "Create and change segments", scoped=False),
        Permission("campaigns.campaign.view", "See campaigns and their reports", scoped=False),
        Permission("campaigns.campaign.manage", "Create and edit campaign e-mails",
                   scoped=False),
        Permission("campaigns.campaign.send", "Send a campaign to its segment", scoped=False),
    ]


@hookimpl
def customer_panels(customer, user):
    if not user.can("campaigns.campaign.view"):
        return None
    return [Panel("campaigns", "Campaigns", url=f"/campaigns/panels/customer/{customer['id']}",
                  order=55)]


@hookimpl
def register_nav_items():
    return [
        NavItem("Campaigns", "/campaigns", permission="campaigns.campaign.view", order=70,
                group="Marketing"),
        NavItem("Segments", "/campaigns/segments", permission="campaigns.segment.view",
                order=71, group="Marketing"),
    ]


@hookimpl
def register_jobs(rapport):
    from plugins.campaigns import sending

    return [JobType("campaigns.send", sending.run_send_job, max_attempts=5,
                    timeout_seconds=3600.0,
                    description="Sends a campaign's queued e-mails, resuming where it stopped")]


@hookimpl
async def seed_demo_data(rapport, customers):
    from plugins.campaigns.demo import seed

    await seed(rapport, customers)


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from plugins.campaigns.customers import merge

    await merge(survivor_id, merged_id)


@hookimpl
async def privacy_export(customer_id):
    from plugins.campaigns.customers import export

    return await export(customer_id)


@hookimpl
async def privacy_erase(rapport, customer_id):
    from plugins.campaigns.customers import erase

    await erase(customer_id)
