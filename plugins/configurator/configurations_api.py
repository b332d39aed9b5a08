"""The configurator's REST API under ``/api/v1/configurator/``: published products, the live
answer after a choice (remaining options, explanations, price: the same engine as the pages),
and saved configurations. Bad input answers ``application/problem+json`` naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Response

from core.api_schemas import accepts
from core.audit import client_ip
from core.permissions import current_actor
from core.problems import problem
from plugins.configurator import api_bodies as bodies
from plugins.configurator import configurations, configure, models
from plugins.configurator.configurations_web import visible_customer
from plugins.configurator.configure import ConfigurationError

VIEW = {"permission": "configurator.configuration.view"}
CREATE = {"permission": "configurator.configuration.create"}



def _invalid(request: Request, exc: ConfigurationError) -> Response:
    return problem(422, "Invalid configuration", f"{exc.field}: {exc.message}", field=exc.field)


def _missing(request: Request, exc: Exception) -> Response:
    return problem(404, "Not found", "No such product or configuration")


API: dict[str, Any] = {"exception_handlers": {ConfigurationError: _invalid,
                                              NotFoundException: _missing},
                       "tags": ["configurator"]}


def _money(value: Decimal) -> str:
    return str(value)


def _configuration(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "code": row["code"], "model": row["model"],
            "version": row["version"], "version_number": row["version_number"],
            "customer": row["customer"], "values": row["choices"],
            "quantity": str(row["quantity"]), "currency": row["currency"],
            "unit_price": str(row["unit_price"]), "total": str(row["total"]),
            "created_via": row["created_via"], "created_at": row["created_at"].isoformat()}


@get("/api/v1/configurator/models", opt=VIEW, **API)
async def api_models(request: Request) -> dict[str, Any]:
    out = []
    for row in await models.list_models(published_only=True):
        version = await models.current_version(row["id"])
        out.append({**{k: row[k] for k in ("id", "code", "name", "description")},
                    "version": version["id"] if version else None,
                    "version_number": version["number"] if version else None,
                    "definition": version["definition"] if version else None})
    return {"items": out}


@accepts(bodies.ASSESSMENT)
@post("/api/v1/configurator/models/{model_id:int}/assess", opt=CREATE, status_code=200, **API)
async def api_assess(request: Request, model_id: FromPath[int],
                     data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """After a choice: each attribute's possible options, each impossible one with the rules
    and choices to blame and a change that helps; a conflict; the live price."""
    version = await models.current_version(model_id)
    if version is None:
        raise NotFoundException("not found")
    if data.get("version") not in (None, version["id"]):
        wanted = configurations._int(data["version"])
        older = await models.get_version(wanted) if wanted is not None else None
        if older is None or older["model"] != model_id:
            raise ConfigurationError("version", "no such version of this product")
        version = older
    values = configure.clean_values(version["definition"], data.get("values") or {})
    quantity = configurations.quantity_of(data.get("quantity"))
    answer = configure.assess(models.engine_of(version), values)
    price = await configurations.priced(request.app.state.rapport, version["definition"],
                                        values, quantity, data.get("currency"))

    def why(explanation: configure.Explanation | None) -> dict[str, Any] | None:
        if explanation is None:
            return None
        return {"text": explanation.words(), "rules": explanation.rule_ids,
                "choices": [code for code, _ in explanation.choices],
                "change": [{"attribute": a, "value": v if not isinstance(v, Decimal) else str(v),
                            "text": w} for a, v, w in explanation.suggestion]}

    return {
        "version": version["id"], "values": values,
        "attributes": {code: {"shown": s.shown,
                              "options": [{"code": o.code if not isinstance(o.code, Decimal)
                                           else str(o.code), "possible": o.possible,
                                           "chosen": o.chosen, "why": why(o.explanation)}
                                          for o in s.options],
                              "allowed": [str(v) for v in s.allowed_numbers]}
                       for code, s in answer.attributes.items()},
        "conflict": why(answer.conflict), "missing": answer.missing,
        "price": {"currency": price.currency, "unit_price": _money(price.unit_price),
                  "discount_percent": str(price.discount_percent), "total": _money(price.net)},
    }


@accepts(bodies.CONFIGURATION)
@post("/api/v1/configurator/configurations", opt=CREATE, **API)
async def api_save(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    customer_id = data.get("customer")
    if customer_id is not None:
        if not isinstance(customer_id, int) or await visible_customer(request,
                                                                      customer_id) is None:
            raise ConfigurationError("customer", "no such customer")
    row = await configurations.save(request.app.state.rapport, current_actor(request), data,
                                    customer_id=customer_id, ip=client_ip(request))
    saved = await configurations.get(row["id"])
    return Response(_configuration(saved), status_code=201,  # type: ignore[arg-type]
                    headers={"Location": f"/api/v1/configurator/configurations/{row['id']}"})


@get("/api/v1/configurator/configurations/{configuration_id:int}", opt=VIEW, **API)
async def api_configuration(request: Request, configuration_id: FromPath[int]
                            ) -> dict[str, Any]:
    row = await configurations.get(configuration_id, where=configurations.visible_to(
        request.app.state.rapport, current_actor(request)))
    if row is None:
        raise NotFoundException("not found")
    version = await models.get_version(row["version"])
    return {**_configuration(row), "bill_of_materials": [
        {**b, "quantity": str(b["quantity"])} for b in
        configure.bill_of_materials(version["definition"] if version else {}, row["choices"])]}


@get("/api/v1/configurator/configurations", opt=VIEW, **API)
async def api_configurations(request: Request, customer: FromQuery[int | None] = None,
                             after: FromQuery[int | None] = None,
                             limit: FromQuery[int] = 50) -> dict[str, Any]:
    rows = await configurations.list_for(customer_id=customer, after=after,
                                         limit=max(1, min(limit, 200)),
                                         where=configurations.visible_to(
                                             request.app.state.rapport, current_actor(request)))
    return {"items": [_configuration(r) for r in rows],
            "next_after": rows[-1]["id"] if rows and len(rows) == limit else None}


ROUTES = [api_models, api_assess, api_save, api_configuration, api_configurations]
