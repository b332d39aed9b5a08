"""Interactions' hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.interactions.piccolo_app import APP_CONFIG
from core.plugin import EventType, NavItem, Permission, hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_permissions():
    return [
        Permission("core.interaction.view", "See interactions (touch points) and follow-ups"),
        Permission("core.interaction.create", "Record interactions"),
        Permission("core.interaction.edit", "Change interactions and their follow-ups"),
        Permission("core.interaction.delete", "Delete interactions"),
        Permission("core.interaction.export", "Export interactions"),
    ]


@hookimpl
def register_events():
    return [
        EventType("core.interaction.created", "An interaction (touch point) was recorded",
                  label="Call, meeting or message logged", area="Interactions"),
        EventType("core.interaction.updated", "An interaction or its follow-up changed",
                  label="Logged interaction changed", area="Interactions"),
        EventType("core.followup.completed", "A follow-up was marked done",
                  label="Follow-up done", area="Interactions"),
        # Durable: written in the transaction of the change, so what depends on a follow-up
        # (its reminder) cannot miss one, even across a crash right after the commit.
        EventType("core.followup.changed", "An interaction's follow-up was set, moved, given "
                  "to someone else, done, reopened or cleared", durable=True,
                  label="Follow-up set or changed", area="Interactions"),
    ]


@hookimpl
def row_filter(rapport, user, permission, table, scope):
    """Staff reach an interaction through its customer (as far as they reach customers at
    that scope), or because they recorded it or must follow it up."""
    from core.interactions.tables import Interaction

    if table is not Interaction or scope not in ("own", "team"):
        return None
    from core.interactions.access import interaction_filter

    return interaction_filter(rapport, user, scope)


@hookimpl
def register_nav_items():
    return [
        NavItem(label="My day", href="/my-day", permission="core.interaction.view", order=5),
        NavItem(label="Interactions", href="/interactions", permission="core.interaction.view",
                order=30),
        NavItem(label="Contact policy", href="/admin/contact-policy",
                permission="core.settings.manage", order=915),
        NavItem(label="E-mail templates", href="/admin/email-templates",
                permission="core.settings.manage", order=916),
    ]


@hookimpl
def register_routes(rapport):
    from core.interactions import api, email_web, web

    return [*web.ROUTES, *api.ROUTES, *email_web.ROUTES]


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from core.interactions.privacy import repoint

    await repoint(survivor_id, merged_id)


@hookimpl
async def privacy_export(customer_id):
    from core.interactions.privacy import export

    return await export(customer_id)


@hookimpl
async def privacy_erase(customer_id):
    from core.interactions.privacy import erase

    await erase(customer_id)


@hookimpl
async def seed_demo_data(rapport, customers):
    from core.interactions.demo import seed_demo_interactions

    await seed_demo_interactions(rapport, customers)
