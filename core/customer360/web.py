"""The 360° view: everything known about one customer on one page (/customers/{id}).

Profile, key figures, open follow-ups, the unified timeline (keyset "load more", filter by
channel, live), related contacts or account, and what plugins add: panels from
``customer_panels`` (``Panel.url`` ones load lazily, so a slow plugin never slows the page)
and buttons from ``record_actions``. Every query is bounded; the customer itself is read
through the row filter, so a customer outside the reader's scope is simply not found (404).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from core.customers import listing as customer_listing
from core.customers.service import customer_details, display_phone
from core.customers.tables import CHANNELS, Customer
from core.interactions import email, listing, policy
from core.interactions.service import InteractionError
from core.interactions.tables import Interaction
from core.permissions import current_actor, scoped

TIMELINE_PAGE = 25
FIGURE_CAP = 1000  # key figures count at most this many rows ("1000+"), never the whole table
RELATED_LIMIT = 25


async def visible_customer(request: Request, customer_id: FromPath[int]) -> dict[str, Any]:
    query = scoped(Customer.select().where(Customer.id == customer_id),
                   request.app.state.rapport, current_actor(request), "core.customer.view",
                   Customer)
    row = await query.first().run()
    if row is None:
        raise NotFoundException("No such customer")
    return row


def _capped(count: int) -> str:
    return f"{FIGURE_CAP}+" if count > FIGURE_CAP else str(count)


async def _capped_count(query) -> str:
    return _capped(len(await query.limit(FIGURE_CAP + 1).run()))


def _is_account(customer: dict[str, Any]) -> bool:
    return customer.get("kind") == "account"


def _primary(customer_id: int, with_contacts: bool) -> list[Any]:
    """Where-clauses for interactions the customer is the primary customer of, and for an
    account those of its contacts too: each queried on its own (listing.involving says why)."""
    clauses = [Interaction.customer == customer_id]
    if with_contacts:
        clauses += [listing.involving(customer_id, with_contacts=True)[-1]]
    return clauses


async def key_figures(request: Request, customer: dict[str, Any]) -> dict[str, Any]:
    """Last contact, last outbound, recent and open follow-up counts; an account's include its
    contacts' interactions, as its timeline does."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer_id, with_contacts = customer["id"], _is_account(customer)
    since = datetime.now(UTC) - timedelta(days=90)

    def visible(query):
        return scoped(query, rapport, actor, "core.interaction.view", Interaction)

    # The customer's own interactions, those it took part in (and an account's contacts'),
    # each clause queried on its own (listing.involving says why), then combined.
    latest, recent = [], set()
    for clause in listing.involving(customer_id, with_contacts=with_contacts):
        latest += await visible(Interaction.select(
            Interaction.occurred_at, Interaction.channel).where(clause)).order_by(
            Interaction.occurred_at, ascending=False).limit(1).run()
        recent.update(r["id"] for r in await visible(Interaction.select(Interaction.id).where(
            clause & (Interaction.occurred_at >= since))).limit(FIGURE_CAP + 1).run())
    outbound, followups = [], set()
    for clause in _primary(customer_id, with_contacts):
        outbound += await visible(Interaction.select(Interaction.occurred_at).where(
            clause & (Interaction.direction == "outbound"))).order_by(
            Interaction.occurred_at, ascending=False).limit(1).run()
        followups.update(r["id"] for r in await visible(Interaction.select(
            Interaction.id).where(clause & Interaction.followup_due.is_not_null()
                                  & (Interaction.followup_done == False))  # noqa: E712
        ).limit(FIGURE_CAP + 1).run())
    return {
        "last_contact": max(latest, key=lambda r: r["occurred_at"], default=None),
        "last_outbound": max((r["occurred_at"] for r in outbound), default=None),
        "recent": _capped(len(recent)),
        "open_followups": _capped(len(followups)),
    }


async def open_followups(request: Request, customer: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for clause in _primary(customer["id"], _is_account(customer)):
        query = Interaction.select(
            Interaction.id, Interaction.customer, Interaction.customer.name, Interaction.channel,
            Interaction.subject, Interaction.followup_due, Interaction.followup_note,
            Interaction.followup_assignee.name,
        ).where(clause & Interaction.followup_due.is_not_null()
                & (Interaction.followup_done == False))  # noqa: E712
        query = scoped(query, request.app.state.rapport, current_actor(request),
                       "core.interaction.view", Interaction)
        rows += await query.order_by(Interaction.followup_due).limit(20).run()
    return sorted(rows, key=lambda r: (r["followup_due"], r["id"]))[:20]


async def related(request: Request, customer: dict[str, Any]) -> dict[str, Any]:
    rapport = request.app.state.rapport
    actor = current_actor(request)

    def visible(query):
        return scoped(query, rapport, actor, "core.customer.view", Customer)

    columns = (Customer.id, Customer.name, Customer.job_title, Customer.kind)
    account = None
    if customer["account"] is not None:
        account = await visible(Customer.select(*columns).where(
            Customer.id == customer["account"])).first().run()
    parent = customer["id"] if customer["kind"] == "account" else customer["account"]
    people = []
    if parent is not None:
        people = await visible(Customer.select(*columns).where(
            (Customer.account == parent) & (Customer.id != customer["id"]))).order_by(
            Customer.name).limit(RELATED_LIMIT).run()
    return {"account": account, "people": people}


def _timeline_query(customer_id: int, channel: str, after: str = "") -> str:
    params = {k: v for k, v in (("channel", channel), ("after", after)) if v}
    return urlencode(params)


async def timeline(request: Request, customer: dict[str, Any]) -> dict[str, Any]:
    customer_id = customer["id"]
    channel = request.query_params.get("channel") or ""
    filters = listing.Filters(customer_id=customer_id,
                              channel=channel if channel in CHANNELS else "",
                              with_contacts=_is_account(customer))
    try:
        rows, next_cursor = await listing.page(
            request.app.state.rapport, current_actor(request), filters,
            after=request.query_params.get("after") or "", limit=TIMELINE_PAGE)
    except InteractionError:
        rows, next_cursor = [], None
    return {"rows": rows, "next_cursor": next_cursor, "channel": filters.channel,
            "query": _timeline_query(customer_id, filters.channel),
            "more_url": f"/customers/{customer_id}/timeline",
            # An account's timeline says which contact each interaction was with.
            "show_customer": filters.with_contacts}


@get("/customers/{customer_id:int}", name="customer-360",
     opt={"permission": "core.customer.view"}, include_in_schema=False)
async def customer_page(request: Request, customer_id: FromPath[int]) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer = await visible_customer(request, customer_id)
    [decorated] = await customer_listing.decorate([dict(customer)])
    details = await customer_details(customer_id)
    may_see_interactions = actor.can("core.interaction.view")
    panels = await rapport.acollect("customer_panels", rapport=rapport, customer=customer,
                                    user=actor)
    panels.sort(key=lambda p: (p.order, p.title))
    actions = [a for a in await rapport.acollect("record_actions", rapport=rapport,
                                                 record_type="customer", record=customer,
                                                 user=actor)
               if a.permission is None or actor.can(a.permission)]
    actions.sort(key=lambda a: (a.order, a.label))
    channel = customer["preferred_channel"] or "email"
    context = {
        "customer": decorated, "details": details, "display_phone": display_phone,
        "panels": panels, "actions": actions, "channels": CHANNELS,
        "related": await related(request, customer),
        "policy": await policy.check_contact(rapport, customer_id, channel),
        "policy_channel": channel,
        "may_see_interactions": may_see_interactions,
        "may_log": actor.can("core.interaction.create"),
        "may_email": await email.may_email(rapport, actor, customer_id),
        "may_edit": actor.can("core.customer.edit"),
    }
    if may_see_interactions:
        context.update(figures=await key_figures(request, customer),
                       followups=await open_followups(request, customer),
                       timeline=await timeline(request, customer))
    return Template("customer360/page.html", context=context)


@get("/customers/{customer_id:int}/timeline", opt={"permission": "core.interaction.view"},
     include_in_schema=False)
async def customer_timeline(request: Request, customer_id: FromPath[int]) -> Template:
    """The timeline alone: a page of rows ("load more", with ``after``) or the whole list
    (channel filter, live refresh)."""
    customer = await visible_customer(request, customer_id)
    context = await timeline(request, customer)
    template = ("interactions/_rows.html" if request.query_params.get("after")
                else "customer360/_timeline.html")
    return Template(template, context=context)


@get("/customers/{customer_id:int}/follow-ups", opt={"permission": "core.interaction.view"},
     include_in_schema=False)
async def customer_followups(request: Request, customer_id: FromPath[int]) -> Template:
    customer = await visible_customer(request, customer_id)
    return Template("customer360/_followups.html", context={
        "followups": await open_followups(request, customer), "customer": customer})


@get("/customers/{customer_id:int}/figures", opt={"permission": "core.interaction.view"},
     include_in_schema=False)
async def customer_figures(request: Request, customer_id: FromPath[int]) -> Template:
    """The key figures alone, refreshed after an interaction is logged (and live)."""
    customer = await visible_customer(request, customer_id)
    return Template("customer360/_figures.html",
                    context={"figures": await key_figures(request, customer)})


ROUTES = [customer_page, customer_timeline, customer_followups, customer_figures]
