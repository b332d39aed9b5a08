"""Staff pages of the portal: inviting a contact, their portal access, and the admin settings
(customer-facing branding, what the portal history shows)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from core import audit
from core.audit import client_ip
from core.customers.tables import CHANNELS, Customer
from core.mail import send_mail, sends_mail
from core.permissions import current_actor, scoped
from core.portal import settings as portal_settings
from core.portal.identities import PortalError, invite, visits_by_month
from core.portal.pages import FormData
from core.portal.tables import PortalIdentity, PortalSession

INVITE = "core.portal.invite"


async def _customer(request: Request, customer_id: int) -> dict[str, Any]:
    query = Customer.select(Customer.id, Customer.name, Customer.kind, Customer.primary_email,
                            Customer.erased_at).where(Customer.id == customer_id)
    row = await scoped(query, request.app.state.rapport, current_actor(request), INVITE,
                       Customer).first().run()
    if row is None:
        raise NotFoundException("no such customer")
    return row


async def _access_page(request: Request, customer: dict[str, Any], *, link: str = "",
                       errors: dict[str, str] | None = None, email: str | None = None,
                       flash: str = "", emailed: bool = True,
                       status_code: int = 200) -> Template:
    identity = await PortalIdentity.select(
        PortalIdentity.id, PortalIdentity.email, PortalIdentity.invited_at,
        PortalIdentity.invitation_expires_at, PortalIdentity.activated_at,
        PortalIdentity.last_seen_at, PortalIdentity.is_active,
    ).where(PortalIdentity.customer == customer["id"]).first().run()
    visits = await visits_by_month(identity["id"]) if identity else []
    return Template("portal/staff_access.html", status_code=status_code, context={
        "customer": customer, "identity": identity, "visits": visits, "link": link,
        "errors": errors or {}, "flash": flash, "emailed": emailed,
        "email": email if email is not None else (
            identity["email"] if identity else customer["primary_email"]),
    })


@get("/customers/{customer_id:int}/portal", name="portal-access", opt={"permission": INVITE})
async def portal_access(request: Request, customer_id: FromPath[int]) -> Template:
    customer = await _customer(request, customer_id)
    flash = "Portal access switched off." if request.query_params.get("done") == "off" else ""
    return await _access_page(request, customer, flash=flash)


@post("/customers/{customer_id:int}/portal/invite", name="portal-invite",
      opt={"permission": INVITE})
async def portal_invite(request: Request, customer_id: FromPath[int], data: FormData
                        ) -> Template:
    customer = await _customer(request, customer_id)
    if customer["kind"] != "contact" or customer["erased_at"] is not None:
        return await _access_page(request, customer, status_code=400, errors={
            "email": "Only contacts (people) whose data is not erased can use the portal."})
    rapport = request.app.state.rapport
    email = data.get("email", "")
    try:
        _, token = await invite(rapport, current_actor(request), customer_id, email,
                                ip=client_ip(request))
    except PortalError as exc:
        return await _access_page(request, customer, errors={exc.field: exc.message},
                                  email=email, status_code=400)
    link = f"{rapport.settings.base_url}/portal/accept/{token}"
    await send_mail(
        rapport, email.strip().lower(), f"Your access to {rapport.settings.instance_name}",
        f"Hello,\n\nYou are invited to our customer portal, where you can see your history, "
        f"change your details and preferences, and download your data.\n\n"
        f"Choose your password here (the link works for 7 days, once):\n{link}\n",
    )
    # The link is shown once, here, and never stored: staff can pass it on by other means.
    if not sends_mail():  # the e-mail only reached the outbox folder: say so, never "sent"
        return await _access_page(request, customer, link=link, emailed=False, flash=(
            "Invitation ready, not e-mailed: no mail server is set up, so the message was "
            "saved in the outbox folder (data/outbox). Pass the link below on yourself."))
    return await _access_page(request, customer, link=link, emailed=True,
                              flash="Invitation sent.")


@post("/customers/{customer_id:int}/portal/deactivate", name="portal-deactivate",
      opt={"permission": INVITE}, status_code=303)
async def portal_deactivate(request: Request, customer_id: FromPath[int]) -> Response:
    await _customer(request, customer_id)
    rows = await PortalIdentity.update({PortalIdentity.is_active: False,
                                        PortalIdentity.invitation_hash: None}).where(
        PortalIdentity.customer == customer_id).returning(PortalIdentity.id).run()
    for row in rows:
        await PortalSession.delete().where(PortalSession.identity == row["id"]).run()
        await audit.record(current_actor(request), "portal_deactivate",
                           PortalIdentity._meta.tablename, row["id"], ip=client_ip(request))
    return Redirect(f"/customers/{customer_id}/portal?done=off", status_code=303)


# --- admin settings --------------------------------------------------------------------------


async def _branding_page(request: Request, *, values: dict[str, str] | None = None,
                         errors: dict[str, str] | None = None, flash: str = "",
                         status_code: int = 200) -> Template:
    rapport = request.app.state.rapport
    if values is None:
        stored = await portal_settings.read(portal_settings.BRANDING_KEYS)
        values = {k.split(".", 1)[1]: str(stored.get(k) or "") for k in portal_settings.BRANDING_KEYS}
    return Template("portal/admin_branding.html", status_code=status_code, context={
        "values": values, "errors": errors or {}, "flash": flash,
        "default_name": rapport.settings.instance_name,
        "channels": CHANNELS, "history_channels": await portal_settings.history_channels(),
    })


@get("/admin/branding", name="portal-branding", opt={"permission": "core.settings.manage"})
async def branding_page(request: Request) -> Template:
    flash = "Saved." if request.query_params.get("done") else ""
    return await _branding_page(request, flash=flash)


@post("/admin/branding", opt={"permission": "core.settings.manage"}, status_code=303)
async def branding_save(request: Request, data: FormData) -> Response:
    values = {k: data.get(k, "").strip() for k in ("name", "colour", "logo_url")}
    errors = portal_settings.branding_problems(**values)
    if errors:
        return await _branding_page(request, values=values, errors=errors, status_code=400)
    before = await portal_settings.read(portal_settings.BRANDING_KEYS)
    after = {f"branding.{k}": v for k, v in values.items()}
    await portal_settings.write(after)
    await audit.record(current_actor(request), "update", "core_instance_setting", "branding",
                       audit.diff(before, after), ip=client_ip(request))
    return Redirect("/admin/branding?done=1", status_code=303)


@post("/admin/portal/history", opt={"permission": "core.settings.manage"}, status_code=303)
async def history_channels_save(request: Request) -> Response:
    form = await request.form()
    chosen = [c for c in form.getall("channel", []) if c in CHANNELS] if hasattr(
        form, "getall") else []
    before = list(await portal_settings.history_channels())
    await portal_settings.write({portal_settings.HISTORY_CHANNELS_KEY: chosen})
    await audit.record(current_actor(request), "update", "core_instance_setting",
                       portal_settings.HISTORY_CHANNELS_KEY,
                       audit.diff({"channels": before}, {"channels": chosen}),
                       ip=client_ip(request))
    return Redirect("/admin/branding?done=1", status_code=303)


ROUTES = [portal_access, portal_invite, portal_deactivate, branding_page, branding_save,
          history_channels_save]
