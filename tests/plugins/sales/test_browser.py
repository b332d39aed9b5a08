"""The sales forms in a real browser (Debian's Chromium): products are added to and removed
from a deal in place with errors beside the field, and a deal moves on the pipeline board
with the keyboard-friendly stage menu, staying in its new column after a reload."""

from __future__ import annotations

import pytest

from tests.pwa.conftest import CHROMIUM_FLAGS, chromium_path, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sales_server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("sales-browser"), ["sales"],
                 demo_customers=30) as server:
        yield server


async def _open_deal(rapport) -> dict:
    """An open demo deal, and another open stage of its pipeline."""
    from plugins.sales.tables import Opportunity, Stage

    deal = await Opportunity.select().where(Opportunity.status == "open").order_by(
        Opportunity.id).first().run()
    other = await Stage.select().where(
        (Stage.pipeline == deal["pipeline"]) & (Stage.outcome == "open")
        & (Stage.id != deal["stage"])).order_by(Stage.position).first().run()
    return {"id": deal["id"], "other_stage": other["id"], "other_name": other["name"]}


def test_deal_products_and_board_moves_work_in_place(sales_server):
    from playwright.sync_api import sync_playwright

    from core.identity.demo import DEMO_PASSWORD

    base = sales_server.url
    deal = sales_server.run(_open_deal)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/login?next=/sales/opportunities/{deal['id']}")
            page.fill("#email", "admin@example.com")
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/sales/opportunities/{deal['id']}")
            products = page.locator("#deal-products")
            page.select_option("#dp-product", label="Professional licence (CRM-PRO)")
            page.fill("#dp-quantity", "lots")
            products.get_by_role("button", name="Add product").click()
            page.wait_for_selector("#err-dp-quantity")
            assert page.locator("#dp-quantity").get_attribute("aria-invalid") == "true"
            assert page.url.endswith(f"/sales/opportunities/{deal['id']}")  # no reload
            page.fill("#dp-quantity", "2")
            products.get_by_role("button", name="Add product").click()
            row = products.locator("tbody tr", has_text="Professional licence")
            row.wait_for()
            assert "2" in row.locator("td").nth(1).inner_text()
            assert page.locator("#err-dp-quantity").count() == 0
            products.get_by_role("button", name="Remove Professional licence").click()
            products.get_by_text("No products on this deal yet.").wait_for()

            page.goto(f"{base}/sales/board")
            # The stage menu is folded away under "Move" on each card.
            assert not page.locator(f"#stage-{deal['id']}").is_visible()
            page.locator(f"#deal-{deal['id']} summary").click()
            page.select_option(f"#stage-{deal['id']}", str(deal["other_stage"]))
            moved = f".board-cards[data-stage-id='{deal['other_stage']}'] #deal-{deal['id']}"
            page.wait_for_selector(moved)
            page.reload()
            page.wait_for_selector(moved)
            assert page.locator(f"#stage-{deal['id']}").input_value() == str(deal["other_stage"])
        finally:
            browser.close()
