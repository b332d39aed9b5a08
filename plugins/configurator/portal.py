"""Portal: a customer configures a published product (same answers and explanations as
staff), saves configurations, compares two or three, and asks for a quote through the sales
plugin's documented portal quote request when sales runs. Every query is bounded by the
signed-in customer's id: another customer's configuration answers 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.permissions import Actor, current_actor
from core.plugin import NavItem
from plugins.configurator import configurations, models
from plugins.configurator.configurations_web import (
    _int,
    _published,
    defaults,
    live,
    page_context,
    sales_enabled,
    summary_context,
    values_from_form,
)
from plugins.configurator.configure import ConfigurationError

PORTAL = {"permission": "configurator.portal.view"}


def _customer_id(request: Request) -> int:
    actor: Actor = current_actor(request)
    if actor.kind != "portal" or actor.customer_id is None:
        raise NotFoundException("not found")
    return actor.customer_id


def _frame(request: Request) -> str:
    try:
        request.app.template_engine.get_template("portal/base.html")
    except Exception:  # noqa: BLE001 - a theme without a portal frame
        return "base.html"
    return "portal/base.html"


async def _page(request: Request, template: str, context: dict[str, Any],
                status_code: int = 200) -> Template:
    """Inside the portal's frame, with the navigation every plugin contributes."""
    rapport = request.app.state.rapport
    customer = await Customer.select(Customer.id, Customer.name).where(
        Customer.id == _customer_id(request)).first().run()
    items = [NavItem(label="Home", href="/portal/", order=0)] + rapport.collect(
        "register_portal_nav_items", rapport=rapport, customer=customer or {})
    chrome = {"brand": {"name": rapport.settings.instance_name, "logo_url": ""},
              "portal_frame": _frame(request), "customer": customer,
              "portal_nav": sorted(items, key=lambda i: (i.order, i.label)), "portal": True,
              "base": "/portal/configurator"}
    return Template(template, context={**chrome, **context}, status_code=status_code)


def nav_items(customer: Any) -> list[NavItem]:
    return [NavItem("Configure", "/portal/configurator", order=35)]


@get("/configurator", opt=PORTAL)
async def portal_home(request: Request) -> Template:
    customer_id = _customer_id(request)
    return await _page(request, "configurator/portal_home.html", {
        "products": await models.list_models(published_only=True),
        "configurations": await configurations.list_for(customer_id=customer_id, limit=50)})


@get("/configurator/models/{model_id:int}/configure", opt=PORTAL)
async def portal_configure(request: Request, model_id: FromPath[int]) -> Template:
    _customer_id(request)
    model, version = await _published(model_id)
    saved = None
    configuration = _int(request.query_params.get("configuration"))
    if configuration is not None:
        saved = await configurations.get(configuration, customer_id=_customer_id(request))
        if saved is None or saved["model"] != model_id:
            raise NotFoundException("not found")
    values = saved["choices"] if saved else defaults(version["definition"])
    context = await page_context(request.app.state.rapport, version, values,
                                 saved["quantity"] if saved else 1)
    return await _page(request, "configurator/configure.html", {
        **context, "model": model, "name": saved["name"] if saved else "",
        "configuration_id": saved["id"] if saved else None,
        "assess_url": f"/portal/configurator/models/{model_id}/assess",
        "save_url": "/portal/configurator/configurations"})


@post("/configurator/models/{model_id:int}/assess", opt=PORTAL, include_in_schema=False)
async def portal_assess(request: Request, model_id: FromPath[int]) -> Template:
    _customer_id(request)
    form = await request.form()
    model, version = await _published(model_id)
    return await live(request, model, version, form, portal=True,
                      assess_url=f"/portal/configurator/models/{model_id}/assess")


@post("/configurator/configurations", opt=PORTAL, status_code=303)
async def portal_save(request: Request) -> Response:
    customer_id = _customer_id(request)
    form = await request.form()
    model, version = await _published(_int(form.get("model")) or 0)
    values = values_from_form(version["definition"], form)
    existing = _int(form.get("configuration"))
    if existing is not None and await configurations.get(existing, customer_id=customer_id) \
            is None:
        raise NotFoundException("not found")
    try:
        row = await configurations.save(request.app.state.rapport, current_actor(request), {
            "model": model["id"], "version": form.get("version"), "values": values,
            "quantity": form.get("quantity"), "name": form.get("name"),
            "total": form.get("total")}, customer_id=customer_id, via="portal",
            ip=client_ip(request), configuration_id=existing)
    except ConfigurationError as exc:
        context = await page_context(request.app.state.rapport, version, values,
                                     form.get("quantity"), errors={exc.field: exc.message})
        return await _page(request, "configurator/configure.html", {
            **context, "model": model, "name": form.get("name") or "",
            "save_error": exc.message, "configuration_id": existing,
            "assess_url": f"/portal/configurator/models/{model['id']}/assess",
            "save_url": "/portal/configurator/configurations"}, status_code=400)
    return Redirect(f"/portal/configurator/configurations/{row['id']}", status_code=303)


@get("/configurator/configurations/{configuration_id:int}", opt=PORTAL)
async def portal_configuration(request: Request, configuration_id: FromPath[int]) -> Template:
    customer_id = _customer_id(request)
    row = await configurations.get(configuration_id, customer_id=customer_id)
    if row is None:
        raise NotFoundException("not found")
    context = await summary_context(request.app.state.rapport, row)
    actor = current_actor(request)
    return await _page(request, "configurator/summary.html", {
        **context, "print_view": request.query_params.get("print_view") == "1",
        "sales": sales_enabled(request) and actor.can("sales.portal.view"),
        "others": [r for r in await configurations.list_for(customer_id=customer_id, limit=20)
                   if r["id"] != row["id"]]})


@get("/configurator/compare", opt=PORTAL)
async def portal_compare(request: Request) -> Template:
    customer_id = _customer_id(request)
    wanted = [_int(x) for x in request.query_params.getall("ids", [])][:3]
    rows = [await configurations.get(i, customer_id=customer_id) for i in wanted
            if i is not None]
    rows = [r for r in rows if r is not None]
    error = None
    table = None
    try:
        table = await configurations.comparison(rows)
    except ConfigurationError as exc:
        error = exc.message
    return await _page(request, "configurator/compare.html", {"table": table, "error": error})


ROUTES = [portal_home, portal_configure, portal_assess, portal_save, portal_configuration,
          portal_compare]
