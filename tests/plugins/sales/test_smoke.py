from __future__ import annotations


async def test_sales_pages_open_for_an_administrator(sales_client):
    for path in ["/sales/leads", "/sales/leads/new", "/sales/leads/import", "/sales/rules",
                 "/sales/board", "/sales/opportunities", "/sales/opportunities/new",
                 "/sales/products", "/sales/quotes", "/sales/quotes/new",
                 "/sales/widgets/my-leads", "/sales/widgets/pipeline", "/sales/widgets/win-rate",
                 "/sales/web-to-lead", "/sales/calls", "/sales/forecast", "/"]:
        response = await sales_client.get(path)
        assert response.status_code == 200, (path, response.text[:2000])
