"""Staff pages (and API endpoints) for bringing customer data in and keeping it clean:
likely duplicates, merging, CSV and vCard import, vCard export."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from core.customers import duplicates, merge
from core.customers.service import CustomerNotFound
from core.permissions import current_actor


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


# --- likely duplicates -----------------------------------------------------------------------


def _values_from(params: Any) -> dict[str, Any]:
    keys = ("kind", "name", "first_name", "last_name", "account", "emails", "phones", "email",
            "phone")
    return {k: params.get(k) for k in keys if params.get(k)}


@get("/customers/duplicates", name="customer-duplicates",
     opt={"permission": "core.customer.view"})
async def duplicates_page(request: Request) -> Template:
    """Groups of customers that share an email, a phone or a name at the same account."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    groups = await duplicates.duplicate_groups(rapport, actor)
    return Template("customers/merge_candidates.html", context={
        "groups": groups, "may_merge": actor.can("core.customer.edit")})


@get("/customers/duplicates/check", opt={"permission": "core.customer.create"},
     include_in_schema=False)
async def duplicates_check(request: Request) -> Template:
    """The warning a new-customer form shows (htmx) while its fields are filled in."""
    rapport = request.app.state.rapport
    values = _values_from(request.query_params)
    exclude = request.query_params.get("exclude")
    found = await duplicates.likely_duplicates(
        rapport, current_actor(request), values,
        exclude_id=int(exclude) if exclude and exclude.isdigit() else None)
    return Template("customers/merge_warning.html", context={"duplicates": found})


@get("/api/v1/customers/duplicates", opt={"permission": "core.customer.create"})
async def duplicates_api(
    request: Request,
    kind: Annotated[str | None, QueryParameter(description="account or contact")] = None,
    name: Annotated[str | None, QueryParameter()] = None,
    first_name: Annotated[str | None, QueryParameter()] = None,
    last_name: Annotated[str | None, QueryParameter()] = None,
    account: Annotated[int | None, QueryParameter(description="the contact's account id")] = None,
    email: Annotated[list[str] | None, QueryParameter()] = None,
    phone: Annotated[list[str] | None, QueryParameter()] = None,
) -> dict[str, Any]:
    """Likely duplicates of a customer about to be created: the same email, the same phone
    (normalised) or a close name at the same account. Matches outside the caller's scope
    have ``customer_id: null``."""
    values = {"kind": kind, "name": name, "first_name": first_name, "last_name": last_name,
              "account": account, "emails": email or [], "phones": phone or []}
    found = await duplicates.likely_duplicates(request.app.state.rapport,
                                               current_actor(request), values)
    return {"duplicates": [asdict(d) for d in found]}


# --- merging ---------------------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationException(f"{name} must be a customer id") from None


@get("/customers/merge", name="customer-merge", opt={"permission": "core.customer.edit"})
async def merge_preview_page(request: Request) -> Template:
    """Both records side by side; pick which value of each field survives."""
    rapport = request.app.state.rapport
    survivor = _int(request.query_params.get("survivor"), "survivor")
    merged = _int(request.query_params.get("merged"), "merged")
    try:
        preview = await merge.preview_merge(rapport, current_actor(request), survivor, merged)
    except CustomerNotFound:
        raise NotFoundException("no such customer") from None
    except merge.MergeError as exc:
        return Template("customers/merge_error.html", context={"message": exc.message},
                        status_code=400)
    return Template("customers/merge.html", context={"preview": preview})


@post("/customers/merge", opt={"permission": "core.customer.edit"}, status_code=303)
async def merge_execute(request: Request) -> Redirect | Template:
    rapport = request.app.state.rapport
    form = await request.form()
    survivor = _int(form.get("survivor"), "survivor")
    merged = _int(form.get("merged"), "merged")
    take = {name for name in merge.MERGEABLE_FIELDS if form.get(f"take_{name}") == "merged"}
    try:
        await merge.merge_customers(rapport, current_actor(request), survivor, merged,
                                    take_from_merged=take, ip=client_ip(request))
    except CustomerNotFound:
        raise NotFoundException("no such customer") from None
    except merge.MergeError as exc:
        return Template("customers/merge_error.html", context={"message": exc.message},
                        status_code=400)
    return Redirect(f"/customers/{survivor}?merged={merged}", status_code=303)


@post("/api/v1/customers/{survivor_id:int}/merge", opt={"permission": "core.customer.edit"},
      status_code=200)
async def merge_api(request: Request, survivor_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Merge ``merged_id`` into this customer. Body: ``{"merged_id": 12, "take_from_merged":
    ["job_title"]}``. Needs core.customer.edit on both (404 otherwise)."""
    try:
        merged_id = int(data.get("merged_id"))
    except (TypeError, ValueError):
        raise ValidationException("merged_id must be a customer id",
                                  extra=[{"key": "merged_id", "message": "required"}]) from None
    try:
        row = await merge.merge_customers(
            request.app.state.rapport, current_actor(request), survivor_id, merged_id,
            take_from_merged=set(data.get("take_from_merged") or ()), ip=client_ip(request))
    except CustomerNotFound:
        raise NotFoundException("no such customer") from None
    except merge.MergeError as exc:
        raise ValidationException(exc.message, extra=[{"key": exc.field,
                                                       "message": exc.message}]) from None
    return {"id": row["id"], "name": row["name"], "merged_id": merged_id}


ROUTES = [duplicates_page, duplicates_check, duplicates_api, merge_preview_page, merge_execute,
          merge_api]
