"""The JSON bodies the service API accepts, as JSON Schemas (see core.api_schemas): declared
in the OpenAPI document and checked before a handler runs. The domain modules still check
what a schema cannot (a customer in reach, a status change the case allows, ...)."""

from __future__ import annotations

from core.api_schemas import BOOLEAN, DATETIME, ID, array, enum, nullable, obj, text
from plugins.service.tables import CASE_TYPES, CHANNELS, PRIORITIES, STATUSES

ATTACHMENTS = nullable(array(obj({"filename": text(255, 1), "content_base64": {
    "type": "string", "description": "the file's bytes, base64"}},
    required=["filename", "content_base64"]), max_items=10))

CASE = obj({
    "customer_id": ID, "subject": text(300), "description": nullable(text(20000)),
    "case_type": nullable(enum(*CASE_TYPES)), "priority": nullable(enum(*PRIORITIES)),
    "channel": nullable(enum(*CHANNELS)), "product": nullable(text(200)),
    "product_ref": nullable(text(200)), "attachments": ATTACHMENTS,
}, required=["customer_id", "subject"], closed=True)

MESSAGE = obj({
    "kind": enum("reply", "note", "inbound"), "body": nullable(text(100000)),
    "status": nullable(enum(*STATUSES)), "channel": nullable(text(20)),
    "attachments": ATTACHMENTS,
})

STATUS = obj({"status": enum(*STATUSES)}, required=["status"])
PRIORITY = obj({"priority": enum(*PRIORITIES)}, required=["priority"])
ASSIGNMENT = obj({"owner_id": nullable(ID), "queue_id": nullable(ID)})

_ARTICLE = {
    "title": text(300), "body": nullable(text(200000)), "keywords": nullable(text(1000)),
    "product": nullable(text(200)), "audience": nullable(text(20)),
    "kind": nullable(text(20)), "category": nullable(ID), "slug": nullable(text(200)),
    "published": BOOLEAN,
}
ARTICLE = obj(_ARTICLE, required=["title"], closed=True)
ARTICLE_CHANGE = obj(_ARTICLE, closed=True)
FEEDBACK = obj({"helpful": BOOLEAN, "comment": nullable(text(2000))}, required=["helpful"],
               closed=True)
CATEGORY = obj({"name": text(200), "slug": nullable(text(200)),
                "position": nullable({"type": "integer", "minimum": -10**6,
                                      "maximum": 10**6})}, required=["name"], closed=True)

_VISIT = {"assignee": nullable(ID), "starts_at": nullable(DATETIME),
          "ends_at": nullable(DATETIME), "notes": nullable(text(5000))}
VISIT = obj(_VISIT, closed=True)
VISIT_CHANGE = obj(_VISIT, closed=True)
