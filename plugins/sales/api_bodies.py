"""The JSON bodies the sales API accepts, as JSON Schemas (see core.api_schemas): declared in
the OpenAPI document and checked before a handler runs. The domain modules still check what
a schema cannot (a product exists, a quantity is above zero for that product, ...)."""

from __future__ import annotations

from core.api_schemas import (
    BOOLEAN,
    CURRENCY,
    DATE,
    EMAIL,
    ID,
    PERCENT,
    POSITIVE_MONEY,
    QUANTITY,
    array,
    enum,
    nullable,
    obj,
    text,
)

MAX_LINES = 500
AMOUNT = {"anyOf": [POSITIVE_MONEY, obj({"amount": POSITIVE_MONEY, "currency": CURRENCY},
                                        required=["amount"])],
          "description": 'an amount as a string ("1200.00") or {"amount", "currency"}'}

LEAD = obj({
    "first_name": nullable(text(150)), "last_name": nullable(text(150)),
    "company": nullable(text(300)), "job_title": nullable(text(150)),
    "email": nullable(EMAIL), "phone": nullable(text(32)), "website": nullable(text(300)),
    "industry": nullable(text(150)), "region": nullable(text(100)),
    "country": nullable(text(2)), "source": nullable(text(100)),
    "message": nullable(text(5000)), "owner": nullable(ID),
})

LEAD_CONVERSION = obj({
    "opportunity": BOOLEAN, "opportunity_name": nullable(text(300)),
    "amount": nullable(POSITIVE_MONEY), "currency": nullable(CURRENCY),
})

OPPORTUNITY = obj({
    "name": text(300, 1), "customer": nullable(ID), "contact": nullable(ID),
    "amount": nullable(AMOUNT), "currency": nullable(CURRENCY),
    "expected_close": nullable(DATE), "pipeline": nullable(ID), "stage": nullable(ID),
    "team": nullable(ID), "competitors": nullable(text(500)), "lead": nullable(ID),
}, required=["name"])

OPPORTUNITY_CHANGE = obj({
    "name": text(300, 1), "amount": AMOUNT, "currency": CURRENCY,
    "expected_close": nullable(DATE), "owner": ID, "contact": nullable(ID),
})

STAGE_MOVE = obj({"stage": ID, "reason": nullable(text(500))}, required=["stage"])

PIPELINE_MOVE = obj({"pipeline": ID}, required=["pipeline"])

_STAGE = obj({"name": text(100, 1), "probability": nullable({
    "anyOf": [{"type": "integer", "minimum": 0, "maximum": 100},
              {"type": "string", "pattern": r"^[0-9]{0,3}$"}],
    "description": "a win probability from 0 to 100"})}, required=["name"])
PIPELINE = obj({
    "name": text(100, 1),
    "stages": {"anyOf": [array({"anyOf": [_STAGE, text(100, 1)]}, max_items=50, min_items=1,
                               first_index=1), text(5000, 1)],
               "description": 'a list of {"name", "probability"} (or one "name: probability" '
                              "per line)"},
}, required=["name", "stages"])

DEAL_LINE = obj({"product": {"anyOf": [ID, text(100, 1)]}, "quantity": nullable(QUANTITY),
                 "unit_price": nullable(POSITIVE_MONEY)}, required=["product"])

TARGET = obj({
    "period_kind": enum("month", "quarter"), "period_start": DATE,
    "owner": nullable(ID), "team": nullable(ID), "currency": nullable(CURRENCY),
    "amount": POSITIVE_MONEY,
}, required=["period_start", "amount"])

_CONTEXT = nullable({"anyOf": [obj({}), text(20000)]})
QUOTE_LINE = obj({
    "product": nullable(ID), "source": nullable(text(100)), "source_ref": nullable(text(200)),
    "quantity": nullable(QUANTITY), "discount_percent": nullable(PERCENT),
    "tax_percent": nullable(PERCENT), "unit_price": nullable(POSITIVE_MONEY),
    "description": nullable(text(2000)), "context": _CONTEXT,
}, description="a product line {product, quantity, ...} or another plugin's "
               "{source, source_ref}")

QUOTE = obj({
    "customer": ID, "currency": nullable(CURRENCY), "price_book": nullable(ID),
    "valid_until": nullable(DATE), "notes": nullable(text(5000)),
    "opportunity": nullable(ID), "owner": nullable(ID), "team": nullable(ID),
    "lines": array(QUOTE_LINE, MAX_LINES, min_items=1, first_index=1),
}, required=["customer", "lines"])

ORDER = obj({
    "customer": ID, "currency": nullable(CURRENCY), "price_book": nullable(ID),
    "notes": nullable(text(5000)), "channel": nullable(enum("web shop", "till", "api")),
    "lines": array(QUOTE_LINE, MAX_LINES, min_items=1, first_index=1),
}, required=["customer", "lines"])

_LINE_QUANTITIES = {
    "lines": array(obj({"line_id": ID, "quantity": QUANTITY}, required=["line_id"]),
                   MAX_LINES, first_index=1),
    "quantities": obj({}, additionalProperties=QUANTITY,
                      description="{order line id: quantity}"),
}
SHIPMENT = obj({**_LINE_QUANTITIES, "carrier": nullable(text(100)),
                "tracking": nullable(text(200)), "note": nullable(text(2000))})
CANCELLATION = obj({**_LINE_QUANTITIES, "reason": nullable(text(500))})
RETURN = obj({**_LINE_QUANTITIES, "reason": nullable(text(500))})
REFUND = obj({"amount": POSITIVE_MONEY, "method": nullable(text(50)),
              "reference": nullable(text(200)), "note": nullable(text(2000))},
             required=["amount"])

