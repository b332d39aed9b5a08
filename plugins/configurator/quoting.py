"""Quoting through the sales plugin's hooks only (this plugin never imports sales):

- ``sales_quote_line_sources`` offers saved configurations as quote lines: a line with the
  configuration code as SKU, the choices as JSON context and the bill of materials as parts
  (priced in the parent line, so the parts carry no price of their own);
- a portal quote request (sales' documented form) for a configuration reaches staff as an
  opportunity; ``on_event('sales.quote.requested')`` adds the portal touch point to the
  customer's timeline naming the configuration.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar.exceptions import PermissionDeniedException

from plugins.configurator import configurations, models
from plugins.configurator.configure import ConfigurationError

SOURCE = "configurator"


def ref_id(ref: str) -> int:
    text = str(ref or "").strip().lower()
    if text.startswith("cfg-"):
        text = text[4:]
    if not text.isdigit() or len(text) > 18:
        raise LookupError(ref)
    return int(text)


async def resolve(rapport: Any, ref: str, currency: str, context: Any = None) -> dict[str, Any]:
    """A saved configuration as a quote line (``ref`` is ``cfg-<id>``). The configuration is
    validated again against its version, so a quote never carries an invalid one; a
    configuration of another customer is unknown here (portal isolation)."""
    customer_id = getattr(context, "customer_id", None)
    user = getattr(context, "user", None)
    try:
        # Staff quote only configurations they may see (own, team or all).
        where = configurations.visible_to(rapport, user)
    except PermissionDeniedException:
        raise LookupError(ref) from None
    row = await configurations.get(ref_id(ref), where=where)
    if row is None or (row["customer"] is not None and customer_id is not None and
                       row["customer"] != customer_id):
        raise LookupError(ref)
    if getattr(user, "kind", "") == "portal" and row["customer"] != getattr(user, "customer_id",
                                                                            None):
        raise LookupError(ref)
    version = await models.get_version(row["version"])
    if version is None:
        raise LookupError(ref)
    quantity = getattr(context, "quantity", None) or row["quantity"]
    definition = version["definition"]
    try:
        # Checked again against its version: a quote never carries a configuration that
        # breaks a rule, nor one of a retired version (sales reports it as not found).
        await configurations.check(rapport, version["id"], row["choices"], quantity)
        price = await configurations.priced(rapport, definition, row["choices"],
                                            Decimal(str(quantity)), currency,
                                            getattr(context, "price_book_id", None))
    except ConfigurationError:
        raise LookupError(ref) from None
    bom = [{"description": part["description"], "sku": part["sku"],
            "quantity": str(part["quantity"]), "unit_price": "0"} for part in
           configurations.configure.bill_of_materials(definition, row["choices"])]
    context_json = {"Configuration": row["code"], "Product": definition.get("name", ""),
                    "Version": version["number"]}
    context_json.update(dict(configurations.described(definition, row["choices"])))
    return {"description": f"{definition.get('name') or row['model_name']}: {row['name']}"[:500],
            "sku": row["code"][:64], "unit_price": str(price.unit_price),
            "discount_percent": str(price.discount_percent),
            "tax_percent": definition.get("tax_percent") or "0",
            "source_ref": f"cfg-{row['id']}", "context": context_json, "children": bom}


def line_sources() -> list[dict[str, Any]]:
    return [{"id": SOURCE, "label": "Configurations", "resolve": resolve}]


async def on_quote_requested(rapport: Any, payload: dict[str, Any]) -> None:
    """A portal touch point on the customer's timeline for a quote asked for a
    configuration (sales' event carries the lines with their source)."""
    from core.interactions.service import record_interaction

    lines = [li for li in payload.get("lines") or []
             if li.get("source") == SOURCE and li.get("parent_position") is None]
    if not lines or not payload.get("customer_id"):
        return
    names = ", ".join(f"{li.get('description', '')} ({li.get('sku', '')})" for li in lines)
    await record_interaction(
        rapport, None, customer_id=payload["customer_id"], channel="portal",
        direction="inbound", subject=f"Asked for a quote for a configuration: {names}"[:300],
        notes=(payload.get("note") or "")[:2000], purpose="sales", plugin="configurator",
        plugin_record=f"quote:{payload.get('quote_id')}", visible_in_portal=True,
        client_id=f"configurator-quote-request-{payload.get('quote_id')}")
