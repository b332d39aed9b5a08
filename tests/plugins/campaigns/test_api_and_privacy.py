"""The read-only API (segments with their size for the caller, campaigns, a report as
problem-free JSON, 404 as a problem document), and campaigns' part in merging, privacy export
and erasure."""

from __future__ import annotations

from core import jobs
from core.customers.merge import merge_customers
from core.identity.tokens import create_token
from core.privacy.service import erase_customer, export_customer
from plugins.campaigns.tables import Message
from tests.plugins.campaigns.conftest import new_customer
from tests.plugins.campaigns.test_sending import campaign, segment


async def test_api_reports_and_customers_merge_export_and_erase(campaigns_client, smtp_sink):
    client = campaigns_client
    rapport = client.rapport
    ada = await new_customer("Ada Lovelace")
    twin = await new_customer("Ada Twin", email="ada.twin@example.test")
    bob = await new_customer("Bob Byron", opted_out_channels="email")
    segment_id = await segment(client)
    campaign_id, _ = await campaign(client, segment_id)
    assert (await client.post(f"/campaigns/{campaign_id}/send")).status_code == 303
    await jobs.run_pending(rapport)
    assert len(smtp_sink.messages) == 2

    token, _ = await create_token(rapport, client.user_id, name="test")
    api = {"Authorization": f"Bearer {token}"}
    listed = (await client.get("/api/v1/campaigns/segments", headers=api)).json()
    assert listed["items"][0]["rules_in_words"] == "Everyone"
    one = (await client.get(f"/api/v1/campaigns/segments/{segment_id}", headers=api)).json()
    assert one["count"] == 3
    report = (await client.get(f"/api/v1/campaigns/{campaign_id}/report", headers=api)).json()
    assert report["by_state"] == {"sent": 2, "suppressed": 1}
    assert report["reasons"] == [{"reason": "opted_out", "label": "Opted out of e-mail",
                                  "count": 1}]
    missing = await client.get("/api/v1/campaigns/999/report", headers=api)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")

    panel = await client.get(f"/campaigns/panels/customer/{bob}")
    assert "Spring</a>:" in panel.text and "left out (Opted out of e-mail)" in panel.text
    assert (await client.get("/campaigns/panels/customer/99999")).status_code == 404
    page = await client.get(f"/customers/{ada}")
    assert f"/campaigns/panels/customer/{ada}" in page.text

    # Both Adas got the campaign: after the merge the survivor keeps one message.
    await merge_customers(rapport, None, ada, twin)
    rows = await Message.select(Message.customer).where(Message.campaign == campaign_id).run()
    assert sorted(r["customer"] for r in rows) == sorted([ada, bob])

    exported = await export_customer(rapport, ada)
    emails = exported["sections"]["campaign_emails"]
    assert emails[0]["campaign"] == "Spring" and emails[0]["state"] == "sent"

    await erase_customer(rapport, None, ada)
    row = await Message.select().where(Message.customer == ada).first().run()
    assert row["email"] == "" and row["state"] == "sent"
