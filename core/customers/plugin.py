"""Customers' hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.customers.piccolo_app import APP_CONFIG
from core.plugin import EventType, NavItem, Permission, hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_permissions():
    return [
        Permission("core.customer.view", "See customers (accounts and contacts)"),
        Permission("core.customer.find", "Find any customer to open a case or take a call "
                   "(name, e-mail, phone and city only; the record needs view)"),
        Permission("core.customer.create", "Create customers"),
        Permission("core.customer.edit", "Change customers"),
        Permission("core.customer.delete", "Delete customers"),
        Permission("core.customer.export", "Export customers (CSV, vCard)"),
        Permission("core.customer.assign", "Change a customer's owner or team"),
    ]


@hookimpl
def register_events():
    return [
        EventType("core.customer.created", "A customer (account or contact) was created",
                  label="Customer added", area="Customers"),
        EventType("core.customer.updated", "A customer was changed",
                  label="Customer changed", area="Customers"),
        EventType("core.customer.deleted", "A customer was deleted",
                  durable=True, label="Customer deleted", area="Customers"),
        EventType("core.customer.merged", "Two customers were merged into one",
                  durable=True, label="Two customers merged into one", area="Customers"),
        EventType("core.customer.bulk_changed", "Customers were changed together from a list",
                  label="Customers changed together from a list", area="Customers"),
        EventType("core.customer.imported", "Customers were imported from a file",
                  label="Customers imported from a file", area="Customers"),
        EventType("core.customer.consent_changed", "A customer's consent or contact "
                  "preferences changed (payload in docs/events.md)", durable=True,
                  label="Consent or contact preferences changed", area="Customers"),
    ]


@hookimpl
def register_routes():
    from core.customers.api import ROUTES as API_ROUTES
    from core.customers.finding_web import ROUTES as CARD_ROUTES
    from core.customers.web import ROUTES

    return [*ROUTES, *API_ROUTES, *CARD_ROUTES]


@hookimpl
def register_nav_items():
    return [
        NavItem(label="Accounts", href="/accounts", permission="core.customer.view", order=20,
                group="Customers"),
        NavItem(label="Contacts", href="/contacts", permission="core.customer.view", order=21,
                group="Customers"),
        NavItem(label="Custom fields", href="/admin/custom-fields",
                permission="core.settings.manage", order=95),
    ]


@hookimpl
async def seed_demo_data(rapport, customers):
    from core.customers.demo import seed_customers

    await seed_customers(customers, progress=True)
