"""The analytics plugin's summary tables: computed by the refresh job (``analytics.refresh``)
and kept current per customer by order events, so no page ever scans orders.

``analytics_customer`` copies the customer's owner and team, so core's row-level filter
(:func:`core.permissions.scoped`) applies to it directly: a representative's figures cover the
customers they may see.
"""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import (
    Boolean,
    Date,
    Float,
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

MONEY = (18, 2)


class CustomerValue(Table, tablename="analytics_customer"):
    """One row per customer with at least one order: RFM scores and segment, historic and
    predicted value, churn risk with its reasons."""

    id: Serial
    customer = ForeignKey(Customer, index=True)  # unique: analytics_customer_customer_idx
    owner = ForeignKey(User, null=True, default=None, index=True)
    team = ForeignKey(Team, null=True, default=None, index=True)
    currency = Varchar(length=3, default="")
    first_order_at = Timestamptz(null=True, default=None)
    last_order_at = Timestamptz(null=True, default=None)
    orders = Integer(default=0)
    revenue = Numeric(digits=MONEY, default=Decimal(0))  # historic value, net of tax
    average_order = Numeric(digits=MONEY, default=Decimal(0))
    recency_days = Integer(default=0)
    r_score = Integer(default=1)
    f_score = Integer(default=1)
    m_score = Integer(default=1)
    segment = Varchar(length=30, default="", index=True)
    previous_segment = Varchar(length=30, default="")
    segment_since = Timestamptz(default=TimestamptzNow())
    expected_orders = Float(default=0.0)  # in the next 52 weeks
    predicted_value = Numeric(digits=MONEY, default=Decimal(0))  # the next 52 weeks
    p_alive = Float(default=1.0)
    churn_risk = Integer(default=0, index=True)  # percent, 100 - p_alive
    reasons = Text(default="")  # JSON list of short sentences
    refreshed_at = Timestamptz(default=TimestamptzNow())


class ModelRun(Table, tablename="analytics_model_run"):
    """One full refresh: the fitted model's parameters, the RFM thresholds the incremental
    updates reuse, and the accuracy measured on the hold-out period."""

    id: Serial
    started_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None, index=True)
    complete = Boolean(default=False)
    currency = Varchar(length=3, default="")
    customers = Integer(default=0)
    orders = Integer(default=0)
    params = Text(default="{}")  # JSON: bgnbd, gamma_gamma, thresholds
    accuracy = Text(default="{}")  # JSON: hold-out and back-test measures
    seconds = Float(default=0.0)


class SegmentMonth(Table, tablename="analytics_segment_month"):
    """Customers and revenue per segment as of each month's last refresh (unique per month
    and segment): the segments' movement over time and the unfiltered dashboard's counts."""

    id: Serial
    month = Varchar(length=7)  # YYYY-MM
    segment = Varchar(length=30)
    customers = Integer(default=0)
    revenue = Numeric(digits=MONEY, default=Decimal(0))
    predicted_value = Numeric(digits=MONEY, default=Decimal(0))
    at_risk = Integer(default=0)  # customers with churn risk >= 50 % (values.AT_RISK)


class CohortMonth(Table, tablename="analytics_cohort"):
    """Cohort retention: of the customers whose first order fell in ``cohort`` (YYYY-MM), how
    many ordered again in month ``age`` after it (0 = the first month)."""

    id: Serial
    cohort = Varchar(length=7)
    age = Integer(default=0)
    customers = Integer(default=0)
    size = Integer(default=0)
    computed_on = Date(null=True, default=None)


TABLES = (CustomerValue, ModelRun, SegmentMonth, CohortMonth)
