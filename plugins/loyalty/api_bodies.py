"""The JSON bodies the loyalty API accepts, as JSON Schemas (see core.api_schemas): declared
in the OpenAPI document and checked before a handler runs; the domain modules still check
what a schema cannot (a card exists, a transaction is new, ...)."""

from __future__ import annotations

from core.api_schemas import BOOLEAN, CURRENCY, ID, MONEY, QUANTITY, array, obj, text

# A till names the member by card number, an integration by member id.
_WHO = {"card_number": text(64), "member": ID}

ENROLMENT = obj({"program": ID, "customer": ID, "accept_terms": BOOLEAN,
                 "referral_code": text(64)}, required=["program", "customer"])

_LINE = obj({"line_id": {"anyOf": [text(100), ID]}, "net": MONEY, "gross": MONEY, "quantity": QUANTITY, "product_id": ID,
             "sku": text(100), "source": text(100)}, required=["net"])
PURCHASE = obj({**_WHO, "transaction_id": text(100, 1), "reference": text(200),
                "amount": MONEY, "total": MONEY, "currency": CURRENCY,
                "lines": array(_LINE, 500)}, required=["transaction_id"])

RETURN = obj({**_WHO, "return_id": text(100, 1),
              "lines": array(obj({"line_id": {"anyOf": [text(100), ID]},
                                  "quantity": QUANTITY}, required=["line_id"]), 500)},
             required=["return_id"])

ADJUSTMENT = obj({"points": {"type": "integer", "minimum": -10**9, "maximum": 10**9},
                  "reason": text(500)}, required=["points"])

REDEMPTION = obj({"reward": ID}, required=["reward"])

VOUCHER_USE = obj({"transaction_id": text(100), "till": text(100)})
