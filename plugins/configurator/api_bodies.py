"""The JSON bodies the configurator API accepts, as JSON Schemas (see core.api_schemas):
declared in the OpenAPI document and checked before a handler runs; the model's own rules
decide which values are possible."""

from __future__ import annotations

from core.api_schemas import CURRENCY, ID, POSITIVE_MONEY, QUANTITY, nullable, obj, text

_VALUES = obj({}, additionalProperties={"anyOf": [
    text(500), {"type": "number"}, {"type": "boolean"}, {"type": "null"},
    {"type": "array", "items": text(500), "maxItems": 100}]},
    description="{attribute key: the chosen option or value}")

ASSESSMENT = obj({"version": nullable(ID), "values": nullable(_VALUES),
                  "quantity": nullable(QUANTITY), "currency": nullable(CURRENCY)})

CONFIGURATION = obj({"customer": nullable(ID), "model": nullable(ID), "version": nullable(ID),
                     "values": nullable(_VALUES), "quantity": nullable(QUANTITY),
                     "total": nullable(POSITIVE_MONEY), "currency": nullable(CURRENCY),
                     "name": nullable(text(200))})
