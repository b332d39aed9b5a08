"""What every portal page gets: the brand, the navigation and the signed-in customer."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from core.customers.tables import Customer
from core.permissions import current_actor
from core.plugin import NavItem
from core.portal import settings as portal_settings

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


# Core's own portal pages. They reach the navigation through the same hook as every plugin's
# (core.portal.plugin), so a page that builds its navigation from the hook shows them too.
CORE_NAV = (
    NavItem(label="Home", href="/portal/", order=0),
    NavItem(label="History", href="/portal/history", order=10),
    NavItem(label="Profile", href="/portal/profile", order=20),
    NavItem(label="Preferences", href="/portal/preferences", order=30),
    NavItem(label="My data", href="/portal/data", order=90),
)


async def signed_in_customer(request: Request) -> dict[str, Any] | None:
    """The customer row of the signed-in portal actor (its own row, by the row filter)."""
    actor = current_actor(request)
    if actor.kind != "portal":
        return None
    if "portal_customer" not in request.scope:
        request.scope["portal_customer"] = await Customer.select().where(
            Customer.id == actor.customer_id).first().run()
    return request.scope["portal_customer"]


def portal_nav(request: Request, customer: dict[str, Any]) -> list[NavItem]:
    """Every portal page's navigation: core's pages and each plugin's, once each, in order."""
    rapport = request.app.state.rapport
    items = rapport.collect("register_portal_nav_items", rapport=rapport, customer=customer)
    unique = {i.href: i for i in reversed(items) if i.href.startswith("/portal/")}
    return sorted(unique.values(), key=lambda i: (i.order, i.label))


async def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
                 status_code: int = 200) -> Template:
    rapport = request.app.state.rapport
    customer = await signed_in_customer(request)
    page = {
        "brand": await portal_settings.branding(rapport.settings.instance_name),
        "customer": customer,
        "portal_nav": portal_nav(request, customer) if customer else [],
    }
    page.update(context or {})
    return Template(template, context=page, status_code=status_code)
