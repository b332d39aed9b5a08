"""Staff pages for customers: account and contact lists, forms, bulk actions, CSV export,
and the administrator's custom-field page. The 360° page (/customers/{id}) lives in
core.customer360; these pages link to it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from core import bulk
from core.audit import client_ip
from core.customers import custom_fields, listing, service
from core.customers.export import csv_export
from core.customers.service import CustomerError, CustomerNotFound
from core.customers.tables import CHANNELS, LIFECYCLE_STAGES, Customer, CustomField
from core.permissions import current_actor

PAGE_SIZE = 50
PLURAL = {"account": "accounts", "contact": "contacts"}
KIND_OF = {"accounts": "account", "contacts": "contact"}



async def _form(request: Request) -> Any:
    return await request.form()


# --- lists -----------------------------------------------------------------------------------


async def _list(request: Request, kind: str) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    error = None
    try:
        filters = listing.parse_filters(request.query_params, kind=kind)
        page = await listing.list_page(rapport, actor, filters,
                                       after=request.query_params.get("after") or None,
                                       before=request.query_params.get("before") or None,
                                       limit=PAGE_SIZE)
        # The first page (no cursor) with fewer rows than a page needs no count query.
        first = page.previous_cursor is None
        count = len(page.rows) if first and page.next_cursor is None else \
            await listing.count_upto(rapport, actor, filters)
    except CustomerError as exc:
        error = exc
        filters = listing.CustomerFilters(kind=kind)
        page = listing.Page(rows=[], next_cursor=None)
        count = 0
    await listing.decorate(page.rows)
    defs = await custom_fields.field_definitions(kind)
    query = filters.query_items()
    context = {
        "kind": kind, "plural": PLURAL[kind], "filters": filters, "page": page,
        "error": error, "defs": defs, "choices": await listing.choices_for_filters(),
        "query": urlencode(query), "filtered": bool(query and query != [("sort", filters.sort)]),
        "first_page": page.previous_cursor is None and not request.query_params.get("after"),
        "total": listing.total_text(count, kind, PLURAL[kind]),
        "next_url": (f"/{PLURAL[kind]}?" + urlencode(query + [("after", page.next_cursor)]))
        if page.next_cursor else None,
        "sort_urls": {key: f"/{PLURAL[kind]}?" + urlencode(
            [(k, v) for k, v in query if k != "sort"] + ([("sort", key)] if key != "name"
                                                          else []))
            for key in listing.SORTS},
        "previous_url": (f"/{PLURAL[kind]}?" + urlencode(
            query + [("before", page.previous_cursor)])) if page.previous_cursor else None,
        "can": {p: actor.can(f"core.customer.{p}")
                for p in ("create", "edit", "assign", "export", "delete")},
        "changed": request.query_params.get("changed"),
    }
    if request.htmx and request.htmx.target == "results":
        return Template("customers/_results.html", context=context)
    return Template("customers/list.html", context=context,
                    status_code=400 if error else 200)


@get("/accounts", name="accounts", opt={"permission": "core.customer.view"}, include_in_schema=False)
async def accounts_list(request: Request) -> Template:
    return await _list(request, "account")


@get("/contacts", name="contacts", opt={"permission": "core.customer.view"}, include_in_schema=False)
async def contacts_list(request: Request) -> Template:
    return await _list(request, "contact")


@get("/accounts/options", opt={"permission": "core.customer.view"}, include_in_schema=False)
async def account_options(request: Request) -> Template:
    """Suggestions for the account field of the contact form (a datalist)."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    filters = listing.CustomerFilters(kind="account",
                                      q=str(request.query_params.get("account") or "")[:100])
    if re.search(r"#\d+\)?$", filters.q):
        filters.q = ""
    page = await listing.list_page(rapport, actor, filters, limit=20,
                                   columns=(Customer.id, Customer.name))
    return Template("customers/_account_options.html", context={"accounts": page.rows})


async def _export(request: Request, kind: str) -> Stream:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    try:
        filters = listing.parse_filters(request.query_params, kind=kind)
        await listing.where_clauses(rapport, actor, filters)  # refuse bad filters up front
    except CustomerError as exc:
        raise NotFoundException(f"{exc.field}: {exc.message}") from None
    return Stream(
        csv_export(rapport, actor, filters, ip=client_ip(request)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{PLURAL[kind]}.csv"'},
    )


@get("/accounts/export.csv", opt={"permission": "core.customer.export"}, include_in_schema=False)
async def accounts_export(request: Request) -> Stream:
    return await _export(request, "account")


@get("/contacts/export.csv", opt={"permission": "core.customer.export"}, include_in_schema=False)
async def contacts_export(request: Request) -> Stream:
    return await _export(request, "contact")


@post("/customers/bulk", opt={"permission": "core.customer.view",
                              "write_permission": "core.customer.edit"}, include_in_schema=False, status_code=303)
async def bulk_action(request: Request) -> Redirect | Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    form = await _form(request)
    try:
        ids = [int(i) for i in form.getall("ids")] if "ids" in form else []
    except ValueError:
        ids = []
    action = form.get("action", "")
    value = form.get({"assign_owner": "owner", "add_tag": "tag",
                      "change_stage": "stage"}.get(action, "value"), "")
    try:
        changed = await service.bulk_change(rapport, actor, action, ids, value,
                                            ip=client_ip(request))
    except CustomerError as exc:
        return bulk.nothing_changed(exc.message, bulk.back_url(form.get("back"), "/contacts"))
    return bulk.back_to_list(form.get("back"), "/contacts", changed=changed)


# --- forms -----------------------------------------------------------------------------------


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,;]", text or "") if line.strip()]


def _account_id(raw: str | None) -> str:
    """The account field holds "Name (#id)" when picked from suggestions, or an id."""
    text = (raw or "").strip()
    match = re.search(r"#?(\d+)\)?$", text)
    if match:
        return match.group(1)
    return "" if not text else "not-an-id"


def form_to_data(form: Any, kind: str, defs: list[custom_fields.FieldDef],
                 *, may_assign: bool, creating: bool) -> dict[str, Any]:
    """Turn the customer form into the dict :mod:`core.customers.service` takes."""
    data: dict[str, Any] = {"kind": kind}
    plain = ["job_title", "lifecycle_stage", "source", "website", "industry", "notes",
             "birthday", "preferred_channel", "annual_revenue", "currency"]
    plain += ["first_name", "last_name"] if kind == "contact" else ["name"]
    for name in plain:
        data[name] = form.get(name, "")
    data["do_not_contact"] = form.get("do_not_contact") == "on"
    data["opted_out_channels"] = form.getall("opted_out_channels") \
        if "opted_out_channels" in form else []
    data["emails"] = _lines(form.get("emails"))
    data["phones"] = [p.strip() for p in (form.get("phones") or "").splitlines() if p.strip()]
    data["tags"] = _lines(form.get("tags"))
    address = {n: form.get(f"address_{n}", "") for n in
               ("street", "city", "region", "postcode", "country")}
    data["addresses"] = [address]
    if kind == "contact":
        data["account"] = _account_id(form.get("account"))
    if may_assign:
        data["owner"] = form.get("owner", "")
        data["team"] = form.get("team", "")
    custom: dict[str, Any] = {}
    for d in defs:
        if d.field_type == "multi_choice":
            custom[d.key] = form.getall(d.form_name) if d.form_name in form else []
        elif d.field_type == "boolean":
            custom[d.key] = "yes" if form.get(d.form_name) == "on" else "no"
        else:
            custom[d.key] = form.get(d.form_name, "")
    data["custom"] = custom
    return data


def _field_errors(errors: dict[str, str]) -> dict[str, str]:
    """Map service field names onto form inputs (``emails[2]`` -> ``emails``)."""
    shown: dict[str, str] = {}
    for key, message in errors.items():
        match = re.match(r"addresses\[\d+\]\.(\w+)", key)
        name = f"address_{match.group(1)}" if match else key.split("[")[0]
        shown.setdefault(name, message)
    return shown


async def _form_context(request: Request, kind: str, values: dict[str, Any],
                        errors: dict[str, str], customer: dict[str, Any] | None) -> dict:
    actor = current_actor(request)
    return {
        "kind": kind, "plural": PLURAL[kind], "values": values, "errors": errors,
        "customer": customer, "defs": await custom_fields.field_definitions(kind),
        "choices": await listing.choices_for_filters(), "stages": LIFECYCLE_STAGES,
        "channels": CHANNELS, "may_assign": actor.can("core.customer.assign"),
    }


def _values_from_form(form: Any) -> dict[str, Any]:
    values = {k: form.get(k) for k in form}
    for multi in ("opted_out_channels",) + tuple(k for k in form if k.startswith("cf_")):
        if multi in form:
            values[multi] = form.getall(multi)
    return values


async def _new_page(request: Request, kind: str) -> Template:
    values = {"lifecycle_stage": "lead", "owner": current_actor(request).id}
    return Template("customers/form.html",
                    context=await _form_context(request, kind, values, {}, None))


async def _create(request: Request, kind: str) -> Redirect | Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    form = await _form(request)
    defs = await custom_fields.field_definitions(kind)
    data = form_to_data(form, kind, defs, may_assign=actor.can("core.customer.assign"),
                        creating=True)
    try:
        row = await service.create_customer(rapport, actor, data, ip=client_ip(request))
    except CustomerError as exc:
        context = await _form_context(request, kind, _values_from_form(form),
                                      _field_errors(exc.errors), None)
        return Template("customers/form.html", context=context, status_code=400)
    return Redirect(f"/customers/{row['id']}", status_code=303)


@get("/accounts/new", opt={"permission": "core.customer.create"}, include_in_schema=False)
async def new_account(request: Request) -> Template:
    return await _new_page(request, "account")


@get("/contacts/new", opt={"permission": "core.customer.create"}, include_in_schema=False)
async def new_contact(request: Request) -> Template:
    return await _new_page(request, "contact")


@post("/accounts/new", opt={"permission": "core.customer.create"}, include_in_schema=False, status_code=303)
async def create_account(request: Request) -> Redirect | Template:
    return await _create(request, "account")


@post("/contacts/new", opt={"permission": "core.customer.create"}, include_in_schema=False, status_code=303)
async def create_contact(request: Request) -> Redirect | Template:
    return await _create(request, "contact")


async def _load(request: Request, customer_id: int, permission: str) -> dict[str, Any]:
    try:
        return await service.get_customer(request.app.state.rapport, current_actor(request),
                                          customer_id, permission)
    except CustomerNotFound:
        raise NotFoundException("No such customer") from None


async def _values_of(customer: dict[str, Any]) -> dict[str, Any]:
    """A stored customer as form values."""
    details = await service.customer_details(customer["id"])
    values = dict(customer)
    values["emails"] = "\n".join(e["email"] for e in details["emails"])
    values["phones"] = "\n".join(service.display_phone(p["phone"]) for p in details["phones"])
    values["tags"] = ", ".join(details["tags"])
    address = details["addresses"][0] if details["addresses"] else {}
    for n in ("street", "city", "region", "postcode", "country"):
        values[f"address_{n}"] = address.get(n, "")
    values["opted_out_channels"] = [c for c in (customer["opted_out_channels"] or "").split(",")
                                    if c]
    if customer.get("account"):
        account = await Customer.select(Customer.name).where(
            Customer.id == customer["account"]).first().run()
        values["account"] = f"{account['name']} (#{customer['account']})" if account else ""
    else:
        values["account"] = ""
    defs = await custom_fields.field_definitions(customer["kind"])
    for d in defs:
        value = details["custom"].get(d.key)
        if d.field_type == "multi_choice":
            values[d.form_name] = value or []
        elif d.field_type == "boolean":
            values[d.form_name] = "on" if value else ""
        else:
            values[d.form_name] = custom_fields.display(d, value)
    for key in ("birthday", "annual_revenue"):
        values[key] = "" if values.get(key) is None else str(values[key])
    return values


@get("/customers/{customer_id:int}/edit", opt={"permission": "core.customer.edit"}, include_in_schema=False)
async def edit_customer(request: Request, customer_id: FromPath[int]) -> Template:
    customer = await _load(request, customer_id, "core.customer.edit")
    context = await _form_context(request, customer["kind"], await _values_of(customer), {},
                                  customer)
    return Template("customers/form.html", context=context)


@post("/customers/{customer_id:int}/edit", opt={"permission": "core.customer.edit"}, include_in_schema=False,
      status_code=303)
async def save_customer(request: Request, customer_id: FromPath[int]) -> Redirect | Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    customer = await _load(request, customer_id, "core.customer.edit")
    form = await _form(request)
    defs = await custom_fields.field_definitions(customer["kind"])
    data = form_to_data(form, customer["kind"], defs,
                        may_assign=actor.can("core.customer.assign"), creating=False)
    try:
        await service.update_customer(rapport, actor, customer_id, data, ip=client_ip(request))
    except CustomerNotFound:
        raise NotFoundException("No such customer") from None
    except CustomerError as exc:
        context = await _form_context(request, customer["kind"], _values_from_form(form),
                                      _field_errors(exc.errors), customer)
        return Template("customers/form.html", context=context, status_code=400)
    return Redirect(f"/customers/{customer_id}", status_code=303)


@get("/customers/{customer_id:int}/delete", opt={"permission": "core.customer.delete"}, include_in_schema=False)
async def confirm_delete(request: Request, customer_id: FromPath[int]) -> Template:
    customer = await _load(request, customer_id, "core.customer.delete")
    contacts = 0
    if customer["kind"] == "account":
        contacts = await Customer.count().where(Customer.account == customer_id).run()
    return Template("customers/delete.html", context={"customer": customer,
                                                      "contacts": contacts})


@post("/customers/{customer_id:int}/delete", opt={"permission": "core.customer.delete"}, include_in_schema=False,
      status_code=303)
async def delete_customer(request: Request, customer_id: FromPath[int]) -> Redirect:
    customer = await _load(request, customer_id, "core.customer.delete")
    await service.delete_customer(request.app.state.rapport, current_actor(request),
                                  customer_id, ip=client_ip(request))
    return Redirect(f"/{PLURAL[customer['kind']]}", status_code=303)


# --- administrator: custom fields ------------------------------------------------------------


async def _fields_page(request: Request, values: dict | None = None,
                       errors: dict | None = None, status: int = 200) -> Template:
    defs = await custom_fields.field_definitions()
    return Template("customers/custom_fields.html", status_code=status, context={
        "defs": defs, "types": custom_fields.TYPE_LABELS, "values": values or {},
        "errors": errors or {}})


@get("/admin/custom-fields", opt={"permission": "core.settings.manage"}, include_in_schema=False)
async def custom_fields_page(request: Request) -> Template:
    return await _fields_page(request)


@post("/admin/custom-fields", opt={"permission": "core.settings.manage"}, include_in_schema=False, status_code=303)
async def add_custom_field(request: Request) -> Redirect | Template:
    form = await _form(request)
    data = {k: form.get(k) for k in form}
    data["required"] = form.get("required") == "on"
    try:
        await custom_fields.create_definition(current_actor(request), data)
    except custom_fields.CustomFieldError as exc:
        return await _fields_page(request, data, {exc.field: exc.message}, 400)
    return Redirect("/admin/custom-fields", status_code=303)


async def _definition(field_id: int) -> dict[str, Any]:
    row = await CustomField.select().where(CustomField.id == field_id).first().run()
    if row is None:
        raise NotFoundException("No such custom field")
    return row


@get("/admin/custom-fields/{field_id:int}", opt={"permission": "core.settings.manage"}, include_in_schema=False)
async def custom_field_page(request: Request, field_id: FromPath[int]) -> Template:
    row = await _definition(field_id)
    return Template("customers/custom_field_form.html", context={
        "field": row, "values": row, "errors": {}, "types": custom_fields.TYPE_LABELS})


@post("/admin/custom-fields/{field_id:int}", opt={"permission": "core.settings.manage"}, include_in_schema=False,
      status_code=303)
async def save_custom_field(request: Request, field_id: FromPath[int]) -> Redirect | Template:
    row = await _definition(field_id)
    form = await _form(request)
    data = {k: form.get(k) for k in form}
    data["required"] = form.get("required") == "on"
    try:
        await custom_fields.update_definition(current_actor(request), field_id, data)
    except custom_fields.CustomFieldError as exc:
        return Template("customers/custom_field_form.html", status_code=400, context={
            "field": row, "values": {**row, **data}, "errors": {exc.field: exc.message},
            "types": custom_fields.TYPE_LABELS})
    return Redirect("/admin/custom-fields", status_code=303)


@post("/admin/custom-fields/{field_id:int}/delete", opt={"permission": "core.settings.manage"}, include_in_schema=False,
      status_code=303)
async def delete_custom_field(request: Request, field_id: FromPath[int]) -> Redirect:
    await _definition(field_id)
    await custom_fields.delete_definition(current_actor(request), field_id)
    return Redirect("/admin/custom-fields", status_code=303)


ROUTES = [
    accounts_list, contacts_list, account_options, accounts_export, contacts_export, bulk_action,
    new_account, new_contact, create_account, create_contact, edit_customer, save_customer,
    confirm_delete, delete_customer, custom_fields_page, add_custom_field, custom_field_page,
    save_custom_field, delete_custom_field,
]
