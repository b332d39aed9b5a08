"""Fixtures for the analytics plugin's tests: the plugin found even where the environment's
entry points predate it, customers and orders written directly (hand-computable data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

# Orders are placed relative to the present, so the job path (which uses the clock) agrees.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def analytics_installed(monkeypatch):
    import core.loader as loader

    original = loader.installed_plugins

    def installed():
        found = original()
        if "analytics" not in found:
            import plugins.analytics.plugin as module

            found["analytics"] = module
        return found

    monkeypatch.setattr(loader, "installed_plugins", installed)


async def new_customer(name: str, owner: int | None = None, team: int | None = None) -> int:
    from core.customers.tables import Customer

    rows = await Customer.insert(Customer(kind="contact", name=name, owner=owner, team=team,
                                          primary_email=name.split()[0].lower() + "@example.test")
                                 ).returning(Customer.id).run()
    return rows[0]["id"]


_numbers = iter(range(1, 10 ** 6))


async def orders(customer_id: int, *days_ago_and_amounts, status: str = "completed",
                 currency: str = "EUR") -> None:
    """Orders ``(days before NOW, net amount)`` for one customer."""
    from plugins.sales.tables import SalesOrder

    for days, amount in days_ago_and_amounts:
        await SalesOrder.insert(SalesOrder(
            number=f"T-{next(_numbers)}", customer=customer_id, status=status, currency=currency,
            net_amount=Decimal(str(amount)), total_amount=Decimal(str(amount)),
            ordered_at=NOW - timedelta(days=days))).run()
