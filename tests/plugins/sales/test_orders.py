"""The order lifecycle: an order taken on the phone, shipped in part, returned in the portal and
refunded, each step an event with its lines; quotes accepted by staff or in the portal (not once
expired); the workflow's refusals; API idempotency; portal isolation; list scope."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from decimal import Decimal

from tests.conftest import make_user, sign_in
from tests.plugins.sales.conftest import new_customer, post_form
from tests.plugins.sales.test_quotes import (  # noqa: F401 (a fixture)
    as_portal_customer,
    catalogue,
    configurator_plugin,
)


def listen(client) -> list:
    events = []

    async def hear(event):
        events.append(event)

    client.rapport.event_listeners.append(hear)
    return events


def named(events, name: str) -> list:
    return [e for e in events if e.name == name]


async def second_product(sku: str = "G-2", name: str = "Gadget", price: str = "5.00") -> int:
    from plugins.sales.tables import PriceBook, Product, ProductPrice

    book = await PriceBook.select(PriceBook.id).where(PriceBook.is_default == True).first().run()  # noqa: E712
    pid = (await Product.insert(Product(sku=sku, name=name)).returning(Product.id).run())[0]["id"]
    await ProductPrice.insert(ProductPrice(price_book=book["id"], product=pid, currency="EUR",
                                           unit_price=Decimal(price))).run()
    return pid


async def order_lines_of(order_id: int) -> list[dict]:
    from plugins.sales.orders import order_lines

    return await order_lines(order_id)


async def test_phone_order_is_shipped_in_part_returned_in_the_portal_and_refunded(
        sales_client, monkeypatch):
    """The story of issue 14: every step changes the order, and announces itself with the
    lines it touched (quantities, net, tax, gross, currency, customer, owner)."""
    events = listen(sales_client)
    widget = await catalogue()
    gadget = await second_product()
    rep = await make_user("rep@example.test", roles=["sales_representative"],
                          teams=["Phones"])
    customer = await new_customer("Caller Ltd", owner=rep)
    await sign_in(sales_client, "rep@example.test")

    # The representative takes the order on the phone.
    form = await sales_client.get(f"/sales/orders/new?customer={customer}")
    assert form.status_code == 200 and "Caller Ltd" in form.text
    placed = await post_form(sales_client, "/sales/orders", {
        "customer": str(customer), "currency": "EUR", "request_key": "k-1",
        "line1_product": str(widget), "line1_quantity": "3", "line1_discount": "10",
        "line1_tax": "20", "line3_product": str(gadget), "line3_quantity": "2",
        "line3_tax": "20", "notes": "Called about the spring offer"})
    assert placed.status_code == 303, placed.text
    order_url = placed.headers["location"]
    order_id = int(order_url.rsplit("/", 1)[1])
    # A double-clicked "Place order" (same form key) does not order twice.
    again = await post_form(sales_client, "/sales/orders", {
        "customer": str(customer), "currency": "EUR", "request_key": "k-1",
        "line1_product": str(widget), "line1_quantity": "3", "line1_discount": "10",
        "line1_tax": "20", "line3_product": str(gadget), "line3_quantity": "2",
        "line3_tax": "20", "notes": "Called about the spring offer"})
    assert again.headers["location"] == order_url
    page = await sales_client.get(order_url)
    assert page.status_code == 200
    # 3 x 19.99 - 10 % = 53.97 net + 10.79 tax; 2 x 5.00 = 10.00 + 2.00 tax.
    assert "Open" in page.text and "76.76" in page.text
    created = named(events, "sales.order.created")
    assert len(created) == 1
    payload = created[0].payload
    assert payload["customer_id"] == customer and payload["owner_id"] == rep
    assert payload["currency"] == "EUR" and Decimal(payload["total"]) == Decimal("76.76")
    assert payload["product_ids"] == sorted([widget, gadget])
    assert [(li["quantity"], li["net"], li["tax"], li["gross"], li["discount"])
            for li in payload["lines"]] == [("3", "53.97", "10.79", "64.76", "6.00"),
                                            ("2", "10.00", "2.00", "12.00", "0.00")]
    assert payload["lines"][0]["source"] == "product" and payload["lines"][0]["sku"] == "W-1"

    # Confirming is the representative's; shipping is the warehouse's (an administrator).
    refused = await post_form(sales_client, f"/sales/orders/{order_id}/shipments",
                              {"ship_1": "1"})
    assert refused.status_code == 403
    confirmed = await post_form(sales_client, f"/sales/orders/{order_id}/confirm", {})
    assert confirmed.status_code == 303
    assert named(events, "sales.order.confirmed")[0].payload["status"] == "confirmed"

    await sign_in(sales_client, "boss@example.test")
    lines = await order_lines_of(order_id)
    widget_line, gadget_line = lines[0]["id"], lines[1]["id"]
    shipped = await post_form(sales_client, f"/sales/orders/{order_id}/shipments", {
        f"ship_{widget_line}": "2", f"ship_{gadget_line}": "", "carrier": "DHL",
        "tracking": "JD0001"})
    assert shipped.status_code == 303, shipped.text
    page = await sales_client.get(order_url)
    assert "Partly fulfilled" in page.text and "JD0001" in page.text
    fulfilled = named(events, "sales.order.fulfilled")
    assert len(fulfilled) == 1
    assert fulfilled[0].payload["fully_fulfilled"] is False
    assert [(li["line_id"], li["quantity"], li["net"], li["tax"], li["gross"])
            for li in fulfilled[0].payload["lines"]] == [
        (widget_line, "2", "35.98", "7.20", "43.18")]

    # The customer returns one delivered widget through the portal.
    portal_user = await make_user("caller@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, customer)
    mine = await sales_client.get("/portal/sales/orders")
    assert mine.status_code == 200 and "Partly fulfilled" in mine.text
    detail = await sales_client.get(f"/portal/sales/orders/{order_id}")
    assert "DHL" in detail.text and "Return something" in detail.text
    too_many = await post_form(sales_client, f"/portal/sales/orders/{order_id}/returns", {
        f"return_{widget_line}": "3", "reason": "Too many"})
    assert too_many.status_code == 400
    assert "only 2 of “Widget” was delivered and not returned yet" in too_many.text
    no_reason = await post_form(sales_client, f"/portal/sales/orders/{order_id}/returns", {
        f"return_{widget_line}": "1", "reason": ""})
    assert no_reason.status_code == 400 and "say why" in no_reason.text
    returned = await post_form(sales_client, f"/portal/sales/orders/{order_id}/returns", {
        f"return_{widget_line}": "1", "reason": "Arrived scratched"})
    assert returned.status_code == 303, returned.text
    ret = named(events, "sales.order.returned")
    assert len(ret) == 1 and ret[0].payload["reason"] == "Arrived scratched"
    assert ret[0].payload["requested_via"] == "portal"
    assert ret[0].payload["case_type"] == "product_return"
    assert [(li["quantity"], li["net"], li["tax"], li["gross"])
            for li in ret[0].payload["lines"]] == [("1", "17.99", "3.60", "21.59")]

    # The refund is recorded against the return, never above what came back.
    from plugins.sales.tables import OrderReturn

    item = await OrderReturn.select().where(OrderReturn.sales_order == order_id).first().run()
    refund_url = f"/sales/orders/{order_id}/returns/{item['id']}/refunds"
    over = await post_form(sales_client, refund_url, {"amount": "25.00",
                                                      "method": "bank transfer"})
    assert over.status_code == 400
    assert "at most" in over.text and "21.59" in over.text
    paid = await post_form(sales_client, refund_url, {"amount": "21.59",
                                                      "method": "bank transfer",
                                                      "reference": "TX-9"})
    assert paid.status_code == 303
    refunded = named(events, "sales.order.refunded")
    assert len(refunded) == 1 and refunded[0].payload["amount"] == "21.59"
    assert refunded[0].payload["refunded_in_full"] is True
    assert refunded[0].payload["lines"][0]["quantity"] == "1"
    again = await post_form(sales_client, refund_url, {"amount": "1.00", "method": "card"})
    assert again.status_code == 404 or again.status_code in (400, 409)

    # Every step is on the customer's timeline and in the audit log.
    from core.audit import AuditEntry
    from core.interactions.tables import Interaction

    steps = [r["outcome"] for r in await Interaction.select(Interaction.outcome).where(
        (Interaction.customer == customer) & (Interaction.plugin == "sales")).order_by(
        Interaction.id).run()]
    assert steps == ["created", "confirmed", "fulfilled", "returned", "refunded"]
    audited = {(r["action"], r["record_type"]) for r in await AuditEntry.select(
        AuditEntry.action, AuditEntry.record_type).run()}
    assert {("create", "sales_order"), ("update", "sales_order"), ("create", "sales_shipment"),
            ("create", "sales_return"), ("create", "sales_refund")} <= audited


async def test_workflow_refuses_steps_out_of_order_with_clear_messages(sales_client):
    events = listen(sales_client)
    widget = await catalogue()
    customer = await new_customer()
    order = (await sales_client.post("/api/v1/sales/orders", json={
        "customer": customer, "lines": [{"product": widget, "quantity": "2"}]})).json()
    oid = order["id"]
    line = order["lines"][0]["id"]
    early = await sales_client.post(f"/api/v1/sales/orders/{oid}/shipments",
                                    json={"lines": [{"line_id": line, "quantity": "1"}]})
    assert early.status_code == 409
    assert early.json()["detail"] == ("status: confirm the order before shipping it "
                                      "(this order is open)")
    assert (await sales_client.post(f"/api/v1/sales/orders/{oid}/complete")).status_code == 409
    await sales_client.post(f"/api/v1/sales/orders/{oid}/confirm")
    again = await sales_client.post(f"/api/v1/sales/orders/{oid}/confirm")
    assert again.status_code == 409 and "only an open order" in again.json()["detail"]
    over = await sales_client.post(f"/api/v1/sales/orders/{oid}/shipments",
                                   json={"lines": [{"line_id": line, "quantity": "3"}]})
    assert over.status_code == 422 and over.json()["field"] == f"quantities[{line}]"
    assert "only 2 of “Widget” left to ship" in over.json()["detail"]
    not_mine = await sales_client.post(f"/api/v1/sales/orders/{oid}/shipments",
                                       json={"lines": [{"line_id": 999999, "quantity": "1"}]})
    assert not_mine.status_code == 422 and not_mine.json()["field"] == "quantities"
    nothing_shipped = await sales_client.post(
        f"/api/v1/sales/orders/{oid}/returns",
        json={"lines": [{"line_id": line, "quantity": "1"}], "reason": "x"})
    assert nothing_shipped.status_code == 409
    # A refused step changes nothing and announces nothing.
    assert named(events, "sales.order.fulfilled") == [] and named(
        events, "sales.order.returned") == []
    from plugins.sales.tables import Shipment

    assert await Shipment.count().run() == 0
    shipped = await sales_client.post(f"/api/v1/sales/orders/{oid}/shipments",
                                      json={"lines": [{"line_id": line, "quantity": "1"}]})
    assert shipped.status_code == 200 and shipped.json()["status"] == "partly_fulfilled"
    assert len(named(events, "sales.order.fulfilled")) == 1
    whole = await sales_client.post(f"/api/v1/sales/orders/{oid}/cancel",
                                    json={"reason": "Changed mind"})
    assert whole.status_code == 409 and "cancel the lines not yet shipped" in whole.json()[
        "detail"]
    shipped_part = await sales_client.post(
        f"/api/v1/sales/orders/{oid}/cancel",
        json={"lines": [{"line_id": line, "quantity": "2"}], "reason": "Changed mind"})
    assert shipped_part.status_code == 422
    assert "only 1 of “Widget” is not shipped yet" in shipped_part.json()["detail"]
    no_reason = await sales_client.post(f"/api/v1/sales/orders/{oid}/cancel", json={
        "lines": [{"line_id": line, "quantity": "1"}]})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    rest = await sales_client.post(f"/api/v1/sales/orders/{oid}/cancel", json={
        "lines": [{"line_id": line, "quantity": "1"}], "reason": "Out of stock"})
    # The rest was cancelled and the shipped part delivered: the order is fulfilled.
    assert rest.status_code == 200 and rest.json()["status"] == "fulfilled"
    assert rest.json()["lines"][0]["cancelled"].startswith("1")
    done = await sales_client.post(f"/api/v1/sales/orders/{oid}/complete")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    # The staff page shows a refusal beside the action, with a 409.
    page = await post_form(sales_client, f"/sales/orders/{oid}/confirm", {})
    assert page.status_code == 409 and "only an open order can be confirmed" in page.text


async def test_whole_order_cancelled_before_shipping_announces_every_line(sales_client):
    events = listen(sales_client)
    widget = await catalogue()
    customer = await new_customer()
    order = (await sales_client.post("/api/v1/sales/orders", json={
        "customer": customer, "lines": [{"product": widget, "quantity": "4",
                                         "tax_percent": "10"}]})).json()
    response = await post_form(sales_client, f"/sales/orders/{order['id']}/cancel",
                               {"whole": "1", "reason": "Customer called back"})
    assert response.status_code == 303
    cancelled = named(events, "sales.order.cancelled")[0].payload
    assert cancelled["whole_order"] is True and cancelled["status"] == "cancelled"
    assert [(li["quantity"], li["net"], li["tax"]) for li in cancelled["lines"]] == [
        ("4", "79.96", "8.00")]
    page = await sales_client.get(f"/sales/orders/{order['id']}")
    assert "Cancelled" in page.text and "Customer called back" in page.text


async def test_api_order_is_created_once_per_idempotency_key(sales_client):
    widget = await catalogue()
    customer = await new_customer()
    body = {"customer": customer, "channel": "web shop",
            "lines": [{"product": widget, "quantity": "1", "tax_percent": "19"}]}
    first = await sales_client.post("/api/v1/sales/orders", json=body,
                                    headers={"Idempotency-Key": "shop-order-1001"})
    assert first.status_code == 201, first.text
    assert first.json()["channel"] == "web shop" and "idempotency_key" not in first.json()
    retry = await sales_client.post("/api/v1/sales/orders", json=body,
                                    headers={"Idempotency-Key": "shop-order-1001"})
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    other = await sales_client.post("/api/v1/sales/orders", json={**body, "lines": [
        {"product": widget, "quantity": "2"}]}, headers={"Idempotency-Key": "shop-order-1001"})
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert other.headers["content-type"].startswith("application/problem+json")
    new = await sales_client.post("/api/v1/sales/orders", json=body,
                                  headers={"Idempotency-Key": "shop-order-1002"})
    assert new.status_code == 201 and new.json()["id"] != first.json()["id"]
    from plugins.sales.tables import SalesOrder

    assert await SalesOrder.count().run() == 2
    one = await sales_client.get(f"/api/v1/sales/orders/{first.json()['id']}")
    assert Decimal(one.json()["total_amount"]) == Decimal("23.79")  # 19.99 + 19 % tax
    listing = await sales_client.get("/api/v1/sales/orders?limit=1")
    assert listing.json()["next_after"] == new.json()["id"]
    older = await sales_client.get(f"/api/v1/sales/orders?after={new.json()['id']}")
    assert [o["id"] for o in older.json()["items"]] == [first.json()["id"]]
    by_status = await sales_client.get("/api/v1/sales/orders?status=shipped")
    assert by_status.status_code == 422 and by_status.json()["field"] == "status"


async def test_api_names_the_field_of_bad_order_input(sales_client):
    widget = await catalogue()
    customer = await new_customer()
    cases = [
        ({"customer": 999999, "lines": [{"product": widget}]}, "customer"),
        ({"customer": customer, "lines": []}, "lines"),
        ({"customer": customer, "lines": [{"product": widget, "quantity": "-1"}]},
         "lines[1].quantity"),
        ({"customer": customer, "lines": [{"product": 999999}]}, "lines[1].product"),
        ({"customer": customer, "currency": "EURO", "lines": [{"product": widget}]},
         "currency"),
        ({"customer": customer, "channel": "fax", "lines": [{"product": widget}]}, "channel"),
        ({"customer": customer, "lines": [{"product": widget, "unit_price": 1.5}]},
         "lines[1].unit_price"),
    ]
    for body, field in cases:
        response = await sales_client.post("/api/v1/sales/orders", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, (body, response.json())


async def test_staff_record_a_customers_acceptance_and_the_deal_is_won(sales_client):
    events = listen(sales_client)
    widget = await catalogue()
    customer = await new_customer()
    deal = (await sales_client.post("/api/v1/sales/opportunities", json={
        "name": "Widgets for Acme", "customer": customer, "amount": "10.00"})).json()
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "opportunity": deal["id"],
        "lines": [{"product": widget, "quantity": "5", "tax_percent": "20"}]})).json()
    await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")
    quote_page = await sales_client.get(f"/sales/quotes/{quote['id']}")
    assert f'href="/sales/quotes/{quote["id"]}/accept"' in quote_page.text  # record action
    form = await sales_client.get(f"/sales/quotes/{quote['id']}/accept")
    assert form.status_code == 200 and "Who accepted for the customer" in form.text
    missing = await post_form(sales_client, f"/sales/quotes/{quote['id']}/accept",
                              {"by": "", "via": "phone"})
    assert missing.status_code == 400 and "say who accepted" in missing.text
    # The representative works in Berlin: the time typed is Berlin time, stored in UTC.
    from core.identity.tables import User

    await User.update({User.time_zone: "Europe/Berlin"}).where(
        User.id == sales_client.user_id).run()
    accepted = await post_form(sales_client, f"/sales/quotes/{quote['id']}/accept", {
        "by": "Grace Hopper (purchasing)", "via": "phone", "at": "2026-12-01T10:30"})
    assert accepted.status_code == 303, accepted.text
    page = await sales_client.get(accepted.headers["location"])
    assert "Grace Hopper (purchasing)" in page.text and quote["number"] in page.text
    assert "01 Dec 2026 10:30" in page.text
    from plugins.sales.tables import Opportunity, SalesOrder

    order = await SalesOrder.select().where(SalesOrder.quote == quote["id"]).first().run()
    assert order["accepted_via"] == "phone"
    at = order["accepted_at"]
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    assert (at.day, at.hour, at.minute) == (1, 9, 30)
    won = await Opportunity.select().where(Opportunity.id == deal["id"]).first().run()
    assert won["status"] == "won"
    assert Decimal(str(won["amount_amount"])) == Decimal(str(order["total_amount"])) == Decimal(
        "119.94")
    accepted_events = named(events, "sales.quote.accepted")
    assert len(accepted_events) == 1
    payload = accepted_events[0].payload
    assert payload["accepted_by"] == "Grace Hopper (purchasing)"
    assert payload["opportunity_won"] is True and payload["order_id"] == order["id"]
    assert payload["lines"][0]["quantity"] == "5" and payload["lines"][0]["tax"] == "19.99"


async def test_an_expired_quote_cannot_be_accepted_and_a_new_one_can_be_requested(
        sales_client, monkeypatch):
    widget = await catalogue()
    customer = await new_customer("Late Ltd")
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "valid_until": (date.today() - timedelta(days=1)).isoformat(),
        "lines": [{"product": widget}]})).json()
    assert (await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")).status_code == 200
    staff = await post_form(sales_client, f"/sales/quotes/{quote['id']}/accept", {
        "by": "Someone", "via": "email"})
    assert staff.status_code == 409 and "this quote expired on" in staff.text
    assert "ask for a new quote" in staff.text
    portal_user = await make_user("late@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, customer)
    refused = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/decision",
                              {"decision": "accept"})
    assert refused.status_code == 409 and "this quote expired on" in refused.text
    assert f"/portal/sales/quotes/{quote['id']}/renewal" in refused.text
    asked = await post_form(sales_client, f"/portal/sales/quotes/{quote['id']}/renewal",
                            {"note": "Please renew"})
    assert asked.status_code == 303
    from core.interactions.tables import Interaction
    from plugins.sales.tables import Quote, SalesOrder

    follow_up = await Interaction.select().where(Interaction.customer == customer).first().run()
    assert follow_up["subject"].startswith("New quote requested")
    assert follow_up["followup_assignee"] == sales_client.user_id
    assert await SalesOrder.count().run() == 0
    stored = await Quote.select(Quote.status).where(Quote.id == quote["id"]).first().run()
    assert stored["status"] == "sent"


async def test_portal_customer_cannot_see_or_return_another_customers_order(
        sales_client, monkeypatch):
    widget = await catalogue()
    mine = await new_customer("Mine Ltd")
    other = await new_customer("Other Ltd")
    orders = {}
    for customer in (mine, other):
        order = (await sales_client.post("/api/v1/sales/orders", json={
            "customer": customer, "lines": [{"product": widget, "quantity": "2"}]})).json()
        await sales_client.post(f"/api/v1/sales/orders/{order['id']}/confirm")
        await sales_client.post(f"/api/v1/sales/orders/{order['id']}/shipments", json={
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": "2"}]})
        orders[customer] = order
    portal_user = await make_user("mine@example.test", roles=[])
    as_portal_customer(monkeypatch, sales_client, portal_user, mine)
    listing = await sales_client.get("/portal/sales/orders")
    assert orders[mine]["number"] in listing.text
    assert orders[other]["number"] not in listing.text
    foreign = orders[other]
    assert (await sales_client.get(f"/portal/sales/orders/{foreign['id']}")).status_code == 404
    attempt = await post_form(sales_client, f"/portal/sales/orders/{foreign['id']}/returns", {
        f"return_{foreign['lines'][0]['id']}": "1", "reason": "Not mine"})
    assert attempt.status_code == 404
    # Nor a line of another order through one's own order.
    sneaky = await post_form(sales_client, f"/portal/sales/orders/{orders[mine]['id']}/returns",
                             {f"return_{foreign['lines'][0]['id']}": "1", "reason": "x"})
    assert sneaky.status_code == 400
    from plugins.sales.tables import OrderReturn

    assert await OrderReturn.count().run() == 0


async def test_order_list_filters_and_keeps_to_the_users_scope(sales_client):
    widget = await catalogue()
    north = await make_user("north@example.test", roles=["sales_representative"])
    south = await make_user("south@example.test", roles=["sales_representative"])
    ada = await new_customer("Ada Ltd", owner=north)
    bob = await new_customer("Bob Ltd", owner=south)
    for customer, email in ((ada, "north@example.test"), (bob, "south@example.test")):
        await sign_in(sales_client, email)
        placed = await post_form(sales_client, "/sales/orders", {
            "customer": str(customer), "line1_product": str(widget), "line1_quantity": "1"})
        assert placed.status_code == 303, placed.text
    # Without JavaScript the customer number does what the picker does; one out of scope
    # is refused like one that does not exist.
    refused = await post_form(sales_client, "/sales/orders", {
        "customer_number": str(ada), "line1_product": str(widget)})
    assert refused.status_code == 400 and "pick the customer" in refused.text
    await sign_in(sales_client, "north@example.test")
    listing = await sales_client.get("/sales/orders")
    assert "Ada Ltd" in listing.text and "Bob Ltd" not in listing.text
    from plugins.sales.tables import SalesOrder

    bobs = await SalesOrder.select().where(SalesOrder.customer == bob).first().run()
    assert (await sales_client.get(f"/sales/orders/{bobs['id']}")).status_code == 404
    await sign_in(sales_client, "boss@example.test")
    both = await sales_client.get("/sales/orders")
    assert "Ada Ltd" in both.text and "Bob Ltd" in both.text
    only_bob = await sales_client.get(f"/sales/orders?customer={bob}")
    assert "Bob Ltd" in only_bob.text and "Ada Ltd" not in only_bob.text
    confirmed = await sales_client.get("/sales/orders?status=confirmed")
    assert "No orders match these filters" in confirmed.text
    by_owner = await sales_client.get(f"/sales/orders?owner={south}")
    assert "Bob Ltd" in by_owner.text and "Ada Ltd" not in by_owner.text
    future = await sales_client.get(f"/sales/orders?since={date.today() + timedelta(days=2)}")
    assert "No orders match" in future.text
    panel = await sales_client.get(f"/sales/panels/customer/{ada}/orders")
    assert "Open" in panel.text and "1 line" in panel.text


async def test_a_configured_line_keeps_its_origin_from_quote_to_order_and_event(
        sales_client, monkeypatch, configurator_plugin):  # noqa: F811
    events = listen(sales_client)
    sales_client.rapport.pm.register(configurator_plugin, name="configurator")
    customer = await new_customer()
    quote = (await sales_client.post("/api/v1/sales/quotes", json={
        "customer": customer, "lines": [{"source": "configurator", "source_ref": "cfg-7",
                                         "quantity": "1"}]})).json()
    await sales_client.post(f"/api/v1/sales/quotes/{quote['id']}/send")
    accepted = await post_form(sales_client, f"/sales/quotes/{quote['id']}/accept", {
        "by": "Ada", "via": "email"})
    assert accepted.status_code == 303, accepted.text
    created = named(events, "sales.order.created")[0].payload
    line = created["lines"][0]
    assert (line["source"], line["source_ref"]) == ("configurator", "cfg-7")
    assert line["description"] == "Configured bike (blue, 54 cm)" and line["net"] == "1499.00"


async def test_demo_orders_cover_the_lifecycle_and_managers_may_ship_and_refund(make_rapport):
    """`make run` shows orders at every stage (open to completed, returned and refunded) and
    a demo manager can ship and refund; their quantities add up like real ones."""
    from tests.conftest import connected

    instance = await make_rapport(["sales"])
    async with connected(instance):
        from core.customers.demo import seed_customers
        from core.identity.demo import seed_demo_users
        from core.identity.tables import User
        from core.identity.users import load_actor
        from plugins.sales.demo import seed
        from plugins.sales.tables import OrderLine, OrderReturn, Refund, SalesOrder

        await seed_demo_users(instance)
        await seed_customers(300)
        await seed(instance, 300)
        statuses = {r["status"] for r in await SalesOrder.select(SalesOrder.status).run()}
        assert {"completed", "fulfilled", "partly_fulfilled"} <= statuses
        assert await OrderReturn.count().run() >= 1 and await Refund.count().run() >= 1
        for line in await OrderLine.select().run():
            assert line["shipped"] + line["cancelled"] <= line["quantity"]
            assert line["returned"] <= line["shipped"]
        manager = await User.select(User.id).where(
            User.email == "manager@example.com").first().run()
        actor = await load_actor(instance, manager["id"])
        assert actor.can("sales.order.fulfil") and actor.can("sales.order.refund")


async def test_privacy_export_has_the_order_history_and_erasure_blanks_the_customers_words(
        sales_client):
    widget = await catalogue()
    customer = await new_customer()
    order = (await sales_client.post("/api/v1/sales/orders", json={
        "customer": customer, "notes": "Call Ada on 0171 555", "lines": [
            {"product": widget, "quantity": "1"}]})).json()
    await sales_client.post(f"/api/v1/sales/orders/{order['id']}/confirm")
    line = order["lines"][0]["id"]
    await sales_client.post(f"/api/v1/sales/orders/{order['id']}/shipments",
                            json={"lines": [{"line_id": line, "quantity": "1"}]})
    returned = await sales_client.post(f"/api/v1/sales/orders/{order['id']}/returns", json={
        "lines": [{"line_id": line, "quantity": "1"}], "reason": "My son broke it"})
    assert returned.status_code == 200, returned.text
    from plugins.sales.customers import erase, export

    exported = (await export(customer))["sales"]
    assert exported["returns"][0]["reason"] == "My son broke it"
    assert len(exported["shipments"]) == 1
    await erase(customer)
    after = (await export(customer))["sales"]
    assert after["returns"][0]["reason"] == "" and after["orders"][0]["notes"] == ""
    assert after["orders"][0]["total_amount"] == exported["orders"][0]["total_amount"]


async def test_two_retries_racing_with_one_idempotency_key_make_one_order(sales_client):
    import asyncio

    widget = await catalogue()
    customer = await new_customer()
    body = {"customer": customer, "channel": "till", "lines": [{"product": widget}]}
    headers = {"Idempotency-Key": "till-7-receipt-88"}
    first, second = await asyncio.gather(
        sales_client.post("/api/v1/sales/orders", json=body, headers=headers),
        sales_client.post("/api/v1/sales/orders", json=body, headers=headers))
    assert sorted([first.status_code, second.status_code]) == [200, 201], (
        first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    from plugins.sales.tables import SalesOrder

    assert await SalesOrder.count().run() == 1
