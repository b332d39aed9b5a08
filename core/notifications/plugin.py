"""In-app notifications' hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.notifications import inbox
from core.notifications.piccolo_app import APP_CONFIG
from core.plugin import JobType, hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    from core.notifications.web import ROUTES

    return ROUTES


@hookimpl
def register_jobs(rapport):
    return [JobType("core.notifications.purge", inbox.purge_job,
                    schedule=inbox.PURGE_EVERY_SECONDS, unique=True, timeout_seconds=600,
                    description="Delete read notifications older than 90 days (hourly)")]


@hookimpl
async def privacy_erase(rapport, customer_id):
    await inbox.erase_customer(customer_id)
