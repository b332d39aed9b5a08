"""Saved configurations: choices checked against their model version on the server whatever
the browser sent, priced (from the sales plugin's price book when it runs), with a bill of
materials and a code; per customer; compared side by side. No HTTP here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core import records
from core.permissions import Actor, row_filter
from plugins.configurator import configure, models
from plugins.configurator.configure import ConfigurationError
from plugins.configurator.tables import Configuration, ProductModel

VIEW = "configurator.configuration.view"
CREATE = "configurator.configuration.create"

MAX_QUANTITY = Decimal(100000)
COMPARE_MAX = 3


def sales_api(rapport: Any) -> Any | None:
    """The sales plugin's read API through its hook (None when sales is not enabled)."""
    caller = getattr(rapport.hook, "sales_read_api", None) if rapport is not None else None
    if caller is None:
        return None
    try:
        return caller(rapport=rapport)
    except Exception:  # noqa: BLE001 - a hook without implementation or spec
        return None


def quantity_of(raw: Any) -> Decimal:
    try:
        quantity = Decimal(str(raw if raw not in (None, "") else 1).strip())
    except (InvalidOperation, ValueError):
        raise ConfigurationError("quantity", "is not a number") from None
    if not quantity.is_finite() or quantity <= 0 or quantity > MAX_QUANTITY:
        raise ConfigurationError("quantity", f"must be from 1 to {MAX_QUANTITY:,}")
    if quantity != quantity.to_integral():
        raise ConfigurationError("quantity", "must be a whole number")
    return quantity


async def catalogue_prices(rapport: Any, definition: Mapping[str, Any], values: Mapping[str, Any],
                           currency: str | None, price_book_id: int | None = None
                           ) -> dict[str, Decimal] | None:
    """SKU -> unit price from sales' price book in ``currency`` for the parts of this
    configuration that the catalogue prices; None without sales."""
    api = sales_api(rapport)
    if api is None:
        return None
    skus = [sku for _, sku, _, _ in configure.selected_parts(definition, values) if sku]
    if not skus:
        return {}
    products = await api.products(skus=skus, active_only=True, limit=len(skus))
    ids = {p["id"]: p["sku"] for p in products}
    prices = await api.prices(list(ids), currency or definition.get("currency"), price_book_id)
    return {ids[pid]: value for pid, value in prices.items()}


async def priced(rapport: Any, definition: Mapping[str, Any], values: Mapping[str, Any],
                 quantity: Decimal, currency: str | None = None,
                 price_book_id: int | None = None) -> configure.Price:
    """The price in ``currency``: the model's own prices in its currency, with the sales
    price book's price for every part the catalogue prices in the asked currency. A
    currency other than the model's needs every part priced by the catalogue."""
    currency = (currency or definition.get("currency") or "EUR").upper()
    catalogue = await catalogue_prices(rapport, definition, values, currency, price_book_id)
    result = configure.price(definition, values, quantity, catalogue)
    if currency != definition.get("currency"):
        missing = [line.label for line in result.lines
                   if not (catalogue and line.sku and line.sku in catalogue)]
        if missing:
            raise ConfigurationError("currency", f"no {currency} price for {missing[0]}")
        result.currency = currency
    return result


@dataclass
class Checked:
    version: dict[str, Any]
    values: dict[str, Any]
    quantity: Decimal
    price: configure.Price
    code: str
    bom: list[dict[str, Any]]


async def check(rapport: Any, version_id: Any, raw_values: Any, raw_quantity: Any = 1, *,
                model_id: int | None = None, claimed_total: Any = None,
                currency: str | None = None) -> Checked:
    """Everything a save needs, or ConfigurationError naming what is wrong: the version
    (unknown, of another model, retired), each value (an option of another model, outside
    its range), the rules, the quantity and a total the browser claims (a tampered price)."""
    try:
        version = await models.get_version(int(version_id))
    except (TypeError, ValueError):
        version = None
    if version is None or (model_id is not None and version["model"] != model_id):
        raise ConfigurationError("version", "no such version of this product")
    if version["retired"]:
        raise ConfigurationError("version", f"version {version['number']} is retired: "
                                 "configure the current version again")
    if not isinstance(raw_values, Mapping):
        raise ConfigurationError("values", "must be an object of attribute codes and values")
    definition = version["definition"]
    values = configure.clean_values(definition, raw_values)
    quantity = quantity_of(raw_quantity)
    engine = models.engine_of(version)
    result = configure.validate(engine, values, quantity)
    if not result.ok:
        raise ConfigurationError(*result.errors[0])
    price = await priced(rapport, definition, values, quantity, currency)
    if claimed_total not in (None, ""):
        try:
            claimed = Decimal(str(claimed_total))
        except (InvalidOperation, ValueError):
            claimed = None
        if claimed != price.net:
            raise ConfigurationError("total", f"the price has changed: it is "
                                     f"{price.net} {price.currency}, not {claimed_total}")
    return Checked(version, values, quantity, price,
                   configure.configuration_code(definition, version["number"], values),
                   configure.bill_of_materials(definition, values))


async def save(rapport: Any, actor: Actor | None, data: Mapping[str, Any], *,
               customer_id: int | None, via: str = "staff", ip: str = "",
               configuration_id: int | None = None) -> dict[str, Any]:
    """Save (or overwrite) a configuration after checking it whole; one transaction."""
    checked = await check(rapport, data.get("version"), data.get("values") or {},
                          data.get("quantity"), model_id=_int(data.get("model")),
                          claimed_total=data.get("total"), currency=data.get("currency"))
    name = " ".join(str(data.get("name") or "").split())[:200] or \
        f"{checked.version['definition'].get('name', '')} {checked.code}".strip()
    values = {
        "model": checked.version["model"], "version": checked.version["id"],
        "customer": customer_id, "name": name, "code": checked.code,
        "choices": json.dumps(checked.values, sort_keys=True),
        "quantity": checked.quantity, "currency": checked.price.currency,
        "unit_price": checked.price.unit_price, "total": checked.price.net,
        "updated_at": datetime.now(UTC)}
    async with Configuration._meta.db.transaction():
        if configuration_id is None:
            staff_id = actor.id if actor and actor.kind == "staff" else None
            owner, team = await _customer_scope(customer_id)
            values.update(created_via=via, created_by=staff_id, owner=staff_id or owner,
                          team=team)
            return await records.create(actor, Configuration, values, ip=ip,
                                        summary=f"configuration {checked.code} saved")
        return await records.update(actor, Configuration, configuration_id, values, ip=ip,
                                    summary=f"configuration {checked.code} changed")


async def _customer_scope(customer_id: int | None) -> tuple[int | None, int | None]:
    """The customer's owner and team (a configuration is scoped like its customer's
    records: the team sees it, and a portal save belongs to the customer's owner)."""
    if customer_id is None:
        return None, None
    from core.customers.tables import Customer

    row = await Customer.select(Customer.owner, Customer.team).where(
        Customer.id == customer_id).first().run()
    return (row["owner"], row["team"]) if row else (None, None)


def visible_to(rapport: Any, actor: Actor | None, permission: str = VIEW) -> Any | None:
    """The where-clause limiting configurations to what a staff ``actor`` may reach with
    ``permission`` (own, team or all, by the owner and team columns); None: no limit.
    Raises PermissionDeniedException when the permission is not granted."""
    if actor is None or actor.kind != "staff":
        return None
    return row_filter(rapport, actor, permission, Configuration)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


COLUMNS = (Configuration.id, Configuration.model, Configuration.version, Configuration.customer,
           Configuration.name, Configuration.code, Configuration.choices, Configuration.quantity,
           Configuration.currency, Configuration.unit_price, Configuration.total,
           Configuration.created_via, Configuration.created_at, Configuration.updated_at,
           Configuration.model.name.as_alias("model_name"),
           Configuration.version.number.as_alias("version_number"),
           Configuration.version.retired.as_alias("version_retired"),
           Configuration.customer.name.as_alias("customer_name"))


async def get(configuration_id: int, *, customer_id: int | None = None,
              where: Any = None) -> dict[str, Any] | None:
    """One configuration; with ``customer_id`` only that customer's (portal isolation), with
    ``where`` only one the user may reach (:func:`visible_to`)."""
    query = Configuration.select(*COLUMNS).where(Configuration.id == configuration_id)
    if customer_id is not None:
        query = query.where(Configuration.customer == customer_id)
    if where is not None:
        query = query.where(where)
    row = await query.first().run()
    if row is not None:
        row["choices"] = models.loads(row["choices"])
    return row


async def list_for(*, customer_id: int | None = None, model_id: int | None = None,
                   after: int | None = None, limit: int = 50, where: Any = None
                   ) -> list[dict[str, Any]]:
    """Newest first, keyset by id (``after`` = the last id shown); ``where`` as for get."""
    query = Configuration.select(*COLUMNS)
    if where is not None:
        query = query.where(where)
    if customer_id is not None:
        query = query.where(Configuration.customer == customer_id)
    if model_id is not None:
        query = query.where(Configuration.model == model_id)
    if after is not None:
        query = query.where(Configuration.id < after)
    rows = await query.order_by(Configuration.id, ascending=False).limit(
        max(1, min(limit, 200))).run()
    for row in rows:
        row["choices"] = models.loads(row["choices"])
    return rows


async def erase(customer_id: int) -> int:
    """Privacy erasure: the customer's configurations keep their choices of options,
    quantities, prices, codes and dates (a quote or order may name them) but lose what the
    customer typed: the name they gave and every free-text answer. Returns how many."""
    count = 0
    after = None
    while True:
        query = Configuration.select(Configuration.id, Configuration.version,
                                     Configuration.choices, Configuration.code,
                                     Configuration.model.name.as_alias("model_name")).where(
            Configuration.customer == customer_id)
        if after is not None:
            query = query.where(Configuration.id > after)
        rows = await query.order_by(Configuration.id).limit(200).run()
        if not rows:
            return count
        versions: dict[int, dict[str, Any] | None] = {}
        for row in rows:
            if row["version"] not in versions:
                versions[row["version"]] = await models.get_version(row["version"])
            version = versions[row["version"]]
            texts = {a["code"] for a in (version or {}).get("definition", {}).get(
                "attributes", []) if a.get("kind") == "text"}
            choices = models.loads(row["choices"])
            choices = {k: ("" if k in texts else v) for k, v in choices.items()}
            await Configuration.update({
                Configuration.name: f"{row['model_name']} {row['code']}".strip()[:200],
                Configuration.choices: json.dumps(choices, sort_keys=True),
                Configuration.updated_at: datetime.now(UTC)}).where(
                Configuration.id == row["id"]).run()
            count += 1
        after = rows[-1]["id"]


async def delete(actor: Actor | None, configuration_id: int, *, ip: str = "") -> None:
    await records.delete(actor, Configuration, configuration_id, ip=ip,
                         summary="configuration deleted")


def described(definition: Mapping[str, Any], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(attribute label, chosen value in words) for a summary, in the model's order."""
    out = []
    for attr in definition.get("attributes", []):
        value = values.get(attr["code"])
        if value in (None, "", []):
            continue
        if attr["kind"] in ("single", "multiple"):
            chosen = value if isinstance(value, list) else [value]
            words = ", ".join(o["label"] for o in attr["options"] if o["code"] in chosen)
        elif attr["kind"] == "yesno":
            words = "Yes" if value else "No"
        elif attr["kind"] == "number":
            words = f"{value} {attr.get('unit') or ''}".strip()
        else:
            words = str(value)
        out.append((attr["label"], words))
    return out


async def comparison(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Two or three configurations side by side: every attribute any of them has, the value
    in each, and whether they differ."""
    if not 2 <= len(rows) <= COMPARE_MAX:
        raise ConfigurationError("ids", "choose two or three configurations to compare")
    labels: list[str] = []
    table: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        version = await models.get_version(row["version"])
        for label, words in described(version["definition"] if version else {}, row["choices"]):
            if label not in table:
                labels.append(label)
                table[label] = [""] * len(rows)
            table[label][i] = words
    return {"rows": rows, "lines": [(label, table[label], len(set(table[label])) > 1)
                                    for label in labels]}


async def model_is_published(model_id: int) -> bool:
    return await ProductModel.exists().where((ProductModel.id == model_id) &
                                             (ProductModel.status == "published"))
