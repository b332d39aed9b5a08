"""REST API for customers: /api/v1/customers, /api/v1/accounts, /api/v1/contacts.

Lists page by keyset (``?after=<cursor>``, ``?limit=`` up to 200). Errors are
``application/problem+json`` naming the offending field; a customer outside the caller's
scope answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, patch, post
from litestar.exceptions import ClientException
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from core.api_schemas import (
    BOOLEAN,
    DATE,
    EMAIL,
    ID,
    MONEY,
    accepts,
    array,
    enum,
    nullable,
    obj,
    text,
)
from core.audit import client_ip
from core.customers import custom_fields, listing, service
from core.customers.export import redact
from core.customers.service import CustomerError, CustomerNotFound
from core.customers.tables import LIFECYCLE_STAGES
from core.permissions import current_actor
from core.problems import bad_request, problem


def customer_error(request: Request, exc: CustomerError) -> Response:
    return problem(422, "Invalid customer", f"{exc.field}: {exc.message}", field=exc.field,
                   errors=exc.errors)


def not_found(request: Request, exc: CustomerNotFound) -> Response:
    return problem(404, "Not found", "No such customer")


# Every API handler answers errors as problem documents naming the field.
API: dict[str, Any] = {
    "exception_handlers": {CustomerError: customer_error, CustomerNotFound: not_found,
                           ClientException: bad_request},
    "tags": ["customers"],
}


def _kind_of(request: Request) -> str | None:
    path = request.url.path
    if path.startswith("/api/v1/accounts"):
        return "account"
    if path.startswith("/api/v1/contacts"):
        return "contact"
    return None



async def _serialise(rows: list[dict[str, Any]], actor, *, full: bool = False) -> list[dict]:
    await listing.decorate(rows)
    values = await custom_fields.values_for([r["id"] for r in rows])
    result = []
    for row in rows:
        item = {
            "id": row["id"], "kind": row["kind"], "name": row["name"],
            "first_name": row["first_name"], "last_name": row["last_name"],
            "job_title": row["job_title"], "account": row["account"],
            "account_name": row["account_name"], "owner": row["owner"],
            "owner_name": row["owner_name"], "team": row["team"],
            "team_name": row["team_name"], "lifecycle_stage": row["lifecycle_stage"],
            "source": row["source"], "email": row["primary_email"],
            "phone": row["primary_phone"], "website": row["website"],
            "industry": row["industry"], "tags": row["tags"],
            "custom": values.get(row["id"], {}),
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            "url": f"/api/v1/customers/{row['id']}",
        }
        if full:
            details = await service.customer_details(row["id"])
            item.update({
                "emails": details["emails"], "phones": details["phones"],
                "addresses": details["addresses"], "notes": row["notes"],
                "birthday": row["birthday"], "preferred_channel": row["preferred_channel"],
                "opted_out_channels": [c for c in row["opted_out_channels"].split(",") if c],
                "do_not_contact": row["do_not_contact"],
                "annual_revenue": row["annual_revenue"], "currency": row["currency"],
            })
        # Fields hidden from the actor are left out of the answer altogether.
        shown = redact(actor, {**item, "primary_email": item["email"],
                               "primary_phone": item["phone"]})
        aliases = {"email": "primary_email", "phone": "primary_phone"}
        result.append({k: v for k, v in item.items() if aliases.get(k, k) in shown})
    return result


@get(["/api/v1/customers", "/api/v1/accounts", "/api/v1/contacts"],
     opt={"permission": "core.customer.view"}, **API, summary="List customers")
async def list_customers(
    request: Request,
    q: Annotated[str | None, Parameter(description=(
        "Name, email, phone or account containing this, accents and case ignored (one or two "
        "characters: names and emails starting with them)"))] = None,
    stage: Annotated[str | None, Parameter(description=f"One of {LIFECYCLE_STAGES}")] = None,
    owner: Annotated[int | None, Parameter(description="Owner's user id")] = None,
    team: Annotated[int | None, Parameter(description="Team id")] = None,
    tag: Annotated[str | None, QueryParameter(description="Has this tag")] = None,
    source: Annotated[str | None, QueryParameter(description="Where it came from")] = None,
    account: Annotated[int | None, Parameter(description="Contacts of this account")] = None,
    sort: Annotated[str, Parameter(description="name, updated or created")] = "name",
    after: Annotated[str | None, Parameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Parameter(ge=1, le=listing.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """One page of customers. Filter on custom fields with ``cf_<key>=<value>``; follow
    ``next`` (a cursor for ``after``) until it is ``null``."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    params = dict(request.query_params)
    kind = _kind_of(request) or params.get("kind")
    filters = listing.parse_filters(params, kind=kind)
    page = await listing.list_page(rapport, actor, filters, after=after, limit=limit,
                                   columns=listing.LIST_COLUMNS)
    data = await _serialise(page.rows, actor)
    return {"data": data, "next": page.next_cursor}


async def _get_in_kind(request: Request, customer_id: int, permission: str) -> dict[str, Any]:
    row = await service.get_customer(request.app.state.rapport, current_actor(request),
                                     customer_id, permission)
    kind = _kind_of(request)
    if kind is not None and row["kind"] != kind:
        raise CustomerNotFound(f"customer {customer_id} is not an {kind}")
    return row


@get(["/api/v1/customers/{customer_id:int}", "/api/v1/accounts/{customer_id:int}",
      "/api/v1/contacts/{customer_id:int}"], opt={"permission": "core.customer.view"}, **API,
     summary="Get a customer")
async def get_customer(request: Request, customer_id: FromPath[int]) -> dict[str, Any]:
    """A customer with emails, phones, addresses, tags and custom values."""
    row = await _get_in_kind(request, customer_id, "core.customer.view")
    return (await _serialise([row], current_actor(request), full=True))[0]


_EMAILS = nullable({"anyOf": [
    text(5000), array({"anyOf": [EMAIL, obj({"email": EMAIL, "label": nullable(text(40))},
                                           required=["email"])]}, max_items=50)]})
_PHONES = nullable({"anyOf": [
    text(5000), array({"anyOf": [text(50), obj({"phone": text(50),
                                                "label": nullable(text(40))},
                                               required=["phone"])]}, max_items=50)]})
_COORDINATE = nullable({"anyOf": [{"type": "number", "minimum": -180, "maximum": 180},
                                  text(30)]})
_ADDRESS = obj({"label": nullable(text(40)), "street": nullable(text(300)),
                "city": nullable(text(150)), "region": nullable(text(150)),
                "postcode": nullable(text(30)), "country": nullable(text(2)),
                "latitude": _COORDINATE, "longitude": _COORDINATE})
CUSTOMER_BODY = obj({
    "kind": enum("account", "contact"),
    "name": nullable(text(300)), "first_name": nullable(text(150)),
    "last_name": nullable(text(150)), "job_title": nullable(text(150)),
    "source": nullable(text(100)), "industry": nullable(text(150)),
    "notes": nullable(text(20000)), "website": nullable(text(300)),
    "lifecycle_stage": nullable(text(20)), "birthday": nullable(DATE),
    "preferred_channel": nullable(text(20)),
    "opted_out_channels": nullable({"anyOf": [text(500), array(text(20), max_items=20)]}),
    "do_not_contact": nullable({"anyOf": [BOOLEAN, text(5)]}),
    "annual_revenue": nullable({"anyOf": [MONEY, {"type": "integer", "minimum": -10**15,
                                                  "maximum": 10**15}]}),
    "currency": nullable(text(3)), "region": nullable(text(2)),
    "owner": nullable(ID), "team": nullable(ID), "account": nullable(ID),
    "emails": _EMAILS, "phones": _PHONES,
    "addresses": nullable(array(_ADDRESS, max_items=20)),
    "tags": nullable({"anyOf": [text(2000), array(text(64), max_items=100)]}),
    "custom": nullable(obj({}, additionalProperties=nullable({"anyOf": [
        text(5000), {"type": "number"}, BOOLEAN, array(text(200), max_items=100)]}))),
}, description="An account or contact; lists (emails, phones, addresses, tags) replace "
               "the customer's whole list, custom values only the keys given.")


@accepts(CUSTOMER_BODY)
@post(["/api/v1/customers", "/api/v1/accounts", "/api/v1/contacts"], opt={"permission": "core.customer.create"}, **API,
      summary="Create a customer")
async def create_customer(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Create an account or contact. Body: ``kind`` (implied by /accounts and /contacts),
    ``name`` or ``first_name``/``last_name``, ``emails``, ``phones``, ``addresses``, ``tags``,
    ``lifecycle_stage``, ``owner``, ``team``, ``account``, ``custom`` ({key: value}), ..."""
    if not isinstance(data, dict):
        raise CustomerError("body", "must be a JSON object")
    kind = _kind_of(request)
    if kind is not None:
        if data.get("kind", kind) != kind:
            raise CustomerError("kind", f"must be {kind} here")
        data = {**data, "kind": kind}
    actor = current_actor(request)
    row = await service.create_customer(request.app.state.rapport, actor, data, ip=client_ip(request))
    body = (await _serialise([row], actor, full=True))[0]
    return Response(body, status_code=201,
                    headers={"location": f"/api/v1/customers/{row['id']}"})


@accepts(CUSTOMER_BODY)
@patch(["/api/v1/customers/{customer_id:int}", "/api/v1/accounts/{customer_id:int}",
        "/api/v1/contacts/{customer_id:int}"], opt={"permission": "core.customer.edit"}, **API,
       summary="Change a customer")
async def update_customer(request: Request, customer_id: FromPath[int],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Change the fields given; lists (emails, phones, addresses, tags) are replaced whole,
    custom values only for the keys given."""
    if not isinstance(data, dict):
        raise CustomerError("body", "must be a JSON object")
    await _get_in_kind(request, customer_id, "core.customer.edit")
    actor = current_actor(request)
    row = await service.update_customer(request.app.state.rapport, actor, customer_id, data,
                                        ip=client_ip(request))
    return (await _serialise([row], actor, full=True))[0]


@delete(["/api/v1/customers/{customer_id:int}", "/api/v1/accounts/{customer_id:int}",
         "/api/v1/contacts/{customer_id:int}"], opt={"permission": "core.customer.delete"}, **API,
        summary="Delete a customer")
async def delete_customer(request: Request, customer_id: FromPath[int]) -> None:
    """Delete a customer (an account's contacts are kept, unlinked)."""
    await _get_in_kind(request, customer_id, "core.customer.delete")
    await service.delete_customer(request.app.state.rapport, current_actor(request),
                                  customer_id, ip=client_ip(request))


@get("/api/v1/custom-fields", opt={"permission": "core.customer.view"}, **API,
     summary="List custom fields")
async def list_custom_fields() -> dict[str, Any]:
    """The custom fields defined by administrators (keys are used in ``custom`` and
    ``cf_<key>`` filters)."""
    defs = await custom_fields.field_definitions()
    return {"data": [{"key": d.key, "label": d.label, "type": d.field_type,
                      "applies_to": d.applies_to, "required": d.required,
                      "choices": list(d.choices)} for d in defs]}


ROUTES = [list_customers, get_customer, create_customer, update_customer, delete_customer,
          list_custom_fields]
