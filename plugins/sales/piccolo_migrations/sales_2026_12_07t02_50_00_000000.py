"""Written by hand: auto-generation would also pick up other unmigrated changes in flight."""

import decimal

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Integer, Numeric, Serial, Text, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

ID = "2026-12-07T02:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = ("Sales: structured quote lines (sku, JSON context, bill-of-materials parent) and "
               "quote adjustments from other plugins (a loyalty voucher), bounded on the total")


class Quote(Table, tablename="sales_quote", schema=None):
    id = Serial(null=False, primary_key=True, unique=False, index=False,
                index_method=IndexMethod.btree, choices=None, db_column_name="id", secret=False)


def _params(**extra):
    return {"null": False, "primary_key": False, "unique": False, "index": False,
            "index_method": IndexMethod.btree, "choices": None, "db_column_name": None,
            "secret": False, **extra}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="sales", description=DESCRIPTION)

    def column(table_class, tablename, name, column_class, **params):
        manager.add_column(table_class_name=table_class, tablename=tablename, column_name=name,
                           db_column_name=name, column_class_name=column_class.__name__,
                           column_class=column_class, params=_params(**params), schema=None)

    money = {"default": decimal.Decimal("0"), "digits": (18, 4)}
    column("Quote", "sales_quote", "adjustment_amount", Numeric, **money)
    column("QuoteLine", "sales_quote_line", "sku", Varchar, default="", length=64)
    column("QuoteLine", "sales_quote_line", "context", Text, default="")
    column("QuoteLine", "sales_quote_line", "parent_position", Integer, default=None, null=True)

    manager.add_table(class_name="QuoteAdjustment", tablename="sales_quote_adjustment",
                      schema=None, columns=None)
    adjustment = ("QuoteAdjustment", "sales_quote_adjustment")
    column(*adjustment, "quote", ForeignKey, references=Quote, on_delete=OnDelete.cascade,
           on_update=OnUpdate.cascade, target_column=None, null=True, index=True)
    column(*adjustment, "position", Integer, default=0)
    column(*adjustment, "source", Varchar, default="", length=64)
    column(*adjustment, "source_ref", Varchar, default="", length=64)
    column(*adjustment, "label", Varchar, default="", length=200)
    column(*adjustment, "explanation", Varchar, default="", length=500)
    column(*adjustment, "amount", Numeric, **money)
    column(*adjustment, "context", Text, default="")
    return manager
