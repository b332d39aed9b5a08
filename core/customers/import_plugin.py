"""Hook implementations for bringing customer data in and keeping it clean: CSV and vCard
import and export, likely duplicates and merging (core module, always enabled)."""

from __future__ import annotations

from core.plugin import NavItem, hookimpl


@hookimpl
def register_routes():
    from core.customers.import_web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav_items():
    return [NavItem(label="Duplicates", href="/customers/duplicates",
                    permission="core.customer.edit", order=40)]
