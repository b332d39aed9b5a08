"""The field app's hook implementations (core module, always enabled): installable app,
field views, offline sync and Web Push."""

from __future__ import annotations

from core.plugin import NavItem, Permission, hookimpl
from pwa import field, push, push_web, web, worker
from pwa.piccolo_app import APP_CONFIG


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    return web.ROUTES + field.ROUTES + push_web.ROUTES


@hookimpl
def register_static_dirs():
    return {"pwa": web.STATIC / "pwa"}


@hookimpl
def register_permissions():
    return [
        Permission("core.field.view", "Use the field app (agenda, my customers, visit reports)",
                   scoped=False),
    ]


@hookimpl
def register_nav_items():
    return [NavItem(label="Field app", href="/field/", permission="core.field.view", order=5)]


@hookimpl
async def on_event(rapport, event):
    # Plugins turn events into notifications; core queues them in the durable outbox.
    messages = await rapport.acollect("push_notifications", rapport=rapport, event=event)
    await push.enqueue(rapport, messages)


@hookimpl
async def startup(rapport):
    await worker.start(rapport)


@hookimpl
async def shutdown(rapport):
    await worker.stop(rapport)
