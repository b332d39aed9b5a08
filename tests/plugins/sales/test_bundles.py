"""Bundles bought together: mined from order history into a table, shown with the reason on the
360° panel, in the quote editor and the API; refreshed by the CLI and after new orders."""

from __future__ import annotations

from decimal import Decimal

from tests.plugins.sales.conftest import new_customer
from tests.plugins.sales.test_forecast_and_suggestions import order


async def _catalogue(*skus: str) -> dict[str, int]:
    from plugins.sales.tables import Product

    ids = {}
    for sku in skus:
        ids[sku] = (await Product.insert(Product(sku=sku, name=sku.title())).returning(
            Product.id).run())[0]["id"]
    return ids


def test_mining_finds_pairs_and_triples_above_the_thresholds():
    from plugins.sales.bundles import Thresholds, mine

    a, b, c, d = 1, 2, 3, 4
    baskets = [frozenset(x) for x in (
        [a, b, c], [a, b, c], [a, b, c], [a, b], [d], [d], [d], [d], [c, d], [a])]
    found = {b_["items"]: b_ for b_ in mine(baskets, Thresholds(min_orders=3))}
    assert set(found) == {(a, b), (a, c), (b, c), (a, b, c)}  # (c, d) is in one order only
    triple = found[(a, b, c)]
    assert triple["orders"] == 3 and triple["support"] == Decimal("0.3")
    # Best rule {a, c} -> b (or {b, c} -> a...): confidence 1, lift 1 / (4/10) = 2.5.
    assert triple["confidence"] == Decimal("1") and triple["lift"] == Decimal("2.5")
    assert found[(a, b)]["lift"] == Decimal("2.0")  # P(b|a)=4/5=0.8 / P(b)=0.4
    # Lift under the threshold drops a bundle even with enough orders.
    assert mine(baskets, Thresholds(min_orders=3, min_lift=Decimal("3"))) == []


async def test_bundles_are_suggested_with_the_reason_on_the_panel_quote_editor_and_api(
        sales_client):
    from plugins.sales import bundles
    from plugins.sales.tables import Bundle, BundleRun

    ids = await _catalogue("TENT", "STOVE", "MAT", "KAYAK")
    shoppers = [await new_customer(f"Camper {i}") for i in range(5)]
    for customer in shoppers[:4]:
        await order(customer, [ids["TENT"], ids["STOVE"], ids["MAT"]])
    for _ in range(4):
        await order(shoppers[4], [ids["KAYAK"]])
    result = await bundles.refresh(bundles.Thresholds(min_orders=3))
    assert result["orders"] == 8 and result["bundles"] == 4
    assert await Bundle.count().run() == 4 and await BundleRun.count().run() == 1

    buyer = await new_customer("Tent buyer")
    await order(buyer, [ids["TENT"]])
    panel = await sales_client.get(f"/sales/panels/customer/{buyer}/suggestions")
    assert "Stove + Mat" in panel.text
    assert "bought together with Tent in 4 orders, lift 2.0" in panel.text
    editor = await sales_client.get(f"/sales/quotes/new?customer={buyer}")
    assert "bought together with Tent in 4 orders" in editor.text
    api = (await sales_client.get(f"/api/v1/sales/customers/{buyer}/suggestions")).json()
    bundle = next(s for s in api["items"] if s["kind"] == "bundle")
    assert bundle["orders"] == 4 and Decimal(bundle["lift"]) == 2
    # Someone who bought nothing from a bundle gets none of it.
    kayaker = shoppers[4]
    api = (await sales_client.get(f"/api/v1/sales/customers/{kayaker}/suggestions")).json()
    assert [s for s in api["items"] if s["kind"] == "bundle"] == []
    # A bundle the buyer already completed is not suggested.
    await order(buyer, [ids["STOVE"], ids["MAT"]])
    panel = await sales_client.get(f"/sales/panels/customer/{buyer}/suggestions")
    assert "bought together" not in panel.text


async def test_the_latest_orders_cap_bounds_what_is_mined(sales_client):
    from plugins.sales import bundles

    ids = await _catalogue("OLD-A", "OLD-B", "NEW")
    customer = await new_customer()
    for _ in range(5):
        await order(customer, [ids["OLD-A"], ids["OLD-B"]])
    for _ in range(5):
        await order(customer, [ids["NEW"]])
    result = await bundles.refresh(bundles.Thresholds(orders=5, min_orders=2))
    assert result == {**result, "orders": 5, "bundles": 0}  # the old pairs are beyond the cap
    result = await bundles.refresh(bundles.Thresholds(orders=10, min_orders=2,
                                                      min_lift=Decimal("1.1")))
    assert result["bundles"] == 1


async def test_a_new_order_refreshes_bundles_when_due(sales_client):
    from core import jobs
    from core.jobs_tables import JobRow
    from plugins.sales import bundles
    from plugins.sales.tables import BundleRun

    rapport = sales_client.rapport
    await bundles.refresh_if_due(rapport)
    await bundles.refresh_if_due(rapport)  # a second order while the job waits joins it
    assert await JobRow.count().where(JobRow.name == "sales.bundles.refresh").run() == 1
    await jobs.run_pending(rapport)
    assert await BundleRun.count().run() == 1
    await bundles.refresh_if_due(rapport)  # the last run is fresh: nothing to do
    await jobs.run_pending(rapport)
    assert await BundleRun.count().run() == 1
    assert await JobRow.count().where(JobRow.name == "sales.bundles.refresh").run() == 1


async def test_a_refresh_job_run_twice_mines_once(sales_client):
    from core import jobs
    from plugins.sales import bundles
    from plugins.sales.tables import BundleRun

    rapport = sales_client.rapport
    await jobs.enqueue(rapport, "sales.bundles.refresh")
    await jobs.run_pending(rapport)
    # As if a worker died after mining and the job ran again: the fresh run is kept.
    await bundles.refresh_job(rapport, None)
    assert await BundleRun.count().run() == 1


async def test_the_cli_command_mines_bundles(sales_client):
    import asyncio

    from click.testing import CliRunner

    from core.app import Rapport
    from core.cli import cli
    from plugins.sales.tables import BundleRun

    ids = await _catalogue("A", "B", "C")
    customer = await new_customer()
    for _ in range(3):
        await order(customer, [ids["A"], ids["B"]])
    await order(customer, [ids["C"]])
    cli_rapport = Rapport(sales_client.rapport.settings, plugins=["sales"])
    cli_rapport.pm.hook.register_commands(cli=cli)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["sales", "bundles"],
                                     obj={"rapport": cli_rapport})
    sales_client.rapport.activate()
    assert result.exit_code == 0, result.output
    assert "1 bundles from 4 orders" in result.output
    assert await BundleRun.count().run() == 1
