"""The customer's portal pages: home, history, profile, preferences and their data.

Every query goes through :func:`core.permissions.scoped` with the portal actor, whose row
filter is "this customer's rows only"; a record id of another customer answers 404. What the
customer changes is audited (through :mod:`core.records`) and recorded as a ``portal`` touch
point in their timeline.
"""

from __future__ import annotations

import inspect
import logging
from datetime import datetime
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from core import audit, records
from core.audit import client_ip
from core.customers.service import announce_consent_changed, normalise_phone, phone_region
from core.customers.tables import Customer, CustomerAddress, CustomerEmail, CustomerPhone
from core.permissions import current_actor, scoped
from core.portal import settings as portal_settings
from core.portal.pages import FormData, render, signed_in_customer
from core.privacy.service import PrivacyError, current_consents, export_customer, record_consent
from core.privacy.web import export_response

log = logging.getLogger("rapport.portal")

USE = "core.portal.use"
OPEN = {"permission": USE}
CONTACT_CHANNELS = ("email", "call", "sms", "letter", "push")
CONSENT_PURPOSES = {"marketing": "Offers and news about products",
                    "newsletter": "The newsletter"}
HISTORY_PAGE = 25

# Sub-records a customer manages on their profile: table, editable fields, required field.
SUBRECORDS: dict[str, tuple[type, tuple[str, ...], str]] = {
    "emails": (CustomerEmail, ("email", "label"), "email"),
    "phones": (CustomerPhone, ("phone", "label"), "phone"),
    "addresses": (CustomerAddress, ("label", "street", "city", "region", "postcode", "country"),
                  "street"),
}


async def touch_point(request: Request, subject: str, notes: str = "") -> None:
    """Record what the customer did as a ``portal`` interaction in their timeline."""
    try:
        from core.interactions.service import record_interaction
    except ImportError:  # interactions not installed in this build: the audit log still has it
        return
    actor = current_actor(request)
    wanted = {"rapport": request.app.state.rapport, "actor": actor,
              "customer_id": actor.customer_id, "customer": actor.customer_id,
              "channel": "portal", "direction": "inbound", "subject": subject, "notes": notes,
              "visible_in_portal": True, "ip": client_ip(request)}
    try:
        parameters = inspect.signature(record_interaction).parameters
        result = record_interaction(**{k: v for k, v in wanted.items() if k in parameters})
        if inspect.isawaitable(result):
            await result
    except Exception:
        # A touch point must never undo the customer's change; the change itself is audited.
        log.exception("could not record the portal touch point %r", subject)


def _interaction_table(request: Request):
    """The interactions table, when this instance has that core area (it is migrated)."""
    try:
        from core.interactions.tables import Interaction
    except ImportError:
        return None
    rapport = request.app.state.rapport
    known = rapport.__dict__.setdefault(
        "_portal_tables", {t for app in rapport.piccolo_apps() for t in app.table_classes})
    return Interaction if Interaction in known else None


async def visible_history(request: Request, *, limit: int, before: str = "") -> list[dict]:
    """Interactions the customer may see: channels staff chose for the portal, or marked
    visible one by one; newest first, keyset-paged by ``occurred_at|id``."""
    table = _interaction_table(request)
    if table is None:
        return []
    columns = {c._meta.name for c in table._meta.columns}
    visible = table.channel.is_in(list(await portal_settings.history_channels()) or ["portal"])
    if "visible_in_portal" in columns:
        visible = visible | (table.visible_in_portal == True)  # noqa: E712
    query = table.select(table.id, table.channel, table.direction, table.subject,
                         table.occurred_at).where(visible)
    if before and "|" in before:
        stamp, _, last_id = before.partition("|")
        try:
            moment, last = datetime.fromisoformat(stamp), int(last_id)
        except ValueError:
            moment, last = None, None
        if moment is not None:
            query = query.where((table.occurred_at < moment)
                                | ((table.occurred_at == moment) & (table.id < last)))
    query = query.order_by(table.occurred_at, ascending=False).order_by(
        table.id, ascending=False).limit(limit)
    return await scoped(query, request.app.state.rapport, current_actor(request), USE,
                        table).run()


# --- home and history ------------------------------------------------------------------------


@get("/", name="portal-home", opt=OPEN)
async def portal_home(request: Request) -> Template:
    rapport = request.app.state.rapport
    customer = await signed_in_customer(request)
    cards = await rapport.acollect("portal_home_cards", rapport=rapport, customer=customer)
    cards.sort(key=lambda c: (c.order, c.title))
    return await render(request, "portal/home.html", {
        "cards": cards, "recent": await visible_history(request, limit=5),
    })


@get("/history", name="portal-history", opt=OPEN)
async def portal_history(request: Request) -> Template:
    rapport = request.app.state.rapport
    customer = await signed_in_customer(request)
    rows = await visible_history(request, limit=HISTORY_PAGE + 1,
                                 before=request.query_params.get("before", ""))
    more = len(rows) > HISTORY_PAGE
    rows = rows[:HISTORY_PAGE]
    panels = await rapport.acollect("portal_history_panels", rapport=rapport, customer=customer)
    panels.sort(key=lambda p: (p.order, p.title))
    next_cursor = (f"{rows[-1]['occurred_at'].isoformat()}|{rows[-1]['id']}"
                   if more and rows else "")
    return await render(request, "portal/history.html", {
        "interactions": rows, "next_cursor": next_cursor, "panels": panels,
        "available": _interaction_table(request) is not None,
    })


# --- profile ---------------------------------------------------------------------------------


async def _own(request: Request, table: type, record_id: int, *fields: str) -> dict[str, Any]:
    query = table.select(*fields or ()).where(table._meta.primary_key == record_id)
    row = await scoped(query, request.app.state.rapport, current_actor(request), USE,
                       table).first().run()
    if row is None:
        raise NotFoundException("not found")
    return row


async def _profile_page(request: Request, *, errors: dict[str, str] | None = None,
                        form: dict[str, str] | None = None, section: str = "",
                        flash: str = "", status_code: int = 200) -> Template:
    rapport, actor = request.app.state.rapport, current_actor(request)
    lists = {}
    for kind, (table, _, _) in SUBRECORDS.items():
        lists[kind] = await scoped(table.select().order_by(table._meta.primary_key), rapport,
                                   actor, USE, table).run()
    return await render(request, "portal/profile.html", {
        **lists, "errors": errors or {}, "form": form or {}, "section": section, "flash": flash,
    }, status_code=status_code)


@get("/profile", name="portal-profile", opt=OPEN)
async def portal_profile(request: Request) -> Template:
    flash = "Saved." if request.query_params.get("done") else ""
    return await _profile_page(request, flash=flash)


@post("/profile", opt=OPEN, status_code=303)
async def portal_profile_save(request: Request, data: FormData) -> Response:
    actor = current_actor(request)
    first, last = data.get("first_name", "").strip(), data.get("last_name", "").strip()
    errors = {}
    if not (first or last):
        errors["first_name"] = "Enter your name."
    if len(first) > 150:
        errors["first_name"] = "Keep it under 150 characters."
    if len(last) > 150:
        errors["last_name"] = "Keep it under 150 characters."
    if errors:
        return await _profile_page(request, errors=errors, form=data, section="name",
                                   status_code=400)
    before = await _own(request, Customer, actor.customer_id, Customer.name)
    after = await records.update(actor, Customer, actor.customer_id, {
        "first_name": first, "last_name": last, "name": f"{first} {last}".strip(),
    }, ip=client_ip(request), summary="changed in the portal")
    if after["name"] != before["name"]:
        await touch_point(request, "Name changed in the portal")
    return Redirect("/portal/profile?done=1", status_code=303)


def _subrecord_problems(kind: str, values: dict[str, str], region: str | None = None
                        ) -> dict[str, str]:
    errors = {}
    if kind == "emails":
        email = values["email"]
        if "@" not in email or " " in email or len(email) > 254:
            errors["email"] = "Enter an email address like name@example.com."
    elif kind == "phones":
        # Stored in E.164 like every other number, read in the customer's country.
        try:
            values["phone"] = normalise_phone(values["phone"], region)
        except ValueError as exc:
            errors["phone"] = f"{exc}."
    else:
        if not (values["street"] or values["city"]):
            errors["street"] = "Enter at least the street or the town."
        if values["country"] and (len(values["country"]) != 2 or not values["country"].isalpha()):
            errors["country"] = "Use the two-letter country code, like GB or FR."
        values["country"] = values["country"].upper()
    for field in ("label",):
        if len(values.get(field, "")) > 40:
            errors[field] = "Keep it under 40 characters."
    return errors


@post("/profile/{kind:str}/add", opt=OPEN, status_code=303)
async def portal_subrecord_add(request: Request, kind: FromPath[str], data: FormData
                               ) -> Response:
    if kind not in SUBRECORDS:
        raise NotFoundException("not found")
    table, fields, _ = SUBRECORDS[kind]
    values = {f: data.get(f, "").strip() for f in fields}
    if kind == "emails":
        values["email"] = values["email"].lower()
    values["label"] = values.get("label") or ("home" if kind != "addresses" else "main")
    region = None
    if kind == "phones":
        countries = await CustomerAddress.select(CustomerAddress.country).where(
            CustomerAddress.customer == current_actor(request).customer_id,
            CustomerAddress.country != "").order_by(CustomerAddress.id).limit(3).run()
        region = phone_region(*[c["country"] for c in countries])
    errors = _subrecord_problems(kind, values, region)
    if errors:
        return await _profile_page(request, errors=errors, form=data, section=kind,
                                   status_code=400)
    actor = current_actor(request)
    await records.create(actor, table, {"customer": actor.customer_id, **values},
                         ip=client_ip(request), summary="added in the portal")
    await touch_point(request, f"{kind[:-1].capitalize()} added in the portal")
    return Redirect("/portal/profile?done=1", status_code=303)


@post("/profile/{kind:str}/{record_id:int}/delete", opt=OPEN, status_code=303)
async def portal_subrecord_delete(request: Request, kind: FromPath[str],
                                  record_id: FromPath[int]) -> Response:
    if kind not in SUBRECORDS:
        raise NotFoundException("not found")
    table = SUBRECORDS[kind][0]
    await _own(request, table, record_id, table._meta.primary_key)
    await records.delete(current_actor(request), table, record_id, ip=client_ip(request),
                         summary="removed in the portal")
    await touch_point(request, f"{kind[:-1].capitalize()} removed in the portal")
    return Redirect("/portal/profile?done=1", status_code=303)


# --- communication preferences ---------------------------------------------------------------


async def _preferences_page(request: Request, *, errors: dict[str, str] | None = None,
                            flash: str = "", status_code: int = 200) -> Template:
    actor = current_actor(request)
    row = await _own(request, Customer, actor.customer_id, Customer.preferred_channel,
                     Customer.opted_out_channels, Customer.do_not_contact)
    consents = await current_consents(actor.customer_id)
    return await render(request, "portal/preferences.html", {
        "channels": CONTACT_CHANNELS,
        "preferred": row["preferred_channel"],
        "opted_out": set(filter(None, row["opted_out_channels"].split(","))),
        "do_not_contact": row["do_not_contact"],
        "purposes": CONSENT_PURPOSES,
        "consents": {p: consents.get((p, "")) for p in CONSENT_PURPOSES},
        "errors": errors or {}, "flash": flash,
    }, status_code=status_code)


@get("/preferences", name="portal-preferences", opt=OPEN)
async def portal_preferences(request: Request) -> Template:
    flash = "Your preferences are saved and apply from now on." if request.query_params.get(
        "done") else ""
    return await _preferences_page(request, flash=flash)


@post("/preferences", opt=OPEN, status_code=303)
async def portal_preferences_save(request: Request) -> Response:
    form = await request.form()
    actor = current_actor(request)
    preferred = (form.get("preferred_channel") or "").strip()
    opted_out = sorted({c for c in form.getall("opt_out", []) if c in CONTACT_CHANNELS})
    if preferred and preferred not in CONTACT_CHANNELS:
        return await _preferences_page(request, status_code=400, errors={
            "preferred_channel": "Choose one of the channels listed."})
    if preferred and preferred in opted_out:
        return await _preferences_page(request, status_code=400, errors={
            "preferred_channel": "You cannot prefer a channel you opted out of."})
    before = await _own(request, Customer, actor.customer_id, Customer.preferred_channel,
                        Customer.opted_out_channels, Customer.do_not_contact)
    # Keep opt-outs of channels this form does not offer (set by staff, e.g. "social").
    kept = [c for c in filter(None, before["opted_out_channels"].split(","))
            if c not in CONTACT_CHANNELS]
    changes = {"preferred_channel": preferred,
               "opted_out_channels": ",".join(sorted(set(kept) | set(opted_out))),
               "do_not_contact": form.get("do_not_contact") == "yes"}
    changed = []
    async with Customer._meta.db.transaction():
        after = await records.update(actor, Customer, actor.customer_id, changes,
                                     ip=client_ip(request), summary="changed in the portal")
        if any(before[k] != after[k] for k in changes):
            changed.append("contact preferences")
            await announce_consent_changed(
                request.app.state.rapport, actor, actor.customer_id,
                [k for k in changes if before[k] != after[k]])
        current = await current_consents(actor.customer_id)
        for purpose in CONSENT_PURPOSES:
            answer = form.get(f"consent_{purpose}")
            if answer not in ("given", "withdrawn"):
                continue
            granted = answer == "given"
            if current.get((purpose, "")) is not granted:
                try:
                    await record_consent(actor, actor.customer_id, purpose, granted, "portal",
                                         rapport=request.app.state.rapport,
                                         ip=client_ip(request))
                except PrivacyError:
                    continue
                changed.append(f"{purpose} consent {'given' if granted else 'withdrawn'}")
    if changed:
        await touch_point(request, "Communication preferences changed in the portal",
                          "; ".join(changed))
    return Redirect("/portal/preferences?done=1", status_code=303)


# --- their data ------------------------------------------------------------------------------


@get("/data", name="portal-data", opt=OPEN)
async def portal_data(request: Request) -> Template:
    return await render(request, "portal/data.html")


@get("/data/export.json", name="portal-data-export", opt=OPEN)
async def portal_data_export(request: Request) -> Response:
    actor = current_actor(request)
    await _own(request, Customer, actor.customer_id, Customer.id)
    data = await export_customer(request.app.state.rapport, actor.customer_id)
    await audit.record(actor, "privacy_export", Customer._meta.tablename, actor.customer_id,
                       summary="privacy export downloaded in the portal", ip=client_ip(request))
    return export_response(data, actor.customer_id)


@get("/branding.css", name="portal-branding-css", opt={"public": True}, include_in_schema=False)
async def portal_branding_css(request: Request) -> Response:
    """The brand colour as a stylesheet: the CSP allows no inline styles."""
    brand = await portal_settings.branding(request.app.state.rapport.settings.instance_name)
    return Response(f":root {{ --portal-brand: {brand.colour}; }}\n", media_type="text/css",
                    headers={"cache-control": "no-cache"})


ROUTES = [portal_home, portal_history, portal_profile, portal_profile_save,
          portal_subrecord_add, portal_subrecord_delete, portal_preferences,
          portal_preferences_save, portal_data, portal_data_export, portal_branding_css]
