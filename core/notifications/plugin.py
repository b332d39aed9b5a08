"""In-app notifications' hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.notifications import inbox
from core.notifications.piccolo_app import APP_CONFIG
from core.plugin import hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    from core.notifications.web import ROUTES

    return ROUTES


@hookimpl
async def startup(rapport):
    await inbox.start_purging(rapport)


@hookimpl
async def shutdown(rapport):
    await inbox.stop_purging(rapport)


@hookimpl
async def privacy_erase(rapport, customer_id):
    await inbox.erase_customer(customer_id)
