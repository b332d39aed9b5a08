"""Staff pages for configuring: the configure page (live remaining options, explanations and
price through htmx, one step per screen on a phone), saving for a customer, the summary
(printable, with BOM and code, "Add to quote" when sales runs) and the comparison.

The page-building helpers here are shared with the portal (``portal.py``): the same form and
answers, other routes and permissions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.permissions import current_actor, scoped
from plugins.configurator import configurations, configure, models
from plugins.configurator.configure import ConfigurationError

VIEW = {"permission": "configurator.configuration.view"}
CREATE = {"permission": "configurator.configuration.create"}
PAGE = 50


def _int(value: Any) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number is None or abs(number) < 2 ** 63 else None


def values_from_form(definition: dict[str, Any], form: Any) -> dict[str, Any]:
    """Form fields ``v.<attribute>`` as raw values (checked later by clean_values)."""
    raw: dict[str, Any] = {}
    for attr in definition.get("attributes", []):
        name = f"v.{attr['code']}"
        if attr["kind"] == "multiple":
            chosen = [str(v) for v in form.getall(name, [])] if hasattr(form, "getall") \
                else list(form.get(name) or [])
            raw[attr["code"]] = [v for v in chosen if v]
        else:
            value = form.get(name)
            if value not in (None, ""):
                raw[attr["code"]] = str(value)
    return raw


def defaults(definition: dict[str, Any]) -> dict[str, Any]:
    """A new configuration starts from the model's defaults."""
    out: dict[str, Any] = {}
    for attr in definition.get("attributes", []):
        default = attr.get("default")
        if default in (None, "", []):
            continue
        if attr["kind"] == "yesno":
            out[attr["code"]] = bool(default)
        else:
            out[attr["code"]] = default
    return out


def apply_suggestion(definition: dict[str, Any], values: dict[str, Any], text: str
                     ) -> dict[str, Any]:
    """``attr:value|attr:value`` from a "choose this instead" button."""
    changed = dict(values)
    for part in str(text or "").split("|")[:20]:
        code, _, value = part.partition(":")
        attr = next((a for a in definition.get("attributes", []) if a["code"] == code), None)
        if attr is None:
            continue
        if attr["kind"] == "multiple":
            changed[code] = [v for v in value.split(",") if v]
        elif attr["kind"] == "yesno":
            changed[code] = value == "yes"
        elif value in ("", "none"):
            changed.pop(code, None)
        else:
            changed[code] = value
    return changed


def _suggest_value(attr: dict[str, Any], value: Any) -> str:
    if attr["kind"] == "multiple":
        return ",".join(value or [])
    if attr["kind"] == "yesno":
        return "yes" if value else "no"
    if attr["kind"] == "number":
        return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value or "")
    return str(value or "none")


async def page_context(rapport: Any, version: dict[str, Any], values: dict[str, Any],
                       quantity_text: Any, *, step: int = 0, errors: dict[str, str] | None = None,
                       currency: str | None = None) -> dict[str, Any]:
    """Everything the configure form shows: steps of attributes with each option's state and
    explanation, the conflict, the price, the BOM and the code."""
    definition = version["definition"]
    errors = dict(errors or {})
    try:
        clean = configure.clean_values(definition, values)
    except ConfigurationError as exc:
        errors.setdefault(exc.field, exc.message)
        clean = {k: v for k, v in values.items() if k != exc.field.split(".", 1)[-1]}
        try:
            clean = configure.clean_values(definition, clean)
        except ConfigurationError:
            clean = {}
    try:
        quantity = configurations.quantity_of(quantity_text)
    except ConfigurationError as exc:
        errors.setdefault("quantity", exc.message)
        quantity = Decimal(1)
    engine = models.engine_of(version)
    answer = configure.assess(engine, clean)
    steps: list[dict[str, Any]] = []
    names = definition.get("steps") or []
    by_step: dict[str, list[dict[str, Any]]] = {}
    for attr in definition.get("attributes", []):
        state = answer.attributes[attr["code"]]
        options = []
        for opt in state.options:
            item = {"code": opt.code, "label": opt.label, "possible": opt.possible,
                    "chosen": opt.chosen, "why": None, "fix": None, "fix_words": ""}
            if attr["kind"] in ("single", "multiple"):
                found = next(o for o in attr["options"] if o["code"] == opt.code)
                item.update(price=Decimal(found.get("price") or 0), sku=found.get("sku"),
                            description=found.get("description", ""),
                            image=found.get("image") or "")
            if opt.explanation is not None:
                item["why"] = opt.explanation.words()
                if opt.explanation.suggestion:
                    parts = [f"{a}:{_suggest_value(engine.attributes[a], v)}"
                             for a, v, _ in opt.explanation.suggestion]
                    own = _suggest_value(attr, opt.code if attr["kind"] != "multiple"
                                         else sorted(set(clean.get(attr["code"], [])) |
                                                     {opt.code}))
                    item["fix"] = "|".join(parts + [f"{attr['code']}:{own}"])
                    item["fix_words"] = "; ".join(w for _, _, w in opt.explanation.suggestion)
            options.append(item)
        allowed = state.allowed_numbers
        view = {"attr": attr, "shown": state.shown, "options": options,
                "value": clean.get(attr["code"]), "allowed": allowed,
                "allowed_words": _ranges(allowed, attr),
                "error": errors.get(f"values.{attr['code']}")}
        by_step.setdefault(attr.get("step") or "", []).append(view)
    for name in names + [n for n in by_step if n not in names]:
        if by_step.get(name):
            steps.append({"name": name or "Choices", "attributes": by_step[name]})
    if not steps:
        steps.append({"name": "Choices", "attributes": []})
    step = max(0, min(step, len(steps) - 1))
    price = None
    price_error = None
    try:
        price = await configurations.priced(rapport, definition, clean, quantity, currency)
    except ConfigurationError as exc:
        price_error = exc.message
    problems = configure.quantity_problems(definition, clean, quantity)
    complete = answer.complete and not problems and not errors
    return {
        "version": version, "definition": definition, "values": clean, "quantity": quantity,
        "steps": steps, "step": step, "conflict": answer.conflict,
        "missing": [engine.attributes[c]["label"] for c in answer.missing],
        "quantity_problems": [w for _, w in problems], "errors": errors,
        "price": price, "price_error": price_error, "complete": complete,
        "code": configure.configuration_code(definition, version["number"], clean)
        if complete else "",
        "bom": configure.bill_of_materials(definition, clean),
        "computed": _computed(engine, definition, clean),
    }


def _computed(engine: configure.Engine, definition: dict[str, Any], values: dict[str, Any]
              ) -> list[tuple[str, str]]:
    """Computed values (power draw) for the chosen options, shown beside the price."""
    from plugins.configurator import formulas

    out = []
    expanded = formulas.expand_computed({c["code"]: formulas.parse_sum(c["formula"])
                                         for c in definition.get("computed", [])})
    chosen = engine.choice_literals(values)
    true = {x for lits in chosen.values() for x in lits if x > 0}
    for item in definition.get("computed", []):
        terms, constant = engine._terms(expanded[item["code"]])
        total = constant + sum((w for lit, w in terms if lit in true), start=0)
        out.append((item["label"], f"{Decimal(total.numerator) / Decimal(total.denominator):.0f}"
                    f" {item.get('unit') or ''}".strip()))
    return out


def _ranges(allowed: list[Decimal], attr: dict[str, Any]) -> str:
    if not allowed:
        return ""
    unit = f" {attr.get('unit')}" if attr.get("unit") else ""
    low, high = allowed[0], allowed[-1]
    every = len(allowed) == int((high - low) / Decimal(str(attr.get("increment") or 1))) + 1
    if every:
        return f"{low.normalize():f} to {high.normalize():f}{unit}"
    return ", ".join(f"{v.normalize():f}" for v in allowed[:12]) + unit + \
        (" …" if len(allowed) > 12 else "")


async def _published(model_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        model = await models.get_model(model_id)
    except LookupError:
        raise NotFoundException("not found") from None
    version = await models.current_version(model_id)
    if version is None or model["status"] != "published":
        raise NotFoundException("not found")
    return model, version


async def visible_customer(request: Request, customer_id: int | None) -> dict[str, Any] | None:
    """The customer if the user may see them (core.customer.view in their scope), else None:
    a configuration is never saved for a customer the user cannot open."""
    if customer_id is None:
        return None
    actor = current_actor(request)
    if not actor.can("core.customer.view"):
        return None
    return await scoped(Customer.select(Customer.id, Customer.name).where(
        Customer.id == customer_id), request.app.state.rapport, actor, "core.customer.view",
        Customer).first().run()


def _visible(request: Request, permission: str = configurations.VIEW) -> Any:
    """Configurations the user may reach with ``permission`` (their own, their teams' or
    all: core's row filter on the owner and team columns)."""
    return configurations.visible_to(request.app.state.rapport, current_actor(request),
                                     permission)


def sales_enabled(request: Request) -> bool:
    return configurations.sales_api(request.app.state.rapport) is not None


@get("/configurator", opt=VIEW, name="configurator-home")
async def home(request: Request, customer: FromQuery[str] = "", after: FromQuery[str] = ""
               ) -> Template:
    customer_id = _int(customer)
    rows = await configurations.list_for(customer_id=customer_id, after=_int(after),
                                         limit=PAGE + 1, where=_visible(request))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return Template("configurator/home.html", context={
        "products": await models.list_models(published_only=True),
        "configurations": rows, "customer": await visible_customer(request, customer_id),
        "next_after": rows[-1]["id"] if more and rows else None,
        "can_edit": current_actor(request).can("configurator.model.edit")})


@get("/configurator/models/{model_id:int}/configure", opt=CREATE)
async def configure_page(request: Request, model_id: FromPath[int], customer: FromQuery[str] = "",
                         configuration: FromQuery[str] = "") -> Template:
    model, version = await _published(model_id)
    values = defaults(version["definition"])
    quantity: Any = 1
    name = ""
    saved = None
    if _int(configuration) is not None:
        saved = await configurations.get(  # type: ignore[arg-type]
            _int(configuration), where=_visible(request, configurations.CREATE))
        if saved is None or saved["model"] != model_id:
            raise NotFoundException("not found")
        values, quantity, name = saved["choices"], saved["quantity"], saved["name"]
        customer = customer or str(saved["customer"] or "")
    context = await page_context(request.app.state.rapport, version, values, quantity)
    return Template("configurator/configure.html", context={
        **context, "model": model, "customer": await visible_customer(request, _int(customer)),
        "name": name,
        "assess_url": f"/configurator/models/{model_id}/assess",
        "save_url": "/configurator/configurations", "portal": False})


@post("/configurator/models/{model_id:int}/assess", opt=CREATE, include_in_schema=False)
async def assess_fragment(request: Request, model_id: FromPath[int]) -> Template:
    """The live part of the form after a change: options, explanations, price."""
    form = await request.form()
    model, version = await _published(model_id)
    return await live(request, model, version, form, portal=False,
                      assess_url=f"/configurator/models/{model_id}/assess")


async def live(request: Request, model: dict[str, Any], version: dict[str, Any], form: Any, *,
               portal: bool, assess_url: str) -> Template:
    if _int(form.get("version")) not in (None, version["id"]):
        # The page was opened on an older version: answer for the version it names.
        older = await models.get_version(_int(form.get("version")))  # type: ignore[arg-type]
        if older is not None and older["model"] == model["id"]:
            version = older
    values = values_from_form(version["definition"], form)
    if form.get("apply"):
        values = apply_suggestion(version["definition"], values, str(form.get("apply")))
    step = _int(form.get("step")) or 0
    if form.get("go") == "next":
        step += 1
    elif form.get("go") == "back":
        step -= 1
    context = await page_context(request.app.state.rapport, version, values,
                                 form.get("quantity"), step=step)
    return Template("configurator/_live.html", context={
        **context, "model": model, "portal": portal, "assess_url": assess_url})


@post("/configurator/configurations", opt=CREATE, status_code=303)
async def save_configuration(request: Request) -> Response:
    form = await request.form()
    actor = current_actor(request)
    model_id = _int(form.get("model"))
    model, version = await _published(model_id or 0)
    values = values_from_form(version["definition"], form)
    customer_id = _int(form.get("customer"))
    if customer_id is not None and await visible_customer(request, customer_id) is None:
        raise NotFoundException("not found")
    existing = _int(form.get("configuration"))
    if existing is not None and await configurations.get(
            existing, where=_visible(request, configurations.CREATE)) is None:
        raise NotFoundException("not found")
    try:
        row = await configurations.save(request.app.state.rapport, actor, {
            "model": model_id, "version": form.get("version"), "values": values,
            "quantity": form.get("quantity"), "name": form.get("name"),
            "total": form.get("total")}, customer_id=customer_id, ip=client_ip(request),
            configuration_id=existing)
    except ConfigurationError as exc:
        context = await page_context(request.app.state.rapport, version, values,
                                     form.get("quantity"), errors={exc.field: exc.message})
        return Template("configurator/configure.html", context={
            **context, "model": model, "customer": await visible_customer(request, customer_id),
            "name": form.get("name") or "", "save_error": exc.message,
            "assess_url": f"/configurator/models/{model['id']}/assess",
            "save_url": "/configurator/configurations", "portal": False}, status_code=400)
    return Redirect(f"/configurator/configurations/{row['id']}", status_code=303)


async def summary_context(rapport: Any, row: dict[str, Any]) -> dict[str, Any]:
    version = await models.get_version(row["version"])
    definition = version["definition"] if version else {}
    price = configure.price(definition, row["choices"], Decimal(str(row["quantity"])))
    try:
        price = await configurations.priced(rapport, definition, row["choices"],
                                            Decimal(str(row["quantity"])), row["currency"])
    except ConfigurationError:
        pass
    return {"row": row, "version": version, "definition": definition,
            "described": configurations.described(definition, row["choices"]),
            "bom": configure.bill_of_materials(definition, row["choices"]), "price": price}


@get("/configurator/configurations/{configuration_id:int}", opt=VIEW)
async def configuration_page(request: Request, configuration_id: FromPath[int],
                             print_view: FromQuery[str] = "") -> Template:
    row = await configurations.get(configuration_id, where=_visible(request))
    if row is None:
        raise NotFoundException("not found")
    context = await summary_context(request.app.state.rapport, row)
    return Template("configurator/summary.html", context={
        **context, "portal": False, "base": "/configurator", "print_view": print_view == "1",
        "sales": sales_enabled(request) and current_actor(request).can("sales.quote.create"),
        "others": [r for r in await configurations.list_for(customer_id=row["customer"],
                                                            limit=20, where=_visible(request))
                   if r["id"] != row["id"]] if row["customer"] else []})


@get("/configurator/compare", opt=VIEW)
async def compare_page(request: Request) -> Template:
    wanted = [_int(x) for x in request.query_params.getall("ids", [])][:3]
    rows = [await configurations.get(i, where=_visible(request)) for i in wanted
            if i is not None]
    rows = [r for r in rows if r is not None]
    error = None
    table = None
    try:
        table = await configurations.comparison(rows)
    except ConfigurationError as exc:
        error = exc.message
    return Template("configurator/compare.html", context={
        "table": table, "error": error, "portal": False, "base": "/configurator"})


ROUTES = [home, configure_page, assess_fragment, save_configuration, configuration_page,
          compare_page]
