"""Sales tables: leads, pipelines and opportunities, the product catalogue, quotes and orders.

Every table is prefixed ``sales_`` so no other plugin collides with it. Records a
representative works on carry ``owner`` and ``team`` columns, which is all core's row filter
needs to scope them (own, team, all); quotes and orders carry ``customer``, which scopes them
for portal customers. Money is two columns, ``<name>_amount`` (Numeric) and a currency.
"""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import Team, User

MONEY = (18, 4)
LEAD_STATUSES = ("new", "working", "qualified", "disqualified", "converted")

# --- Leads -----------------------------------------------------------------------------------


class Lead(Table, tablename="sales_lead"):
    id: Serial
    first_name = Varchar(length=150, default="")
    last_name = Varchar(length=150, default="")
    company = Varchar(length=300, default="")
    job_title = Varchar(length=150, default="")
    email = Varchar(length=254, default="", index=True)  # normalised (lower case)
    phone = Varchar(length=32, default="")
    website = Varchar(length=300, default="")
    industry = Varchar(length=150, default="")
    region = Varchar(length=100, default="")  # the territory assignment rules match on
    country = Varchar(length=2, default="")
    source = Varchar(length=100, default="")  # "web form", "import", "api", "manual", ...
    message = Text(default="")
    status = Varchar(length=20, default="new", index=True)
    score = Integer(default=0)
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    converted_contact = ForeignKey(Customer, null=True, default=None)
    converted_account = ForeignKey(Customer, null=True, default=None)
    converted_opportunity = Integer(null=True, default=None)
    converted_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class LeadActivity(Table, tablename="sales_lead_activity"):
    """What happened with a lead before it became a customer (calls, e-mails, notes).

    Conversion copies each one into the customer's interaction timeline, so nothing is lost.
    """

    lead = ForeignKey(Lead, index=True)
    channel = Varchar(length=16, default="call")
    subject = Varchar(length=300, default="")
    notes = Text(default="")
    occurred_at = Timestamptz(default=TimestamptzNow())
    user = ForeignKey(User, null=True, default=None)
    interaction_id = Integer(null=True, default=None)  # set when copied at conversion


class ScoringRule(Table, tablename="sales_scoring_rule"):
    """``points`` are added when the lead's ``field`` meets ``condition`` against ``value``."""

    field = Varchar(length=50)
    condition = Varchar(length=20)  # equals, contains, not_empty, one_of
    value = Varchar(length=300, default="")
    points = Integer(default=0)
    active = Boolean(default=True)
    position = Integer(default=0)


class AssignmentRule(Table, tablename="sales_assignment_rule"):
    """The first active rule (by ``position``) that matches a lead assigns it.

    ``method``: ``owner`` (the named ``user``), ``round_robin`` (members of ``team`` in turn)
    or ``territory`` (like round-robin, but only for leads whose region is ``region``).
    """

    name = Varchar(length=200)
    method = Varchar(length=20)
    region = Varchar(length=100, default="")  # empty matches every region
    source = Varchar(length=100, default="")  # empty matches every source
    user = ForeignKey(User, null=True, default=None)
    team = ForeignKey(Team, null=True, default=None)
    last_user_id = Integer(null=True, default=None)  # round-robin pointer
    active = Boolean(default=True)
    position = Integer(default=0)


# --- Pipelines and opportunities -------------------------------------------------------------


class Pipeline(Table, tablename="sales_pipeline"):
    id: Serial
    name = Varchar(length=200, unique=True)
    is_default = Boolean(default=False)


class Stage(Table, tablename="sales_stage"):
    id: Serial
    pipeline = ForeignKey(Pipeline, index=True)
    name = Varchar(length=100)
    position = Integer(default=0)
    probability = Integer(default=0)  # percent chance of winning a deal in this stage
    outcome = Varchar(length=10, default="open")  # open, won, lost


class Opportunity(Table, tablename="sales_opportunity"):
    id: Serial
    name = Varchar(length=300)
    customer = ForeignKey(Customer, null=True, default=None, index=True)  # the account
    contact = ForeignKey(Customer, null=True, default=None)
    pipeline = ForeignKey(Pipeline)
    stage = ForeignKey(Stage, index=True)
    status = Varchar(length=10, default="open", index=True)  # open, won, lost
    amount_amount = Numeric(digits=MONEY, default=Decimal(0))
    amount_currency = Varchar(length=3, default="EUR")
    expected_close = Date(null=True, default=None, index=True)
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    competitors = Varchar(length=500, default="")  # comma-separated
    close_reason = Varchar(length=300, default="")  # why it was won or lost
    lead = Integer(null=True, default=None)  # the lead it was converted from
    last_activity_at = Timestamptz(default=TimestamptzNow(), index=True)
    closed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class StageChange(Table, tablename="sales_stage_change"):
    """Every move of an opportunity between stages: the full stage history."""

    opportunity = ForeignKey(Opportunity, index=True)
    from_stage = ForeignKey(Stage, null=True, default=None)
    to_stage = ForeignKey(Stage)
    changed_at = Timestamptz(default=TimestamptzNow())
    user = ForeignKey(User, null=True, default=None)


# --- Products --------------------------------------------------------------------------------


class ProductCategory(Table, tablename="sales_category"):
    id: Serial
    name = Varchar(length=200, unique=True)
    parent = ForeignKey("self", null=True, default=None)


class Product(Table, tablename="sales_product"):
    id: Serial
    sku = Varchar(length=64, unique=True)
    name = Varchar(length=300, index=True)
    category = ForeignKey(ProductCategory, null=True, default=None, index=True)
    description = Text(default="")
    specifications = Text(default="")  # one "Name: value" per line
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())


class PriceBook(Table, tablename="sales_price_book"):
    id: Serial
    name = Varchar(length=200, unique=True)
    is_default = Boolean(default=False)
    active = Boolean(default=True)


class ProductPrice(Table, tablename="sales_product_price"):
    price_book = ForeignKey(PriceBook, index=True)
    product = ForeignKey(Product, index=True)
    currency = Varchar(length=3)
    unit_price = Numeric(digits=MONEY)


class RelatedProduct(Table, tablename="sales_related_product"):
    product = ForeignKey(Product, index=True)
    related = ForeignKey(Product)
    kind = Varchar(length=20, default="related")  # related, alternative, accessory


class OpportunityProduct(Table, tablename="sales_opportunity_product"):
    opportunity = ForeignKey(Opportunity, index=True)
    product = ForeignKey(Product)
    quantity = Numeric(digits=(12, 3), default=Decimal(1))
    unit_price = Numeric(digits=MONEY, default=Decimal(0))  # in the deal's currency


# --- Quotes and orders -----------------------------------------------------------------------


class Quote(Table, tablename="sales_quote"):
    id: Serial
    number = Varchar(length=40, index=True)  # shared by every version of one quote
    version = Integer(default=1)
    superseded = Boolean(default=False)  # a newer version exists
    customer = ForeignKey(Customer, index=True)
    opportunity = ForeignKey(Opportunity, null=True, default=None, index=True)
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    status = Varchar(length=12, default="draft", index=True)  # draft, sent, accepted, declined
    currency = Varchar(length=3, default="EUR")
    price_book = ForeignKey(PriceBook, null=True, default=None)
    subtotal_amount = Numeric(digits=MONEY, default=Decimal(0))
    discount_amount = Numeric(digits=MONEY, default=Decimal(0))
    tax_amount = Numeric(digits=MONEY, default=Decimal(0))
    total_amount = Numeric(digits=MONEY, default=Decimal(0))
    # What other plugins' adjustments (sales_quote_adjustment) take off the total, bounded so
    # the total never goes below zero; total_amount is after it.
    adjustment_amount = Numeric(digits=MONEY, default=Decimal(0))
    valid_until = Date(null=True, default=None)
    notes = Text(default="")
    sent_at = Timestamptz(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    decline_reason = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class QuoteLine(Table, tablename="sales_quote_line"):
    quote = ForeignKey(Quote, index=True)
    position = Integer(default=0)
    product = ForeignKey(Product, null=True, default=None)
    source = Varchar(length=64, default="product")  # "product" or another plugin's source
    source_ref = Varchar(length=64, default="")
    description = Varchar(length=500)
    quantity = Numeric(digits=(12, 3), default=Decimal(1))
    unit_price = Numeric(digits=MONEY)
    discount_percent = Numeric(digits=(5, 2), default=Decimal(0))
    tax_percent = Numeric(digits=(5, 2), default=Decimal(0))
    net_amount = Numeric(digits=MONEY, default=Decimal(0))  # after discount, before tax
    sku = Varchar(length=64, default="")  # the product's, or what a line source names
    # A line source's configuration as a JSON object ("" when none): shown on the quote and
    # copied onto the order line, so a configured product survives into the order.
    context = Text(default="")
    # The position of the line this one is a part of (a bill of materials), else empty.
    parent_position = Integer(null=True, default=None)


class QuoteAdjustment(Table, tablename="sales_quote_adjustment"):
    """A named, explained reduction another plugin puts on a quote (a loyalty voucher).

    ``amount`` is what it takes off the total (positive), already bounded when stored so the
    quote's total never goes below zero.
    """

    quote = ForeignKey(Quote, index=True)
    position = Integer(default=0)
    source = Varchar(length=64)  # the plugin's adjustment source id, e.g. "loyalty"
    source_ref = Varchar(length=64, default="")  # e.g. the voucher
    label = Varchar(length=200)
    explanation = Varchar(length=500, default="")
    amount = Numeric(digits=MONEY, default=Decimal(0))
    context = Text(default="")  # JSON object ("" when none)


class SalesOrder(Table, tablename="sales_order"):
    """An order: from an accepted quote, taken by staff (telesales) or sent through the API.

    ``status`` follows ``plugins.sales.orders.WORKFLOW``; the amounts are as ordered (a
    cancellation, shipment or return never rewrites them: the lines carry those quantities).
    """

    id: Serial
    number = Varchar(length=40, unique=True)
    quote = ForeignKey(Quote, null=True, default=None)
    customer = ForeignKey(Customer, index=True)
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    status = Varchar(length=20, default="open", index=True)
    channel = Varchar(length=20, default="quote")  # quote, phone, web shop, till, api
    currency = Varchar(length=3, default="EUR")
    net_amount = Numeric(digits=MONEY, default=Decimal(0))  # after discounts, before tax
    discount_amount = Numeric(digits=MONEY, default=Decimal(0))
    tax_amount = Numeric(digits=MONEY, default=Decimal(0))
    total_amount = Numeric(digits=MONEY, default=Decimal(0))  # with tax
    notes = Text(default="")
    # Who accepted for the customer, how and when (a quote accepted on the phone or by mail).
    accepted_by = Varchar(length=200, default="")
    accepted_via = Varchar(length=20, default="")
    accepted_at = Timestamptz(null=True, default=None)
    # The API's Idempotency-Key (per caller) and a digest of the request it created the order
    # from: a retry with the same key answers this order instead of creating a second one.
    # Unique through sales_order_idempotency_idx (SQLite cannot add a UNIQUE column).
    idempotency_key = Varchar(length=200, null=True, default=None)
    request_digest = Varchar(length=64, default="")
    cancel_reason = Text(default="")
    ordered_at = Timestamptz(default=TimestamptzNow(), index=True)
    confirmed_at = Timestamptz(null=True, default=None)
    fulfilled_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class OrderLine(Table, tablename="sales_order_line"):
    """One ordered line. ``quantity`` never changes; what happened to it is counted in
    ``shipped``, ``cancelled`` and ``returned`` (shipped + cancelled <= quantity, returned <=
    shipped), updated in the transaction of each shipment, cancellation and return."""

    sales_order = ForeignKey(SalesOrder, index=True)
    position = Integer(default=0)
    product = ForeignKey(Product, null=True, default=None, index=True)
    source = Varchar(length=64, default="product")  # copied from the quote line
    source_ref = Varchar(length=64, default="")
    sku = Varchar(length=64, default="")
    context = Text(default="")  # JSON the line's source attached (a configuration), copied
    parent_position = Integer(null=True, default=None)  # a part of another line (BOM)
    description = Varchar(length=500)
    quantity = Numeric(digits=(12, 3), default=Decimal(1))
    unit_price = Numeric(digits=MONEY)
    discount_percent = Numeric(digits=(5, 2), default=Decimal(0))
    tax_percent = Numeric(digits=(5, 2), default=Decimal(0))
    net_amount = Numeric(digits=MONEY, default=Decimal(0))  # after discount, before tax
    tax_amount = Numeric(digits=MONEY, default=Decimal(0))
    shipped = Numeric(digits=(12, 3), default=Decimal(0))
    cancelled = Numeric(digits=(12, 3), default=Decimal(0))
    returned = Numeric(digits=(12, 3), default=Decimal(0))


class Shipment(Table, tablename="sales_shipment"):
    """Goods sent for an order: which lines, how many (``sales_shipment_line``)."""

    id: Serial
    sales_order = ForeignKey(SalesOrder, index=True)
    number = Varchar(length=40, default="")
    carrier = Varchar(length=100, default="")
    tracking = Varchar(length=200, default="")
    note = Text(default="")
    shipped_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(User, null=True, default=None)


class ShipmentLine(Table, tablename="sales_shipment_line"):
    shipment = ForeignKey(Shipment, index=True)
    order_line = ForeignKey(OrderLine, index=True)
    quantity = Numeric(digits=(12, 3))


class OrderReturn(Table, tablename="sales_return"):
    """Delivered goods coming back, with the customer's reason; refunds are recorded against
    it up to the value returned. ``requested_via``: portal (the customer asked) or staff."""

    id: Serial
    sales_order = ForeignKey(SalesOrder, index=True)
    number = Varchar(length=40, default="")
    status = Varchar(length=12, default="open")  # open, refunded
    reason = Text(default="")
    requested_via = Varchar(length=10, default="staff")
    currency = Varchar(length=3, default="EUR")
    total_amount = Numeric(digits=MONEY, default=Decimal(0))  # value returned, with tax
    refunded_amount = Numeric(digits=MONEY, default=Decimal(0))
    created_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(User, null=True, default=None)


class ReturnLine(Table, tablename="sales_return_line"):
    sales_return = ForeignKey(OrderReturn, index=True)
    order_line = ForeignKey(OrderLine, index=True)
    quantity = Numeric(digits=(12, 3))
    net_amount = Numeric(digits=MONEY, default=Decimal(0))
    tax_amount = Numeric(digits=MONEY, default=Decimal(0))


class Refund(Table, tablename="sales_refund"):
    """Money paid back against a return (never more than the return is worth)."""

    id: Serial
    sales_return = ForeignKey(OrderReturn, index=True)
    sales_order = ForeignKey(SalesOrder, index=True)
    amount = Numeric(digits=MONEY)
    currency = Varchar(length=3, default="EUR")
    method = Varchar(length=20, default="")  # bank transfer, card, cash, voucher
    reference = Varchar(length=200, default="")
    note = Text(default="")
    refunded_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(User, null=True, default=None)


# --- Telesales --------------------------------------------------------------------------------


class CallList(Table, tablename="sales_call_list"):
    """A list of people to call, built once from a filter, worked through one by one."""

    id: Serial
    name = Varchar(length=200)
    kind = Varchar(length=10)  # "customers" or "leads"
    criteria = Varchar(length=500, default="")  # the filter it was built from, for people
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    created_at = Timestamptz(default=TimestamptzNow())


class CallListEntry(Table, tablename="sales_call_entry"):
    call_list = ForeignKey(CallList, index=True)
    position = Integer(default=0)
    customer = ForeignKey(Customer, null=True, default=None)
    lead = ForeignKey(Lead, null=True, default=None)
    status = Varchar(length=10, default="pending")  # pending, done, skipped, blocked
    outcome = Varchar(length=100, default="")
    note = Varchar(length=300, default="")  # why it was blocked or skipped
    called_at = Timestamptz(null=True, default=None)


# --- Bundles, targets, product documents -----------------------------------------------------


class Bundle(Table, tablename="sales_bundle"):
    """A set of 2 or 3 products often bought together, mined from order history.

    Precomputed (``rapport sales bundles`` or after new orders, at most once per
    ``bundle_refresh_minutes``) so the 360 panel and the quote editor read a few indexed rows
    instead of mining orders on every page. ``product_c`` is empty for pairs.
    """

    product_a = Integer(index=True)
    product_b = Integer(index=True)
    product_c = Integer(null=True, default=None, index=True)
    size = Integer(default=2)
    orders = Integer(default=0)  # orders holding every product of the bundle
    support = Numeric(digits=(9, 6), default=Decimal(0))
    confidence = Numeric(digits=(9, 6), default=Decimal(0))
    lift = Numeric(digits=(12, 4), default=Decimal(0))


class AssociationRule(Table, tablename="sales_association_rule"):
    """"Customers who bought ``antecedent`` also bought ``consequent``": the cross-sell rules,
    mined with the bundles (same run, same orders) so pages never scan order lines."""

    antecedent = Integer(index=True)
    consequent = Integer()
    orders = Integer(default=0)  # orders holding both
    support = Numeric(digits=(9, 6), default=Decimal(0))
    confidence = Numeric(digits=(9, 6), default=Decimal(0))
    lift = Numeric(digits=(12, 4), default=Decimal(0))


class BundleRun(Table, tablename="sales_bundle_run"):
    """When bundles were last mined, and from how many orders."""

    computed_at = Timestamptz(default=TimestamptzNow(), index=True)
    orders_considered = Integer(default=0)
    bundles = Integer(default=0)
    milliseconds = Integer(default=0)


class SalesTarget(Table, tablename="sales_target"):
    """What a representative (``owner``) or a team should win in one month or quarter.

    Exactly one of ``owner`` and ``team`` is set; ``period_start`` is the first day of the
    period. Scoped like opportunities (own = targets of mine, team = my teams' and mine).
    """

    id: Serial
    period_kind = Varchar(length=8, default="quarter")  # month, quarter
    period_start = Date(index=True)
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    currency = Varchar(length=3, default="EUR")
    amount = Numeric(digits=MONEY, default=Decimal(0))
    created_at = Timestamptz(default=TimestamptzNow())


class ProductDocument(Table, tablename="sales_product_document"):
    """A manual or data sheet of a product, stored under the data directory
    (``<data_dir>/sales/documents/<stored_name>``); public ones show in the portal."""

    id: Serial
    product = ForeignKey(Product, index=True)
    title = Varchar(length=200)
    filename = Varchar(length=255)  # as uploaded, for the download
    stored_name = Varchar(length=64, unique=True)  # random, never derived from user input
    content_type = Varchar(length=100)
    size = Integer(default=0)
    public = Boolean(default=False)
    uploaded_by = ForeignKey(User, null=True, default=None)
    uploaded_at = Timestamptz(default=TimestamptzNow())


TABLES: list[type[Table]] = [
    Lead, LeadActivity, ScoringRule, AssignmentRule, Pipeline, Stage, Opportunity, StageChange,
    ProductCategory, Product, PriceBook, ProductPrice, RelatedProduct, OpportunityProduct,
    Quote, QuoteLine, QuoteAdjustment, SalesOrder, OrderLine, Shipment, ShipmentLine, OrderReturn, ReturnLine,
    Refund, CallList, CallListEntry, Bundle, BundleRun,
    AssociationRule, SalesTarget, ProductDocument,
]

PERSONAL_DATA: dict[type[Table], tuple[str, ...]] = {
    Lead: ("first_name", "last_name", "email", "phone", "message", "job_title"),
    LeadActivity: ("subject", "notes"),
}
