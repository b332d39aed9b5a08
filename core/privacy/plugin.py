"""Privacy's hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.plugin import Action, Permission, hookimpl
from core.privacy.web import ROUTES


@hookimpl
def register_routes():
    return list(ROUTES)


@hookimpl
def register_permissions():
    return [
        Permission("core.privacy.export",
                   "Download everything held about a customer (privacy export)"),
        Permission("core.privacy.erase", "Erase a customer's personal data (cannot be undone)"),
    ]


@hookimpl
def record_actions(record_type, record):
    if record_type != "customer":
        return None
    return [Action(label="Privacy and consent", href=f"/customers/{record['id']}/privacy",
                   permission="core.privacy.export", order=900)]
