"""Configurator tables: product models (a draft being edited), their published versions
(immutable definitions) and the configurations customers and staff save.

A model's definition is one JSON document (attributes, options, rules; see
docs/plugins/configurator.md): it is read and solved whole, never queried by its parts, and a
published version must never change, which one stored document guarantees. Configurations
store choices, not variants, and name the version they were made against.
"""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Numeric,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import Team, User

MODEL_STATUSES = ("draft", "published", "retired")


class ProductModel(Table, tablename="configurator_model"):
    """A configurable product; ``draft`` is the definition being edited (JSON)."""

    id: Serial
    code = Varchar(length=40, unique=True)  # also the start of configuration codes
    name = Varchar(length=200)
    description = Text(default="")
    draft = Text(default="{}")
    status = Varchar(length=20, default="draft")
    current_version = Integer(null=True, default=None)  # number of the latest published
    updated_by = ForeignKey(User, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ModelVersion(Table, tablename="configurator_model_version"):
    """A published, immutable definition. ``retired``: no new configurations against it."""

    id: Serial
    model = ForeignKey(ProductModel, index=True)
    number = Integer()
    definition = Text()
    digest = Varchar(length=64, default="")
    retired = Boolean(default=False)
    published_by = ForeignKey(User, null=True)
    published_at = Timestamptz(default=TimestamptzNow())


class Configuration(Table, tablename="configurator_configuration"):
    """Saved choices for one version, optionally for a customer; price and code as saved."""

    id: Serial
    model = ForeignKey(ProductModel, index=True)
    version = ForeignKey(ModelVersion)
    customer = ForeignKey(Customer, null=True, index=True)
    name = Varchar(length=200, default="")
    code = Varchar(length=80, default="")
    choices = Text(default="{}")
    quantity = Numeric(digits=(12, 3), default=Decimal(1))
    currency = Varchar(length=3, default="EUR")
    unit_price = Numeric(digits=(14, 2), default=Decimal(0))
    total = Numeric(digits=(14, 2), default=Decimal(0))
    created_via = Varchar(length=20, default="staff")  # staff or portal
    created_by = ForeignKey(User, null=True)
    # Row-level scopes, as for quotes: who saved it (a portal save: the customer's owner)
    # and the customer's team.
    owner = ForeignKey(User, null=True, default=None, on_delete=OnDelete.set_null)
    team = ForeignKey(Team, null=True, default=None, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


TABLES = (ProductModel, ModelVersion, Configuration)
