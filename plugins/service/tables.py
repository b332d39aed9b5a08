"""Service tables: cases and their conversation, queues and routing, SLAs on business hours,
e-mail templates, the knowledge base, and field visits for repairs.

Every table is prefixed ``service_``. A case carries ``owner`` (the agent it is assigned to),
``team`` and ``customer`` columns, which is all core's row filter needs to scope it: own, team
or all for staff, and the customer's own cases in the portal. Attachments live on disk under
the data directory; the database keeps their name, type, size and checksum.
"""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import Team, User

CASE_TYPES = ("service_request", "complaint", "product_return", "information_request",
              "maintenance")
PRIORITIES = ("low", "normal", "high", "urgent")
# Rank for sorting: urgent first. Stored on the case so the queue index can use it.
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
STATUSES = ("new", "open", "waiting", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "waiting")
CHANNELS = ("portal", "email", "phone", "chat", "web", "visit")
ASSIGNMENT_MODES = ("named", "round_robin", "least_loaded", "none")
MESSAGE_KINDS = ("reply", "note", "inbound")  # agent reply, internal note, customer's message

# --- Business hours and SLAs -----------------------------------------------------------------


class BusinessCalendar(Table, tablename="service_calendar"):
    """When the support team works: days of the week, opening hours and a time zone."""

    id: Serial
    name = Varchar(length=150, unique=True)
    timezone = Varchar(length=64, default="UTC")  # IANA name, e.g. Europe/Paris
    work_days = Varchar(length=20, default="0,1,2,3,4")  # Monday is 0, as in date.weekday()
    opens_at = Varchar(length=5, default="09:00")  # HH:MM, local time
    closes_at = Varchar(length=5, default="17:00")


class Holiday(Table, tablename="service_holiday"):
    calendar = ForeignKey(BusinessCalendar, index=True)
    day = Date()
    name = Varchar(length=150, default="")


class SlaPolicy(Table, tablename="service_sla_policy"):
    """Targets for one priority, in business minutes of ``calendar``."""

    id: Serial
    name = Varchar(length=150)
    priority = Varchar(length=10, unique=True)
    first_response_minutes = Integer()
    resolution_minutes = Integer()
    warn_before_minutes = Integer(default=60)  # breach warning this long before a deadline
    calendar = ForeignKey(BusinessCalendar, null=True, default=None)
    active = Boolean(default=True)


# --- Queues and routing ----------------------------------------------------------------------


class Queue(Table, tablename="service_queue"):
    """A group of agents that works a kind of case, and how it hands cases out."""

    id: Serial
    name = Varchar(length=150, unique=True)
    description = Text(default="")
    assignment = Varchar(length=16, default="round_robin")  # one of ASSIGNMENT_MODES
    named_assignee = ForeignKey(User, null=True, default=None)  # for assignment "named"
    team = ForeignKey(Team, null=True, default=None)  # cases routed here get this team
    manager = ForeignKey(User, null=True, default=None)  # notified on escalation
    escalation_queue = Integer(null=True, default=None)  # breached cases move here, if set
    last_assigned = Integer(null=True, default=None)  # user id: round-robin resumes after it
    email_address = Varchar(length=254, default="")  # inbound mail to this address lands here
    active = Boolean(default=True)


class QueueMember(Table, tablename="service_queue_member"):
    queue = ForeignKey(Queue, index=True)
    user = ForeignKey(User, index=True)
    available = Boolean(default=True)  # away agents get no new cases


class RoutingRule(Table, tablename="service_routing_rule"):
    """First matching rule (by ``position``) decides the queue, and optionally the agent.

    An empty condition matches anything; ``customer_tag`` matches a tag on the customer or
    on their account (tiers such as "gold" are tags).
    """

    id: Serial
    position = Integer(default=100)
    name = Varchar(length=150, default="")
    case_type = Varchar(length=30, default="")
    priority = Varchar(length=10, default="")
    channel = Varchar(length=10, default="")
    customer_tag = Varchar(length=64, default="")
    queue = ForeignKey(Queue)
    assignee = ForeignKey(User, null=True, default=None)  # overrides the queue's assignment
    set_priority = Varchar(length=10, default="")  # e.g. complaints from gold customers: high
    active = Boolean(default=True)


# --- Cases -----------------------------------------------------------------------------------


class Case(Table, tablename="service_case"):
    id: Serial
    number = Varchar(length=20, unique=True)  # "CS-000123", shown to customers
    subject = Varchar(length=300)
    description = Text(default="")
    case_type = Varchar(length=30, default="service_request")
    priority = Varchar(length=10, default="normal")
    priority_rank = SmallInt(default=2)  # PRIORITY_RANK[priority]
    status = Varchar(length=10, default="new")
    is_open = Boolean(default=True)  # status in OPEN_STATUSES: what queue indexes filter on
    channel = Varchar(length=10, default="phone")
    customer = ForeignKey(Customer, index=True)  # the person (or organisation) who asked
    product = Varchar(length=300, default="")  # what it is about, as the customer names it
    product_ref = Varchar(length=100, default="")  # another plugin's product id, if known
    queue = ForeignKey(Queue, null=True, default=None)
    owner = ForeignKey(User, null=True, default=None)  # the assigned agent
    team = ForeignKey(Team, null=True, default=None)
    created_by = ForeignKey(User, null=True, default=None)
    sla_policy = ForeignKey(SlaPolicy, null=True, default=None)
    first_response_due = Timestamptz(null=True, default=None)
    resolution_due = Timestamptz(null=True, default=None)
    first_responded_at = Timestamptz(null=True, default=None)
    resolved_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    waiting_since = Timestamptz(null=True, default=None)  # SLA clock pauses while waiting
    paused_minutes = Integer(default=0)  # business minutes spent waiting on the customer
    warned_at = Timestamptz(null=True, default=None)  # breach warning sent
    escalated_at = Timestamptz(null=True, default=None)
    first_response_breached = Boolean(default=False)
    resolution_breached = Boolean(default=False)
    reopened_count = Integer(default=0)
    thread_id = Varchar(length=300, default="", index=True)  # Message-ID that opened it
    satisfaction = SmallInt(null=True, default=None)  # CSAT 1..5
    satisfaction_comment = Text(default="")
    rated_at = Timestamptz(null=True, default=None)
    interaction_id = Integer(null=True, default=None)  # the timeline entry for the opening
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class CaseMessage(Table, tablename="service_message"):
    """One entry of a case's conversation: a customer's message, an agent's reply, or an
    internal note (never shown to the customer, never e-mailed)."""

    id: Serial
    case = ForeignKey(Case, index=True)
    kind = Varchar(length=10)  # one of MESSAGE_KINDS
    body = Text(default="")
    channel = Varchar(length=10, default="")
    author_user = ForeignKey(User, null=True, default=None)
    author_customer = ForeignKey(Customer, null=True, default=None)
    author_email = Varchar(length=254, default="")  # inbound mail's From address
    message_id = Varchar(length=300, default="", index=True)  # RFC 5322 Message-ID
    in_reply_to = Varchar(length=300, default="")
    delivery = Varchar(length=12, default="")  # "", sent, failed, suppressed (policy refused)
    delivery_detail = Text(default="")  # why it failed or was suppressed
    interaction_id = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class CaseAttachment(Table, tablename="service_attachment"):
    id: Serial
    case = ForeignKey(Case, index=True)
    message = ForeignKey(CaseMessage, null=True, default=None)
    filename = Varchar(length=255)
    content_type = Varchar(length=100)
    size = Integer()
    sha256 = Varchar(length=64)
    path = Varchar(length=300)  # relative to the data directory
    visible_to_customer = Boolean(default=True)
    uploaded_by_user = ForeignKey(User, null=True, default=None)
    uploaded_by_customer = ForeignKey(Customer, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class CaseEvent(Table, tablename="service_case_event"):
    """What happened to a case: status changes, assignments, SLA warnings and breaches."""

    case = ForeignKey(Case, index=True)
    kind = Varchar(length=30)  # status, assigned, queued, priority, warned, breached, escalated,
    #                            rated, reopened, visit
    old_value = Varchar(length=200, default="")
    new_value = Varchar(length=200, default="")
    user = ForeignKey(User, null=True, default=None)
    at = Timestamptz(default=TimestamptzNow())


class EmailTemplate(Table, tablename="service_email_template"):
    """Text of automated and agent e-mails; ``{{ case.number }}``-style Jinja2 placeholders."""

    id: Serial
    key = Varchar(length=64, unique=True)  # acknowledgement, reply, resolved, csat
    name = Varchar(length=150)
    subject = Varchar(length=300)
    body = Text()
    updated_at = Timestamptz(default=TimestamptzNow())


class Visit(Table, tablename="service_visit"):
    """A maintenance or repair visit to the customer, by a field representative.

    The visit is a core interaction (channel "visit") so it shows in the field app's agenda;
    the report written there (notes, photos, signature) belongs to that interaction and is
    shown on the case.
    """

    id: Serial
    case = ForeignKey(Case, index=True)
    assignee = ForeignKey(User, index=True)
    starts_at = Timestamptz()
    ends_at = Timestamptz(null=True, default=None)
    status = Varchar(length=12, default="scheduled")  # scheduled, done, cancelled
    interaction_id = Integer(null=True, default=None, index=True)
    notes = Text(default="")  # what the customer or agent asked the technician to do
    created_by = ForeignKey(User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


# --- Knowledge base --------------------------------------------------------------------------


class ArticleCategory(Table, tablename="service_kb_category"):
    id: Serial
    name = Varchar(length=150, unique=True)
    slug = Varchar(length=160, unique=True)
    position = Integer(default=100)


class Article(Table, tablename="service_kb_article"):
    id: Serial
    category = ForeignKey(ArticleCategory, null=True, default=None, index=True)
    title = Varchar(length=300)
    slug = Varchar(length=320, unique=True)
    body = Text(default="")  # Markdown-free plain text with blank-line paragraphs
    audience = Varchar(length=10, default="internal")  # internal or public
    kind = Varchar(length=12, default="faq")  # faq, howto, manual, technical
    product = Varchar(length=300, default="")
    keywords = Varchar(length=500, default="")
    published = Boolean(default=True)
    helpful_yes = Integer(default=0)
    helpful_no = Integer(default=0)
    author = ForeignKey(User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ArticleFeedback(Table, tablename="service_kb_feedback"):
    article = ForeignKey(Article, index=True)
    helpful = Boolean()
    comment = Text(default="")
    customer = ForeignKey(Customer, null=True, default=None)
    user = ForeignKey(User, null=True, default=None)
    deflected = Boolean(default=False)  # a portal customer found the answer and did not ask
    created_at = Timestamptz(default=TimestamptzNow())


TABLES = (
    BusinessCalendar,
    Holiday,
    SlaPolicy,
    Queue,
    QueueMember,
    RoutingRule,
    Case,
    CaseMessage,
    CaseAttachment,
    CaseEvent,
    EmailTemplate,
    Visit,
    ArticleCategory,
    Article,
    ArticleFeedback,
)
