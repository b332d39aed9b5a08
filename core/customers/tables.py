"""Customers: accounts (organisations) and contacts (people) in one table, so that owners,
tags, lifecycle, the timeline, search and permissions work the same for both.

Personal-data columns are listed in ``PERSONAL_DATA`` so privacy export and erasure are
complete by construction.
"""

from __future__ import annotations

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

from core.identity.tables import Team, User

KINDS = ("account", "contact")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned")
CHANNELS = ("call", "email", "meeting", "visit", "chat", "sms", "letter", "web", "portal",
            "push", "social")


class Customer(Table, tablename="core_customer"):
    id: Serial
    kind = Varchar(length=10, choices=None)  # "account" or "contact"
    name = Varchar(length=300)  # an organisation's name, or "First Last" for a person
    first_name = Varchar(length=150, default="")
    last_name = Varchar(length=150, default="")
    job_title = Varchar(length=150, default="")
    account = ForeignKey("self", null=True, default=None, index=True)  # a contact's organisation
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    lifecycle_stage = Varchar(length=20, default="lead", index=True)
    source = Varchar(length=100, default="")
    primary_email = Varchar(length=254, default="", index=True)  # normalised (lower case)
    primary_phone = Varchar(length=32, default="", index=True)  # E.164
    website = Varchar(length=300, default="")
    industry = Varchar(length=150, default="")
    notes = Text(default="")
    birthday = Date(null=True, default=None)
    # Communication preferences (contacts): see core.interactions' contact-policy check.
    preferred_channel = Varchar(length=16, default="")
    opted_out_channels = Varchar(length=200, default="")  # comma-separated channel names
    do_not_contact = Boolean(default=False)
    annual_revenue = Numeric(digits=(18, 2), null=True, default=None)
    currency = Varchar(length=3, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow(), index=True)
    erased_at = Timestamptz(null=True, default=None)


class CustomerEmail(Table, tablename="core_customer_email"):
    customer = ForeignKey(Customer, index=True)
    email = Varchar(length=254, index=True)  # normalised
    label = Varchar(length=40, default="work")


class CustomerPhone(Table, tablename="core_customer_phone"):
    customer = ForeignKey(Customer, index=True)
    phone = Varchar(length=32, index=True)  # E.164
    label = Varchar(length=40, default="work")


class CustomerAddress(Table, tablename="core_customer_address"):
    customer = ForeignKey(Customer, index=True)
    label = Varchar(length=40, default="main")
    street = Varchar(length=300, default="")
    city = Varchar(length=150, default="")
    region = Varchar(length=150, default="")
    postcode = Varchar(length=30, default="")
    country = Varchar(length=2, default="")  # ISO 3166-1 alpha-2
    latitude = Numeric(digits=(9, 6), null=True, default=None)
    longitude = Numeric(digits=(9, 6), null=True, default=None)


class CustomerTag(Table, tablename="core_customer_tag"):
    customer = ForeignKey(Customer, index=True)
    tag = Varchar(length=64, index=True)


class ConsentRecord(Table, tablename="core_consent_record"):
    """Append-only log of consent given or withdrawn: what, when, through which source."""

    customer = ForeignKey(Customer, index=True)
    purpose = Varchar(length=100)  # e.g. "marketing", "newsletter", "profiling"
    channel = Varchar(length=16, default="")
    granted = Boolean()
    source = Varchar(length=100)  # e.g. "portal", "web form", "phone call", "import"
    recorded_at = Timestamptz(default=TimestamptzNow(), index=True)
    recorded_by = ForeignKey(User, null=True, default=None)


CUSTOM_FIELD_TYPES = ("text", "number", "money", "date", "choice", "multi_choice", "boolean",
                      "url")
CUSTOM_FIELD_APPLIES_TO = ("both", "account", "contact")


class CustomField(Table, tablename="core_custom_field"):
    """A field an administrator adds to accounts and/or contacts (``/admin/custom-fields``)."""

    id: Serial
    key = Varchar(length=64, unique=True)  # machine name: API key and CSV column ``cf_<key>``
    label = Varchar(length=150)
    field_type = Varchar(length=16)  # one of CUSTOM_FIELD_TYPES
    applies_to = Varchar(length=10, default="both")  # one of CUSTOM_FIELD_APPLIES_TO
    required = Boolean(default=False)
    choices = Text(default="")  # choice / multi_choice: one option per line
    position = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())


class CustomValue(Table, tablename="core_custom_value"):
    """One value of a custom field for one customer, in a typed column so that lists can
    filter on it through an index on (field, value). A multi-choice value is one row per
    chosen option; a boolean is stored as 0/1 in ``value_number``."""

    customer = ForeignKey(Customer, index=True)
    field = ForeignKey(CustomField)
    value_text = Varchar(length=500, default="")  # text, url, choice, multi_choice
    value_number = Numeric(digits=(20, 4), null=True, default=None)  # number, money, boolean
    value_date = Date(null=True, default=None)
    currency = Varchar(length=3, default="")  # money


PERSONAL_DATA: dict[type[Table], tuple[str, ...]] = {
    Customer: ("name", "first_name", "last_name", "job_title", "primary_email", "primary_phone", "notes",
               "birthday"),
    CustomerEmail: ("email",),
    CustomerPhone: ("phone",),
    CustomerAddress: ("street", "city", "region", "postcode", "latitude", "longitude"),
    CustomValue: ("value_text", "value_number", "value_date"),
}
