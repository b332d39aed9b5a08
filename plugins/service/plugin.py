"""Customer service: cases from every channel, routing and SLAs on business hours, e-mail in
and out, a knowledge base and FAQ, portal requests with satisfaction ratings, and repair
visits in the field app.

Everything plugs in through core's hooks; nothing in core knows this plugin exists. The hook
implementations are thin: the work lives in the modules they import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    subscribes_to,
)

plugin = Plugin(id="service", name="Service", version="0.1.0",
                description="Cases, queues and SLAs, support e-mail, knowledge base and FAQ, "
                            "portal requests and repair visits.")

HERE = Path(__file__).resolve().parent

DEFAULT_ATTACHMENT_TYPES = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
    "text/csv", "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


@dataclass(frozen=True)
class ServiceSettings:
    """``[plugins.service]`` in plugins.toml."""

    support_address: str = "support@example.com"  # From: of replies and acknowledgements
    acknowledge: bool = True  # e-mail the customer when their case is opened
    inbound_token: str = ""  # bearer token of POST /service/inbound/email; empty: endpoint off
    maildir: str = ""  # a Maildir to poll for inbound mail
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"
    mail_poll_seconds: int = 60  # 0: only `rapport service fetch-mail` fetches
    sla_check_seconds: int = 60  # how often breach warnings and escalations are checked
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_types: tuple[str, ...] = field(default=DEFAULT_ATTACHMENT_TYPES)

    def __post_init__(self) -> None:
        if "@" not in self.support_address:
            raise ValueError("support_address must be an e-mail address")
        if self.mail_poll_seconds < 0 or self.sla_check_seconds < 0:
            raise ValueError("mail_poll_seconds and sla_check_seconds must not be negative")
        if self.attachment_max_bytes < 1:
            raise ValueError("attachment_max_bytes must be positive")
        if not (0 < self.imap_port < 65536):
            raise ValueError("imap_port must be a TCP port")


@hookimpl
def register_settings():
    return ServiceSettings


@hookimpl
def register_piccolo_apps():
    from plugins.service.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


@hookimpl
def register_routes(rapport):
    from plugins.service import (
        admin_web,
        api,
        cases_web,
        email_web,
        kb_web,
        uploads,
        visits,
        widgets,
    )
    from plugins.service import kb_api as kb_api  # the REST API of the knowledge base
    from plugins.service import visits_api as visits_api  # and of repair visits

    # Routes taking files get this app's body bound, from its attachment_max_bytes.
    return uploads.sized(rapport, cases_web.ROUTES + api.ROUTES + admin_web.ROUTES
                         + widgets.ROUTES + email_web.ROUTES + kb_web.ROUTES + visits.ROUTES
                         + kb_api.ROUTES + visits_api.ROUTES)


@hookimpl
def register_portal_routes(rapport):
    from plugins.service import portal, uploads

    return uploads.sized(rapport, portal.ROUTES)


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    # /static/plugins/service/<area>/...: each area keeps its files in static/<area>/.
    return {"plugins/service": HERE / "static"}


@hookimpl
def register_permissions():
    return [
        Permission("service.case.view", "See cases and queues"),
        Permission("service.case.create", "Open cases for customers"),
        Permission("service.case.edit", "Reply to cases, add notes, change status and "
                   "schedule repair visits"),
        Permission("service.case.assign", "Move cases between queues and agents"),
        Permission("service.settings.manage", "Set up queues, routing rules, SLA policies, "
                   "business hours and e-mail templates", scoped=False),
        Permission("service.article.view", "Read the knowledge base", scoped=False),
        Permission("service.article.edit", "Write and publish knowledge base articles",
                   scoped=False),
        Permission("service.portal.view", "Portal customers: open and follow their requests, "
                   "read the FAQ and rate resolutions"),
    ]


@hookimpl
def register_nav_items():
    return [
        NavItem("Cases", "/service/cases", permission="service.case.view", order=40),
        NavItem("Knowledge base", "/service/kb", permission="service.article.view", order=41),
        NavItem("Service setup", "/service/admin", permission="service.settings.manage",
                order=90),
    ]


@hookimpl
def dashboard_widgets():
    return [
        Widget("service-backlog", "Case backlog", url="/service/widgets/backlog",
               permission="service.case.view", order=40),
        Widget("service-sla", "SLA attainment (30 days)", url="/service/widgets/sla",
               permission="service.case.view", order=41),
        Widget("service-csat", "Customer satisfaction trend", url="/service/widgets/csat",
               permission="service.case.view", order=42),
    ]


@hookimpl
def customer_panels(customer, user):
    if not user.can("service.case.view"):
        return None
    return [Panel("service-cases", "Cases and satisfaction",
                  url=f"/service/panels/customer/{customer['id']}/cases", order=40)]


@hookimpl
def record_actions(record_type, record):
    # found_customer: a caller's card, for agents who may find but not open the record.
    if record_type not in ("customer", "found_customer"):
        return None
    return [Action("New case", f"/service/cases/new?customer={record['id']}",
                   permission="service.case.create", order=40)]


@hookimpl
def register_portal_nav_items(customer):
    from plugins.service import portal

    return portal.nav_items(customer)


@hookimpl
def portal_home_cards(customer):
    from plugins.service import portal

    return portal.home_cards(customer)


@hookimpl
def portal_history_panels(customer):
    from plugins.service import portal

    return portal.history_panels(customer)


@hookimpl
async def agenda_items(rapport, user, day):
    from plugins.service import visits

    return await visits.agenda_items(rapport, user, day)


@hookimpl
def register_search_providers():
    from plugins.service import kb, search

    return [
        SearchProvider("service.case", "Cases", search.cases, permission="service.case.view",
                       order=40),
        SearchProvider("service.article", "Knowledge base", kb.search_articles,
                       permission="service.article.view", order=41),
    ]


EVENTS = {
    "service.case.created": "A case was opened (payload: case_id, number, customer_id, "
                            "owner_id, queue_id, priority, case_type, channel).",
    "service.case.assigned": "A case was given to an agent or queue (payload: case_id, number, "
                             "owner_id, queue_id, previous_owner_id, subject).",
    "service.case.replied": "An agent replied to the customer (payload: case_id, number, "
                            "message_id, customer_id, owner_id).",
    "service.case.customer_replied": "The customer wrote on an open or closed case (payload: "
                                     "case_id, number, message_id, customer_id, owner_id, "
                                     "reopened).",
    "service.case.status_changed": "A case changed status (payload: case_id, number, "
                                   "customer_id, owner_id, old, new).",
    "service.case.sla_warning": "A case will breach an SLA target soon (payload: case_id, "
                                "number, owner_id, manager_id, target, due_at, subject).",
    "service.case.sla_breached": "A case missed an SLA target and was escalated (payload: "
                                 "case_id, number, owner_id, new_owner_id, manager_id, "
                                 "target, due_at, escalated, queue_id, subject).",
    "service.case.rated": "The customer rated a resolution (payload: case_id, number, "
                          "customer_id, owner_id, score).",
}


# Durable (docs/events.md): written in the transaction of the change, delivered at least once
# in order per case (key "case:<id>"), through cases.publish_case_event. Every case event is:
# other plugins and webhooks rely on them.
DURABLE = set(EVENTS)


@hookimpl
def register_events():
    return [EventType(name, description, durable=name in DURABLE,
                      topic_label=TOPIC_LABELS.get(name, ""))
            for name, description in EVENTS.items()]


# The events plugins.service.notifications turns into notifications, as staff choose them.
TOPIC_LABELS = {
    "service.case.assigned": "A case is given to me",
    "service.case.customer_replied": "A customer replies on one of my cases",
    "service.case.sla_warning": "One of my cases will soon miss its target time",
    "service.case.sla_breached": "A case missed its target time",
}


@hookimpl
@subscribes_to("core.interaction.created", "sales.order.returned")
async def on_event(rapport, event):
    if event.name == "core.interaction.created":
        from plugins.service import visits

        # A visit report from the field app marks the matching scheduled visit done.
        await visits.on_interaction_created(rapport, event.payload)
        return
    if event.name == "sales.order.returned" and event.id is not None:
        from plugins.service import returns

        # A return recorded by a sales plugin (durable event): a product_return case, once.
        await returns.open_return_case(rapport, event)
    # Its own case events: cases.publish_case_event refreshes the live queue views and mails
    # the customer right after the commit, in the process that made the change.


@hookimpl
async def push_notifications(rapport, event):
    if not event.name.startswith("service."):
        return None
    from plugins.service import notifications

    return await notifications.push_messages(rapport, event)


@hookimpl
async def seed_demo_data(rapport, customers):
    from plugins.service.demo import seed

    await seed(rapport, customers)


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from plugins.service.customers import repoint

    await repoint(survivor_id, merged_id)


@hookimpl
async def privacy_export(customer_id):
    from plugins.service.customers import export

    return await export(customer_id)


@hookimpl
async def privacy_erase(rapport, customer_id):
    from plugins.service.customers import erase

    # rapport: the attachment files live under its data directory.
    await erase(rapport, customer_id)


@hookimpl
def register_commands(cli):
    from plugins.service import mailpoll, sla

    @cli.group(name="service")
    def service_group():
        """Customer service: SLA checks and fetching support mail."""

    sla.register_commands(service_group)
    mailpoll.register_commands(service_group)


@hookimpl
def register_jobs(rapport):
    from core.plugin import JobType
    from plugins.service import customers, mailpoll, sla

    return [
        *sla.job_types(rapport),
        *mailpoll.job_types(rapport),
        JobType(customers.DELETE_ERASED_JOB, customers.delete_erased_files, max_attempts=10,
                description="Delete the attachment files of an erased customer"),
        # Files an upload or a crash left without a row (younger than an hour are kept).
        JobType(customers.SWEEP_ORPHANS_JOB, customers.sweep_orphans_job,
                schedule="41 4 * * *", unique=True, timeout_seconds=1800,
                description="Delete attachment files no case points at (daily)"),
    ]
