"""Product returns announced by a sales plugin become ``product_return`` cases.

The service plugin never imports sales: it reads the durable event ``sales.order.returned``
(payload documented in docs/plugins/sales.md: the order fields, the returned lines, the
return's number and reason, ``requested_via`` and ``case_type``). Events are delivered at
least once, so the case is opened with a Message-ID derived from the event id: the unique
index on ``service_message.message_id`` lets one delivery open it, and a repeat finds it.
"""

from __future__ import annotations

import logging
from typing import Any

from plugins.service.tables import CASE_TYPES, CaseMessage

log = logging.getLogger("rapport.service.returns")

EVENT = "sales.order.returned"


def opening_message_id(event_id: int) -> str:
    """The Message-ID of a return case's opening message; a valid one, so replies thread."""
    return f"<sales-order-returned.{int(event_id)}@rapport.invalid>"


def _quantity(raw: Any) -> str:
    text = str(raw or "").strip()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "?"


def describe(payload: dict[str, Any]) -> tuple[str, str]:
    """The case's subject and description, in words the team reads."""
    number = str(payload.get("number") or payload.get("order_id") or "").strip()
    ret = str(payload.get("return_number") or "").strip()
    subject = f"Return {ret} of order {number}" if ret else f"Return of order {number}"
    lines = []
    for line in payload.get("lines") or []:
        what = str(line.get("description") or line.get("sku") or "item").strip()
        sku = str(line.get("sku") or "").strip()
        lines.append(f"- {_quantity(line.get('quantity'))} × {what}"
                     + (f" ({sku})" if sku and sku != what else ""))
    reason = str(payload.get("reason") or "").strip()
    parts = [f"Reason: {reason}" if reason else "No reason given."]
    if lines:
        parts.append("Returned:\n" + "\n".join(lines))
    return subject[:300], "\n\n".join(parts)


async def open_return_case(rapport, event) -> dict[str, Any] | None:
    """Open the product_return case for one ``sales.order.returned`` event, once; return it
    (None when the payload names no customer)."""
    from plugins.service.cases import get_case, open_case
    from plugins.service.email_in import is_duplicate_message_id

    payload = event.payload or {}
    case_type = payload.get("case_type") or "product_return"
    if case_type not in CASE_TYPES or not payload.get("customer_id"):
        log.warning("return event %s names no customer or an unknown case type; no case",
                    event.id)
        return None
    message_id = opening_message_id(event.id)
    existing = await CaseMessage.select(CaseMessage.case).where(
        CaseMessage.message_id == message_id).first().run()
    if existing:
        return await get_case(existing["case"])  # handled before (a redelivery)
    subject, description = describe(payload)
    lines = payload.get("lines") or [{}]
    by_portal = payload.get("requested_via") == "portal"
    try:
        return await open_case(
            rapport, None, customer_id=int(payload["customer_id"]), subject=subject,
            description=description, case_type=case_type,
            channel="portal" if by_portal else "phone", from_customer=by_portal,
            product=str(lines[0].get("description") or "")[:300],
            product_ref=str(lines[0].get("product_id") or "")[:100],
            message_id=message_id)
    except Exception as exc:
        if not is_duplicate_message_id(exc):
            raise
        # Another delivery of the same event opened it meanwhile.
        row = await CaseMessage.select(CaseMessage.case).where(
            CaseMessage.message_id == message_id).first().run()
        return await get_case(row["case"]) if row else None
