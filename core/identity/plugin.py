"""Identity's hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.identity import account, admin, api, password_reset
from core.identity.piccolo_app import APP_CONFIG
from core.identity.web import login, login_page, logout, verify, verify_page
from core.plugin import NavItem, Permission, hookimpl


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_routes():
    return [login_page, login, verify_page, verify, logout,
            *password_reset.ROUTES, *account.ROUTES, *api.ROUTES, *admin.ROUTES]


@hookimpl
def register_permissions():
    return [
        Permission("core.user.manage", "Create, change and deactivate staff users", scoped=False),
        Permission("core.role.manage", "Edit roles and the role-permission matrix", scoped=False),
    ]


@hookimpl
def register_nav_items():
    return [
        NavItem(label="Users & teams", href="/admin/users", permission="core.user.manage",
                order=800),
        NavItem(label="Roles & permissions", href="/admin/roles",
                permission="core.role.manage", order=810),
        NavItem(label="My account", href="/account", order=900, group="Account"),
    ]


@hookimpl
def register_commands(cli):
    from core.identity.commands import token, user

    cli.add_command(user)
    cli.add_command(token)


@hookimpl
async def seed_demo_data(rapport):
    from core.identity.demo import seed_demo_users

    await seed_demo_users(rapport)
