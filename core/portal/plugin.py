"""The portal's hook implementations (core module, always enabled)."""

from __future__ import annotations

from core.plugin import Action, NavItem, Permission, hookimpl
from core.portal.piccolo_app import APP_CONFIG


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
def register_permissions():
    return [
        # Portal permissions are named <id>.portal.<verb>; every portal customer holds them,
        # limited to their own rows (see core.portal.identities.portal_grants).
        Permission("core.portal.use", "Portal customers: use the portal (own records only)"),
        Permission("core.portal.invite", "Invite contacts to the portal and switch it off"),
    ]


@hookimpl
def register_routes():
    from core.portal.staff import ROUTES

    return list(ROUTES)


@hookimpl
def register_portal_routes():
    from core.portal.auth_web import ROUTES as SIGN_IN
    from core.portal.web import ROUTES as PAGES

    return list(SIGN_IN) + list(PAGES)


@hookimpl
def register_nav_items():
    return [NavItem(label="Branding and portal", href="/admin/branding",
                    permission="core.settings.manage", order=910)]


@hookimpl
def register_portal_nav_items():
    from core.portal.pages import CORE_NAV

    return list(CORE_NAV)


@hookimpl
def record_actions(record_type, record):
    if record_type != "customer" or record.get("kind", "contact") != "contact":
        return None
    return [Action(label="Invite to the portal", href=f"/customers/{record['id']}/portal",
                   permission="core.portal.invite", order=800)]


@hookimpl
def row_filter(user, table, scope):
    """A portal customer reaches their own customer row and their account's."""
    from core.customers.tables import Customer

    if scope != "customer" or table is not Customer or user.customer_id is None:
        return None
    clause = Customer.id == user.customer_id
    if user.account_id is not None:
        clause = clause | (Customer.id == user.account_id)
    return clause


@hookimpl
async def privacy_export(customer_id):
    from core.portal.identities import visits_by_month
    from core.portal.tables import PortalIdentity

    identity = await PortalIdentity.select(
        PortalIdentity.id, PortalIdentity.email, PortalIdentity.invited_at,
        PortalIdentity.activated_at, PortalIdentity.last_seen_at, PortalIdentity.is_active,
        PortalIdentity.created_at,
    ).where(PortalIdentity.customer == customer_id).first().run()
    if identity is None:
        return {}
    identity["visits_by_month"] = await visits_by_month(identity["id"], months=1200)
    return {"core_portal_identity": identity}


@hookimpl
async def privacy_erase(customer_id):
    from core import audit
    from core.portal.tables import PortalIdentity, PortalLoginAttempt

    rows = await PortalIdentity.select(PortalIdentity.id, PortalIdentity.email).where(
        PortalIdentity.customer == customer_id).run()
    ids = [r["id"] for r in rows]
    if ids:
        await audit.redact(PortalIdentity._meta.tablename, ids, portal_actor_ids=ids)
        await PortalLoginAttempt.delete().where(
            PortalLoginAttempt.email.is_in([r["email"] for r in rows])).run()
        # Sessions, sign-in links and visit counts go with it (ON DELETE CASCADE).
        await PortalIdentity.delete().where(PortalIdentity.id.is_in(ids)).run()
