"""Loyalty tables: programs, their members, the points ledger and its lots, earning rules,
tiers, the rewards catalogue and the vouchers redemption issues.

Every table is prefixed ``loyalty_``. The ledger is append-only: a row is never changed or
deleted; a member's balance is the sum of its rows and is kept in the member's summary row
(``balance``, ``pending``, lifetime totals), updated in the same transaction as the ledger row.
Lots (``loyalty_lot``) are the bookkeeping of which earned points are still there to spend or
expire, first earned first spent; they change as points are spent, never the ledger.
"""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import (
    JSON,
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
from core.identity.tables import User

PROGRAM_KINDS = ("points", "stamps", "wallet")
RULE_KINDS = ("per_currency_unit", "per_purchase", "product_multiplier",
              "category_multiplier", "first_purchase", "birthday", "referral", "touch_point",
              "promotion")
REWARD_KINDS = ("discount_voucher", "free_product", "gift", "partner")
LEDGER_KINDS = ("earn", "reverse", "redeem", "expire", "adjust", "transfer", "merge",
                "refund")
LOT_STATES = ("pending", "available", "closed")
VOUCHER_STATES = ("issued", "used", "expired", "cancelled")
TIER_BASES = ("points", "spend")


class Program(Table, tablename="loyalty_program"):
    """A loyalty program: how points are earned, kept, valued and spent."""

    id: Serial
    name = Varchar(length=150, unique=True)
    kind = Varchar(length=16, default="points")
    active = Boolean(default=True)
    currency = Varchar(length=3, default="EUR")  # of spend and of point_value
    point_value = Numeric(digits=(12, 4), default=Decimal("0"))  # what one point is worth (liability)
    terms = Text(default="")  # what a member agrees to, recorded with their consent
    terms_version = Varchar(length=40, default="1")
    card_prefix = Varchar(length=8, default="")
    pending_days = Integer(default=0)  # points from orders usable after this many days
    pending_until_fulfilled = Boolean(default=False)  # ... or once the order is shipped
    expiry_months = Integer(default=0)  # 0: points never expire
    expiry_notice_days = Integer(default=30)
    allow_negative = Boolean(default=False)  # may a reversal take the balance below zero
    allow_pooling = Boolean(default=False)  # may an account's contacts share one balance
    tier_basis = Varchar(length=8, default="points")  # qualifying points or spend
    tier_window_days = Integer(default=365)
    tier_grace_days = Integer(default=30)
    created_at = Timestamptz(default=TimestamptzNow())


class Tier(Table, tablename="loyalty_tier"):
    program = ForeignKey(Program, index=True)
    name = Varchar(length=80)
    threshold = Integer(default=0)  # qualifying points (or spend, in whole units) to reach it
    multiplier = Numeric(digits=(6, 3), default=Decimal("1"))
    discount_percent = Numeric(digits=(5, 2), default=Decimal("0"))
    free_shipping = Boolean(default=False)
    perks = Text(default="")  # one per line


class Member(Table, tablename="loyalty_member"):
    """A customer in a program, and the summary of their points (kept with every ledger row)."""

    id: Serial
    program = ForeignKey(Program, index=True)
    customer = ForeignKey(Customer, index=True)
    card_number = Varchar(length=32, unique=True)
    referral_code = Varchar(length=16, unique=True)
    referred_by = ForeignKey("self", null=True, default=None)
    pool = ForeignKey("self", null=True, default=None, index=True)  # whose balance is shared
    status = Varchar(length=12, default="active")  # active, closed
    enrolled_at = Timestamptz(default=TimestamptzNow())
    enrolled_via = Varchar(length=16, default="staff")  # staff, portal, api
    terms_version = Varchar(length=40, default="")
    consent_record = Integer(null=True, default=None)  # core_consent_record id
    tier = ForeignKey(Tier, null=True, default=None, index=True)
    tier_since = Timestamptz(null=True, default=None)
    tier_grace_until = Timestamptz(null=True, default=None)  # downgrade waits until then
    qualifying = Integer(default=0)  # points or spend in the tier window, at the last check
    balance = Integer(default=0)  # available points
    pending = Integer(default=0)  # earned, not yet available
    earned_total = Integer(default=0)
    spent_total = Integer(default=0)
    expired_total = Integer(default=0)
    orders_count = Integer(default=0)
    expiry_noticed_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow(), index=True)


class Ledger(Table, tablename="loyalty_ledger"):
    """One change of a member's points, with its reason in words. Never changed or deleted."""

    id: Serial
    program = ForeignKey(Program, index=True)
    member = ForeignKey(Member, index=True)  # the wallet: the pool's member when pooled
    earned_by = ForeignKey(Member, null=True, default=None, index=True)  # who earned it
    kind = Varchar(length=12)
    points = Integer()  # signed
    pending = Boolean(default=False)  # an earning not yet available when written
    source = Varchar(length=24, default="")  # order, api, manual, reward, referral, ...
    source_ref = Varchar(length=120, default="", index=True)
    idempotency_key = Varchar(length=160, null=True, default=None, unique=True)
    explanation = Text(default="")
    reason = Text(default="")  # what staff typed for a manual change
    amount = Numeric(digits=(14, 4), null=True, default=None)  # money it was earned on
    currency = Varchar(length=3, default="")
    detail = JSON(default="{}")  # per line exact points, rules applied, lots touched
    actor = ForeignKey(User, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class Lot(Table, tablename="loyalty_lot"):
    """Earned points still to spend or expire, first earned first spent."""

    id: Serial
    member = ForeignKey(Member, index=True)
    ledger = ForeignKey(Ledger, index=True)
    points = Integer()
    remaining = Integer()
    state = Varchar(length=10, default="available", index=True)
    available_at = Timestamptz(null=True, default=None)  # pending until (None: on fulfilment)
    expires_at = Timestamptz(null=True, default=None, index=True)
    source_ref = Varchar(length=120, default="", index=True)


class Rule(Table, tablename="loyalty_rule"):
    """An earning rule an administrator edits: how many points, for what, when."""

    id: Serial
    program = ForeignKey(Program, index=True)
    kind = Varchar(length=24)
    name = Varchar(length=150)
    active = Boolean(default=True)
    points = Numeric(digits=(12, 4), default=Decimal("0"))  # per unit, or a fixed bonus
    extra_points = Numeric(digits=(12, 4), default=Decimal("0"))  # referral: the new member's bonus
    multiplier = Numeric(digits=(6, 3), default=Decimal("1"))
    product_id = Integer(null=True, default=None)
    sku = Varchar(length=64, default="")
    category_id = Integer(null=True, default=None)
    touch_kind = Varchar(length=40, default="")  # the interaction purpose that earns (review)
    starts_on = Date(null=True, default=None)
    ends_on = Date(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Reward(Table, tablename="loyalty_reward"):
    id: Serial
    program = ForeignKey(Program, index=True)
    name = Varchar(length=150)
    description = Text(default="")
    kind = Varchar(length=20, default="discount_voucher")
    cost = Integer()  # points
    value = Numeric(digits=(12, 2), default=Decimal("0"))  # a discount voucher's worth, with tax
    stock = Integer(null=True, default=None)  # None: unlimited
    per_member_limit = Integer(null=True, default=None)
    min_tier = ForeignKey(Tier, null=True, default=None)
    valid_days = Integer(default=90)
    active = Boolean(default=True)
    issued_count = Integer(default=0)


class Voucher(Table, tablename="loyalty_voucher"):
    id: Serial
    program = ForeignKey(Program, index=True)
    member = ForeignKey(Member, index=True)
    reward = ForeignKey(Reward, index=True)
    code = Varchar(length=32, unique=True)
    value = Numeric(digits=(12, 2), default=Decimal("0"))
    currency = Varchar(length=3, default="")
    status = Varchar(length=10, default="issued", index=True)
    issued_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None, index=True)
    used_at = Timestamptz(null=True, default=None)
    used_ref = Varchar(length=120, default="")  # the order, or the till's transaction
    used_by = Varchar(length=120, default="")  # which till or channel
    ledger = ForeignKey(Ledger, null=True, default=None)


class MonthlyStat(Table, tablename="loyalty_month"):
    """Earn, burn and expiry per program and month, kept as rows change (the widgets read
    these, never the ledger)."""

    program = ForeignKey(Program, index=True)
    month = Varchar(length=7)  # 2026-12
    earned = Integer(default=0)
    spent = Integer(default=0)
    expired = Integer(default=0)
    reversed = Integer(default=0)
    vouchers_issued = Integer(default=0)
    vouchers_used = Integer(default=0)


TABLES = (Program, Tier, Member, Ledger, Lot, Rule, Reward, Voucher, MonthlyStat)
