"""Staff pages: write an e-mail to a customer (``/customers/{id}/email``) and the
administrators' e-mail templates (``/admin/email-templates``). Plain forms: no JavaScript
needed."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from core import mail
from core.audit import client_ip
from core.interactions import email, policy
from core.interactions.web import FORM
from core.permissions import current_actor
from core.records import RecordNotFound

SETTINGS = "core.settings.manage"


async def _customer(request: Request, customer_id: int) -> dict[str, Any]:
    try:
        row = await email.customer_for_email(request.app.state.rapport, current_actor(request),
                                             customer_id)
    except email.EmailRefused as exc:
        raise PermissionDeniedException(str(exc)) from None
    if row is None:
        raise NotFoundException("No such customer")
    return row


async def _compose_page(request: Request, customer: dict[str, Any], values: dict[str, Any],
                        errors: dict[str, str], *, status_code: int = 200,
                        flash: str = "") -> Template:
    rapport = request.app.state.rapport
    decision = await policy.check_contact(rapport, customer["id"], "email")
    return Template("interactions/email.html", status_code=status_code, context={
        "customer": customer, "values": values, "errors": errors,
        "addresses": await email.addresses(customer), "templates": await email.list_templates(),
        "policy": decision, "sends_mail": mail.sends_mail(), "flash": flash,
        "sent": request.query_params.get("sent"),
    })


@get("/customers/{customer_id:int}/email", name="customer-email",
     opt={"permission": "core.interaction.create"}, include_in_schema=False)
async def compose(request: Request, customer_id: FromPath[int]) -> Template:
    """The form; ``?template=ID`` fills subject and body from a template for this customer."""
    customer = await _customer(request, customer_id)
    addresses = await email.addresses(customer)
    values: dict[str, Any] = {"to": request.query_params.get("to") or
                              (addresses[0] if addresses else "")}
    errors: dict[str, str] = {}
    chosen = request.query_params.get("template")
    if chosen:
        template = await email.get_template(chosen)
        if template is None:
            errors["template"] = "There is no such template any more: pick another."
        else:
            fields = email.personalisation(
                customer, await email.account_name(customer), current_actor(request).name,
                request.app.state.rapport.settings.instance_name)
            try:
                values.update(email.render(template, fields), template=template["id"])
            except Exception:  # noqa: BLE001 - a template saved before the rules were checked
                errors["template"] = "This template cannot be filled in: ask an administrator."
    return await _compose_page(request, customer, values, errors)


@post("/customers/{customer_id:int}/email", opt={"permission": "core.interaction.create"},
      include_in_schema=False)
async def send(request: Request, customer_id: FromPath[int],
               data: Annotated[dict[str, str], FORM]) -> Response:
    customer = await _customer(request, customer_id)
    try:
        result = await email.send_customer_email(
            request.app.state.rapport, current_actor(request), customer, to=data.get("to", ""),
            subject=data.get("subject", ""), body=data.get("body", ""), ip=client_ip(request))
    except email.EmailError as exc:
        return await _compose_page(request, customer, dict(data), exc.errors, status_code=400)
    outcome = "outbox" if result.kept_in_outbox else "sent"
    return Redirect(f"/customers/{customer_id}/email?sent={outcome}", status_code=303)


# --- templates (administrators) --------------------------------------------------------------


def _template_page(values: dict[str, Any], errors: dict[str, str], template=None, *,
                   status_code: int = 200) -> Template:
    return Template("interactions/email_template.html", status_code=status_code, context={
        "values": values, "errors": errors, "template": template, "fields": email.FIELDS})


@get("/admin/email-templates", opt={"permission": SETTINGS}, include_in_schema=False)
async def templates_list(request: Request) -> Template:
    return Template("interactions/email_templates.html", context={
        "templates": await email.list_templates(), "fields": email.FIELDS,
        "done": request.query_params.get("done")})


@get("/admin/email-templates/new", opt={"permission": SETTINGS}, include_in_schema=False)
async def template_new(request: Request) -> Template:
    return _template_page({"body": "Hello {{ first_name }},\n\n\n\n{{ sender_name }}\n"}, {})


@post("/admin/email-templates/new", opt={"permission": SETTINGS}, include_in_schema=False)
async def template_create(request: Request, data: Annotated[dict[str, str], FORM]) -> Response:
    try:
        await email.save_template(current_actor(request), data, ip=client_ip(request))
    except email.EmailError as exc:
        return _template_page(dict(data), exc.errors, status_code=400)
    return Redirect("/admin/email-templates?done=saved", status_code=303)


async def _template(template_id: int) -> dict[str, Any]:
    row = await email.get_template(template_id)
    if row is None:
        raise NotFoundException("No such template")
    return row


@get("/admin/email-templates/{template_id:int}", opt={"permission": SETTINGS},
     include_in_schema=False)
async def template_edit(request: Request, template_id: FromPath[int]) -> Template:
    row = await _template(template_id)
    return _template_page(dict(row), {}, row)


@post("/admin/email-templates/{template_id:int}", opt={"permission": SETTINGS},
      include_in_schema=False)
async def template_update(request: Request, template_id: FromPath[int],
                          data: Annotated[dict[str, str], FORM]) -> Response:
    row = await _template(template_id)
    try:
        await email.save_template(current_actor(request), data, template_id,
                                  ip=client_ip(request))
    except email.EmailError as exc:
        return _template_page(dict(data), exc.errors, row, status_code=400)
    return Redirect("/admin/email-templates?done=saved", status_code=303)


@post("/admin/email-templates/{template_id:int}/delete", opt={"permission": SETTINGS},
      include_in_schema=False, status_code=303)
async def template_delete(request: Request, template_id: FromPath[int]) -> Redirect:
    try:
        await email.delete_template(current_actor(request), template_id, ip=client_ip(request))
    except RecordNotFound:
        raise NotFoundException("No such template") from None
    return Redirect("/admin/email-templates?done=deleted", status_code=303)


ROUTES = [compose, send, templates_list, template_new, template_create, template_edit,
          template_update, template_delete]
