"""What sales does when core changes a customer: activity, merges and privacy requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plugins.sales.tables import (
    Lead,
    LeadActivity,
    Opportunity,
    OrderLine,
    OrderReturn,
    Quote,
    Refund,
    SalesOrder,
    Shipment,
)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, int | str | bool | type(None)) else v)
            for k, v in row.items()}


async def note_activity(customer_id: int) -> None:
    """A touch point with a customer counts as activity on their open deals (stale warnings)."""
    now = datetime.now(UTC)
    # Two statements, not one `customer = ? OR contact = ?`: each half is an index lookup
    # (customer; contact+status), where the OR made SQLite scan every open deal per interaction.
    for column in (Opportunity.customer, Opportunity.contact):
        await Opportunity.update({Opportunity.last_activity_at: now}).where(
            (column == customer_id) & (Opportunity.status == "open")).run()


async def repoint(survivor_id: int, merged_id: int) -> None:
    """Move the merged customer's deals, quotes, orders and lead links to the survivor."""
    await Opportunity.update({Opportunity.customer: survivor_id}).where(
        Opportunity.customer == merged_id).run()
    await Opportunity.update({Opportunity.contact: survivor_id}).where(
        Opportunity.contact == merged_id).run()
    await Quote.update({Quote.customer: survivor_id}).where(Quote.customer == merged_id).run()
    await SalesOrder.update({SalesOrder.customer: survivor_id}).where(
        SalesOrder.customer == merged_id).run()
    await Lead.update({Lead.converted_contact: survivor_id}).where(
        Lead.converted_contact == merged_id).run()
    await Lead.update({Lead.converted_account: survivor_id}).where(
        Lead.converted_account == merged_id).run()


async def export(customer_id: int) -> dict[str, Any]:
    leads = await Lead.select().where((Lead.converted_contact == customer_id)
                                      | (Lead.converted_account == customer_id)).run()
    quotes = await Quote.select().where(Quote.customer == customer_id).run()
    orders = await SalesOrder.select().where(SalesOrder.customer == customer_id).run()
    lines = await OrderLine.select().where(
        OrderLine.sales_order.is_in([o["id"] for o in orders] or [0])).run()
    return {"sales": {
        "leads": [_jsonable(r) for r in leads],
        "opportunities": [_jsonable(r) for r in await Opportunity.select().where(
            (Opportunity.customer == customer_id) | (Opportunity.contact == customer_id)).run()],
        "quotes": [_jsonable(r) for r in quotes],
        "orders": [_jsonable(r) for r in orders],
        "order_lines": [_jsonable(r) for r in lines],
        **await _order_history(customer_id, [o["id"] for o in orders]),
    }}


async def _order_history(customer_id: int, order_ids: list[int]) -> dict[str, Any]:
    """Shipments, returns (with the customer's reasons) and refunds of the orders."""
    ids = order_ids or [0]
    shipments = await Shipment.select().where(Shipment.sales_order.is_in(ids)).run()
    returns = await OrderReturn.select().where(OrderReturn.sales_order.is_in(ids)).run()
    refunds = await Refund.select().where(Refund.sales_order.is_in(ids)).run()
    return {"shipments": [_jsonable(r) for r in shipments],
            "returns": [_jsonable(r) for r in returns],
            "refunds": [_jsonable(r) for r in refunds]}


async def erase(customer_id: int) -> None:
    """Blank the personal fields of the leads this customer came from and the customer's
    own words on orders (notes, who accepted, return reasons); amounts, dates and products
    stay (they are the organisation's records, not personal data)."""
    order_ids = [r["id"] for r in await SalesOrder.select(SalesOrder.id).where(
        SalesOrder.customer == customer_id).run()]
    if order_ids:
        await SalesOrder.update({SalesOrder.notes: "", SalesOrder.accepted_by: ""}).where(
            SalesOrder.id.is_in(order_ids)).run()
        await OrderReturn.update({OrderReturn.reason: ""}).where(
            OrderReturn.sales_order.is_in(order_ids)).run()
    ids = [r["id"] for r in await Lead.select(Lead.id).where(
        Lead.converted_contact == customer_id).run()]
    if not ids:
        return
    await Lead.update({Lead.first_name: "", Lead.last_name: "", Lead.email: "",
                       Lead.phone: "", Lead.message: "", Lead.job_title: ""}).where(
        Lead.id.is_in(ids)).run()
    await LeadActivity.update({LeadActivity.subject: "", LeadActivity.notes: ""}).where(
        LeadActivity.lead.is_in(ids)).run()
    await Quote.update({Quote.decline_reason: ""}).where(Quote.customer == customer_id).run()
