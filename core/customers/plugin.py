"""Customers' hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.customers.piccolo_app import APP_CONFIG
from core.plugin import Permission, hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_permissions():
    return [
        Permission("core.customer.view", "See customers (accounts and contacts)"),
        Permission("core.customer.create", "Create customers"),
        Permission("core.customer.edit", "Change customers"),
        Permission("core.customer.delete", "Delete customers"),
        Permission("core.customer.export", "Export customers (CSV, vCard)"),
        Permission("core.customer.assign", "Change a customer's owner or team"),
    ]
