"""Event dispatch after an interaction is recorded: listeners see it by the time the request
returns, a failing listener does not fail the request, and the sales plugin's activity note
reaches deals where the customer is the account *or* the contact (two indexed updates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.plugins.sales.conftest import new_customer, sales_client  # noqa: F401 (fixture)


async def _stale_deal(customer: int, contact: int | None = None, status: str = "open") -> int:
    from plugins.sales.tables import Opportunity

    values = {"name": "Deal", "customer": customer, "status": status,
              "last_activity_at": datetime.now(UTC) - timedelta(days=60)}
    if contact is not None:
        values["contact"] = contact
    rows = await Opportunity.insert(Opportunity(**values)).returning(Opportunity.id).run()
    return rows[0]["id"]


async def _last_activity(deal_id: int) -> datetime:
    from plugins.sales.tables import Opportunity

    row = await Opportunity.select(Opportunity.last_activity_at).where(
        Opportunity.id == deal_id).first().run()
    return row["last_activity_at"]


async def test_posting_an_interaction_with_a_contact_freshens_their_open_deals_only(
        sales_client):  # noqa: F811
    account = await new_customer("Acme Ltd")
    person = await new_customer("Ada Lovelace", kind="contact")
    as_account = await _stale_deal(account)
    as_contact = await _stale_deal(account, contact=person)
    closed = await _stale_deal(person, status="won")
    unrelated = await _stale_deal(await new_customer("Other Ltd"))
    response = await sales_client.post("/api/v1/interactions", json={
        "customer_id": person, "channel": "call", "direction": "outbound", "subject": "Hi"})
    assert response.status_code == 201, response.text
    recent = datetime.now(UTC) - timedelta(days=1)
    # Handled by the time the request returned.
    assert await _last_activity(as_contact) > recent
    assert await _last_activity(closed) < recent
    assert await _last_activity(unrelated) < recent
    assert await _last_activity(as_account) < recent
    response = await sales_client.post("/api/v1/interactions", json={
        "customer_id": account, "channel": "call", "subject": "Hello"})
    assert response.status_code == 201, response.text
    assert await _last_activity(as_account) > recent


async def test_a_failing_listener_does_not_fail_the_request_or_the_others(
        sales_client):  # noqa: F811
    heard: list[str] = []

    async def broken(event):
        raise RuntimeError("listener down")

    async def listen(event):
        heard.append(event.name)

    sales_client.rapport.event_listeners.extend([broken, listen])
    customer = await new_customer()
    deal = await _stale_deal(customer)
    response = await sales_client.post("/api/v1/interactions", json={
        "customer_id": customer, "channel": "email", "subject": "Still here"})
    assert response.status_code == 201, response.text
    assert heard == ["core.interaction.created"]
    assert await _last_activity(deal) > datetime.now(UTC) - timedelta(days=1)
