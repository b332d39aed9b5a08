"""Loyalty programs: members with a card and QR code, an append-only points ledger (lots,
pending points, expiry), earning rules administrators edit, tiers, a rewards catalogue with
vouchers that sales' quotes accept, a till API, portal pages and dashboard widgets.

Loyalty never imports another plugin: it earns on the sales plugin's durable order events
(``on_event``), offers vouchers to quotes through sales' ``sales_quote_adjustments`` hook
(``optionalhook``: it loads without sales), and works alone through manual awards and the
API. The hook implementations are thin: the work lives in the modules they import.
"""

from __future__ import annotations

from pathlib import Path

from core.plugin import (
    Action,
    EventType,
    NavItem,
    Panel,
    Permission,
    Plugin,
    SearchProvider,
    Widget,
    hookimpl,
)

plugin = Plugin(id="loyalty", name="Loyalty", version="0.1.0",
                description="Loyalty programs: points, tiers, rewards and vouchers.")

HERE = Path(__file__).resolve().parent
ORDER_EVENTS = ("sales.order.created", "sales.order.fulfilled", "sales.order.cancelled",
                "sales.order.returned")


@hookimpl
def register_piccolo_apps():
    from plugins.loyalty.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


@hookimpl
def register_routes(rapport):
    from plugins.loyalty import (
        members_api,
        members_web,
        programs_web,
        rewards_api,
        rewards_web,
        widgets,
    )

    return (members_web.ROUTES + programs_web.ROUTES + rewards_web.ROUTES + widgets.ROUTES
            + members_api.ROUTES + rewards_api.ROUTES)


@hookimpl
def register_portal_routes(rapport):
    from plugins.loyalty import portal

    return portal.ROUTES


@hookimpl
def register_portal_nav_items(customer):
    from plugins.loyalty import portal

    return portal.nav_items(customer)


@hookimpl
def portal_home_cards(customer):
    from plugins.loyalty import portal

    return portal.home_cards(customer)


@hookimpl
def portal_history_panels(customer):
    from plugins.loyalty import portal

    return portal.history_panels(customer)


@hookimpl
def customer_panels(customer, user):
    if not user.can("loyalty.member.view"):
        return None
    return [Panel("loyalty", "Loyalty", url=f"/loyalty/panels/customer/{customer['id']}",
                  order=45)]


@hookimpl
def record_actions(record_type, record):
    if record_type != "customer":
        return None
    return [Action("Enrol in loyalty", f"/loyalty/members/new?customer={record['id']}",
                   permission="loyalty.member.enrol", order=60)]


@hookimpl
def dashboard_widgets():
    return [
        Widget("loyalty-liability", "Loyalty: points outstanding",
               url="/loyalty/widgets/liability", permission="loyalty.report.view", order=60),
        Widget("loyalty-activity", "Loyalty: earn and burn per month",
               url="/loyalty/widgets/activity", permission="loyalty.report.view", order=61),
        Widget("loyalty-tiers", "Loyalty: members by tier", url="/loyalty/widgets/tiers",
               permission="loyalty.report.view", order=62),
    ]


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    return {"plugins/loyalty": HERE / "static"}


@hookimpl
def register_permissions():
    return [
        Permission("loyalty.member.view", "See loyalty members, their points and vouchers",
                   scoped=False),
        Permission("loyalty.member.enrol", "Enrol customers in loyalty programs",
                   scoped=False),
        Permission("loyalty.points.adjust", "Award, take off and move points with a reason",
                   scoped=False),
        Permission("loyalty.points.earn", "Report purchases that earn points (a shop or "
                   "till, through the API)", scoped=False),
        Permission("loyalty.voucher.redeem", "Check and use vouchers at a till, redeem "
                   "rewards for members", scoped=False),
        Permission("loyalty.program.manage", "Set up loyalty programs, earning rules, tiers "
                   "and rewards", scoped=False),
        Permission("loyalty.report.view", "See loyalty analytics and export them",
                   scoped=False),
        Permission("loyalty.portal.view", "Portal customers: join programs, see their points, "
                   "redeem rewards"),
    ]


@hookimpl
def register_search_providers():
    from plugins.loyalty.members import search_members

    return [SearchProvider("loyalty.member", "Loyalty members", search_members,
                           permission="loyalty.member.view", order=60)]


@hookimpl
def register_nav_items():
    return [
        NavItem("Loyalty members", "/loyalty/members", permission="loyalty.member.view",
                order=60, group="Loyalty"),
        NavItem("Loyalty programs", "/loyalty/programs", permission="loyalty.program.manage",
                order=61, group="Loyalty"),
    ]


EVENTS = {
    "loyalty.member.enrolled": ("A customer joined a loyalty program (payload: member_id, "
                                "program_id, customer_id, card_number, via, referred_by).",
                                True, ""),
    "loyalty.reward.redeemed": ("A member redeemed a reward for a voucher (payload: "
                                "member_id, customer_id, reward_id, voucher_id, points).",
                                True, ""),
    "loyalty.voucher.used": ("A voucher was used on an order or at a till (payload: "
                             "voucher_id, member_id, customer_id, used_ref, used_by).",
                             True, ""),
    "loyalty.tier.changed": ("A member moved to another tier (payload: member_id, "
                             "customer_id, owner_id, tier, previous_tier, direction).",
                             True, "One of my customers changes loyalty tier"),
    "loyalty.points.expiring": ("A member's points will expire soon (payload: member_id, "
                                "customer_id, owner_id, points, expires_at).",
                                True, "Points of one of my customers will expire soon"),
}


@hookimpl
def register_events():
    return [EventType(name, description, durable=durable, topic_label=label)
            for name, (description, durable, label) in EVENTS.items()]


@hookimpl
async def on_event(rapport, event):
    if event.name in ORDER_EVENTS:
        from plugins.loyalty import purchases

        await purchases.on_order_event(rapport, event)
    elif event.name == "sales.quote.accepted":
        from plugins.loyalty import vouchers

        await vouchers.on_quote_accepted(rapport, event)
    elif event.name == "core.interaction.created":
        from plugins.loyalty import touch_points

        await touch_points.on_interaction(rapport, event)


@hookimpl(optionalhook=True)
async def sales_quote_adjustments(rapport, quote, lines, context):
    from plugins.loyalty import vouchers

    return await vouchers.quote_adjustments(quote, context)


@hookimpl
def register_jobs(rapport):
    from plugins.loyalty import jobs

    return jobs.job_types()


@hookimpl
async def push_notifications(rapport, event):
    if event.name not in ("loyalty.points.expiring", "loyalty.tier.changed"):
        return None
    from plugins.loyalty import notices

    return await notices.push_messages(event)


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from plugins.loyalty.customers import merge

    await merge(survivor_id, merged_id)


@hookimpl
async def privacy_export(customer_id):
    from plugins.loyalty.customers import export

    return await export(customer_id)


@hookimpl
async def privacy_erase(rapport, customer_id):
    from plugins.loyalty.customers import erase

    await erase(customer_id)


@hookimpl
async def seed_demo_data(rapport, customers):
    from plugins.loyalty.demo import seed

    await seed(rapport, customers)
