"""The analytics pages and API as staff meet them: the dashboard, the at-risk list turned
into a tagged call list, the 360° panel, the tile; row-level scope (a representative sees
only their customers' figures) and deny by default."""

from __future__ import annotations

from core.customers.tables import CustomerTag
from plugins.analytics import values
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.analytics.conftest import NOW, new_customer, orders


async def test_dashboard_at_risk_panel_and_api_respect_scope(make_rapport):
    instance = await make_rapport(["sales", "analytics"], {}, debug=True)
    async with app_client(instance) as client:
        boss = await make_user("boss@example.test")
        rep = await make_user("rep@example.test", roles=("field_representative",))
        await make_user("nobody@example.test", roles=())
        mine = await new_customer("Mona Mine", owner=rep)
        await orders(mine, *[(400 + 30 * i, 120) for i in range(8)])
        theirs = await new_customer("Theo Theirs", owner=boss)
        await orders(theirs, *[(420 + 30 * i, 500) for i in range(8)])
        for i in range(12):
            await orders(await new_customer(f"Filler {i}"), (2 + i, 60), (30 + i, 60), (60 + i, 60))
        await values.refresh_all(instance, now=NOW)

        await sign_in(client, "boss@example.test")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        page = await client.get("/analytics")
        assert page.status_code == 200
        assert "Champions" in page.text and "How accurate the predictions are" in page.text
        assert "Theo Theirs" in page.text  # most at risk
        listing = await client.get("/analytics/at-risk")
        assert "Mona Mine" in listing.text and "Theo Theirs" in listing.text
        assert "Filler" not in listing.text  # regular, recent buyers are not at risk
        assert (await client.get("/analytics/at-risk?risk=90")).status_code == 200
        assert '<option value="50" selected>' in listing.text
        assert "No order for 400 days (usually every 30 days)" in listing.text
        assert "€4,000.00" in listing.text  # Theo's revenue, formatted
        tagged = await client.post("/analytics/at-risk/tag", data={}, follow_redirects=False)
        assert tagged.status_code == 303 and "tagged=2" in tagged.headers["location"]
        tags = {r["customer"] for r in await CustomerTag.select().where(
            CustomerTag.tag == "at-risk").run()}
        assert tags == {mine, theirs}
        panel = await client.get(f"/analytics/panels/customer/{theirs}")
        assert "Churn risk" in panel.text and "€4,000.00" in panel.text
        tile = await client.get("/analytics/widgets/segments")
        assert tile.status_code == 200 and "/analytics/at-risk?segment=" in tile.text
        segments_csv = (await client.get("/analytics/segments.csv")).text.splitlines()
        assert segments_csv[0].startswith("Segment,Customers") and len(segments_csv) == 12
        cohorts_csv = (await client.get("/analytics/cohorts.csv")).text.splitlines()
        assert cohorts_csv[0].startswith("First order month,Customers,Month +0 (%)")
        csv_text = (await client.get("/analytics/customers.csv?at_risk=true")).text
        assert csv_text.splitlines()[0].startswith("Customer id,Customer,Segment")
        api = (await client.get("/api/v1/analytics/customers?at_risk=true")).json()
        assert {i["name"] for i in api["items"]} == {"Theo Theirs", "Mona Mine"}
        bad = await client.get("/api/v1/analytics/customers?segment=gold")
        assert bad.status_code == 400 and bad.json()["field"] == "segment"
        model = (await client.get("/api/v1/analytics/model")).json()
        assert model["accuracy"]["enough_data"] is False and "bgnbd" in model["parameters"]

        # A field representative (own scope) sees only their customer, in lists and counts.
        await client.post("/logout", follow_redirects=False)
        await sign_in(client, "rep@example.test")
        listing = await client.get("/analytics/at-risk")
        assert "Mona Mine" in listing.text and "Theo Theirs" not in listing.text
        segments = (await client.get("/api/v1/analytics/segments")).json()["segments"]
        assert sum(s["customers"] for s in segments) == 1
        assert (await client.get(f"/api/v1/analytics/customers/{theirs}")).status_code == 404
        assert (await client.get(f"/api/v1/analytics/customers/{mine}")).status_code == 200
        # Exporting and recomputing are not theirs.
        assert (await client.get("/analytics/customers.csv")).status_code == 403
        assert (await client.post("/analytics/refresh")).status_code == 403

        # Without a role granting analytics, nothing.
        await client.post("/logout", follow_redirects=False)
        await sign_in(client, "nobody@example.test")
        assert (await client.get("/analytics")).status_code == 403
        assert (await client.get("/api/v1/analytics/segments")).status_code == 403
