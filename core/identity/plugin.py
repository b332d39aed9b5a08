"""Identity's hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.identity.piccolo_app import APP_CONFIG
from core.identity.web import login, login_page, logout
from core.plugin import Permission, hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    return [login_page, login, logout]


@hookimpl
def register_permissions():
    return [
        Permission("core.user.manage", "Create, change and deactivate staff users", scoped=False),
        Permission("core.role.manage", "Edit roles and the role-permission matrix", scoped=False),
    ]


@hookimpl
async def seed_demo_data(rapport):
    from core.identity.demo import seed_demo_users

    await seed_demo_users(rapport)
