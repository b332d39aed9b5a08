"""A stand-in plugin for merge tests: its own tables and migrations, and a
``merge_customers`` implementation that folds the merged customer's loyalty card into the
survivor's (one card per customer). Its visits table has no merge logic at all."""

from __future__ import annotations

from pathlib import Path

from piccolo.columns import ForeignKey, Integer, Varchar
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

from core.customers.tables import Customer
from core.plugin import Plugin, hookimpl

plugin = Plugin(id="loyaltyfake", name="Loyalty (test)", version="0")
calls: list[tuple[int, int]] = []
fail_next_merge: list[bool] = []


class LoyaltyCard(Table, tablename="loyaltyfake_card"):
    customer = ForeignKey(Customer)
    points = Integer(default=0)


class LoyaltyVisit(Table, tablename="loyaltyfake_visit"):
    customer = ForeignKey(Customer)
    shop = Varchar(length=50)


APP_CONFIG = AppConfig(
    app_name="loyaltyfake",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[LoyaltyCard, LoyaltyVisit],
    migration_dependencies=["core.customers.piccolo_app"],
)


@hookimpl
def register_piccolo_apps():
    return [APP_CONFIG]


@hookimpl
async def merge_customers(survivor_id, merged_id):
    calls.append((survivor_id, merged_id))
    if fail_next_merge:
        fail_next_merge.clear()
        raise RuntimeError("loyalty cannot merge these customers")
    cards = await LoyaltyCard.select().where(
        LoyaltyCard.customer.is_in([survivor_id, merged_id])).run()
    theirs = [c for c in cards if c["customer"] == merged_id]
    ours = [c for c in cards if c["customer"] == survivor_id]
    if theirs and ours:
        total = sum(c["points"] for c in cards)
        await LoyaltyCard.update({LoyaltyCard.points: total}).where(
            LoyaltyCard.id == ours[0]["id"]).run()
        await LoyaltyCard.delete().where(LoyaltyCard.customer == merged_id).run()
    else:
        await LoyaltyCard.update({LoyaltyCard.customer: survivor_id}).where(
            LoyaltyCard.customer == merged_id).run()
