"""A plugin for the tests of sales' public surface: it knows nothing of sales' code (plain
dicts, no import of plugins.sales), offers a configured bike as a structured quote line with
its parts, a loyalty voucher as a quote adjustment, and buttons on deals and quotes."""

from __future__ import annotations

import types

from core.plugin import Action, hookimpl


def make(voucher: str = "50.00") -> types.ModuleType:
    module = types.ModuleType("loyalty_and_bikes")
    module.calls = []  # the contexts the line source was called with

    async def resolve(rapport, ref, currency, context=None):
        module.calls.append(context)
        if ref != "cfg-1":
            raise LookupError(ref)
        return {
            "description": "City bike, configured", "sku": "BIKE-CFG", "unit_price": "900.00",
            "tax_percent": "20", "source_ref": ref,
            "context": {"colour": "blue", "frame_size": "54 cm", "_configuration": 1},
            "children": [
                {"description": "Frame, 54 cm", "unit_price": "0", "quantity": "1"},
                {"description": "Dynamo lights", "unit_price": "25.00", "quantity": "2",
                 "tax_percent": "20"},
            ],
        }

    @hookimpl(optionalhook=True)
    def sales_quote_line_sources(rapport, context):
        return [{"id": "bikes", "label": "Bike configurations", "resolve": resolve}]

    @hookimpl(optionalhook=True)
    def sales_quote_adjustments(rapport, quote, lines, context):
        if context.customer_id is None:
            return None
        return [{"source": "loyalty", "source_ref": "V-1", "label": "Loyalty voucher",
                 "explanation": "500 points redeemed", "amount": voucher}]

    @hookimpl
    def record_actions(record_type, record):
        if record_type == "sales.quote":
            return [Action("Redeem points", f"/loyalty/quotes/{record['id']}/redeem",
                           method="POST", order=50)]
        if record_type == "sales.opportunity":
            return [Action("Configure a bike", f"/bikes/new?deal={record['id']}")]
        return None

    module.resolve = resolve
    module.sales_quote_line_sources = sales_quote_line_sources
    module.sales_quote_adjustments = sales_quote_adjustments
    module.record_actions = record_actions
    return module
