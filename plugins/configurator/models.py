"""Configurable product models: checking a definition (every mistake named by its field),
saving drafts, publishing immutable versions and retiring them. No HTTP here.

A definition is one JSON object (see docs/plugins/configurator.md)::

    {"currency": "EUR", "base_price": "399.00", "sku": "PC",
     "steps": ["Core", "Storage"],
     "attributes": [{"code": "cpu", "label": "Processor", "kind": "single", "step": "Core",
                     "required": true, "default": "i5",
                     "options": [{"code": "i5", "label": "Core i5", "sku": "CPU-I5",
                                  "price": "180.00", "value": 6,
                                  "properties": {"watts": 65}}]}],
     "computed": [{"code": "load", "label": "Power draw", "formula": "total(watts) + 40"}],
     "rules": [{"id": "R1", "kind": "requires", "when": ["cpu=i9"], "then": ["psu=w850"]}],
     "volume_breaks": [{"min_quantity": 10, "discount_percent": "5"}]}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core import records
from core.permissions import Actor
from plugins.configurator import configure, formulas
from plugins.configurator.tables import Configuration, ModelVersion, ProductModel

KINDS = {"single": "Single choice", "multiple": "Multiple choice", "number": "Number",
         "yesno": "Yes / no", "text": "Free text"}
RULE_KINDS = {"requires": "Requires", "excludes": "Excludes", "table": "Allowed combinations",
              "visible": "Shown only when", "formula": "Numeric rule", "quantity": "Quantity rule"}
CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
OPTION_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MODEL_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")
MAX_ATTRIBUTES, MAX_OPTIONS, MAX_RULES, MAX_ROWS = 200, 2000, 1000, 20000


class ModelError(ValueError):
    """A definition that cannot be used, naming the field (``attributes[2].options[1].price``)
    and what is wrong; ``label`` says where in words ("Processor › Core i9 › price")."""

    def __init__(self, field: str, message: str, label: str = "") -> None:
        super().__init__(f"{label or field}: {message}")
        self.field = field
        self.message = message
        self.label = label or field


def _amount(value: Any, field: str, label: str, *, allow_negative: bool = True) -> str:
    if value in (None, ""):
        return "0"
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ModelError(field, "is not an amount (write 12.50)", label) from None
    if not number.is_finite() or abs(number) >= Decimal("1e10"):
        raise ModelError(field, "is not an amount (write 12.50)", label)
    if number < 0 and not allow_negative:
        raise ModelError(field, "must not be negative", label)
    if number != number.quantize(Decimal("0.01")):
        raise ModelError(field, "has more than two decimals", label)
    return str(number.quantize(Decimal("0.01")))


def _number(value: Any, field: str, label: str, *, default: Any = None) -> Decimal | None:
    if value in (None, ""):
        return default
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ModelError(field, "is not a number", label) from None
    if not number.is_finite() or abs(number) >= Decimal("1e9"):
        raise ModelError(field, "is not a number", label)
    if number != number.quantize(Decimal("0.001")):
        raise ModelError(field, "has more than three decimals", label)
    return number


def _text(value: Any, limit: int) -> str:
    return " ".join(str(value or "").split())[:limit]


def _image(value: Any, field: str, where: str) -> str:
    """An option's picture: an address on this server (the pages' content security policy
    shows images from this server only), e.g. /static/... or a file's own address."""
    text = _text(value, 300)
    if text and (not text.startswith("/") or text.startswith("//") or "\\" in text
                 or any(c in text for c in "\"'<> ")):
        raise ModelError(field, "must be an address on this server starting with / (such as "
                         "/static/plugins/configurator/options/case-tower.svg): the pages "
                         "show no images from other sites", where)
    return text


def _plain(number: Decimal | None) -> str | None:
    return None if number is None else f"{number.normalize():f}"


def check_definition(raw: Mapping[str, Any], *, name: str = "", code: str = "") -> dict[str, Any]:
    """The definition cleaned, or ModelError naming the first field that is wrong."""
    if not isinstance(raw, Mapping):
        raise ModelError("definition", "must be an object")
    out: dict[str, Any] = {"name": name or _text(raw.get("name"), 200),
                           "sku": _text(raw.get("sku") or code, 40)}
    currency = str(raw.get("currency") or "EUR").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ModelError("currency", "write a three-letter currency code such as EUR",
                         "Currency")
    out["currency"] = currency
    out["base_price"] = _amount(raw.get("base_price"), "base_price", "Base price",
                                allow_negative=False)
    out["tax_percent"] = _plain(_number(raw.get("tax_percent"), "tax_percent", "Tax",
                                        default=Decimal(0)))
    steps = [_text(s, 60) for s in raw.get("steps") or [] if _text(s, 60)]
    out["steps"] = list(dict.fromkeys(steps))
    attributes = raw.get("attributes") or []
    if not isinstance(attributes, list) or len(attributes) > MAX_ATTRIBUTES:
        raise ModelError("attributes", f"at most {MAX_ATTRIBUTES} attributes", "Attributes")
    out["attributes"] = []
    seen: dict[str, dict[str, Any]] = {}
    total_options = 0
    for i, attr in enumerate(attributes):
        clean = _check_attribute(attr, f"attributes[{i}]", out["steps"])
        if clean["code"] in seen:
            raise ModelError(f"attributes[{i}].code", f"{clean['code']!r} is used twice",
                             clean["label"])
        seen[clean["code"]] = clean
        total_options += len(clean.get("options", []))
        out["attributes"].append(clean)
    if total_options > MAX_OPTIONS:
        raise ModelError("attributes", f"at most {MAX_OPTIONS} options in all", "Attributes")
    out["computed"] = []
    computed: dict[str, formulas.Linear] = {}
    for i, item in enumerate(raw.get("computed") or []):
        where = f"computed[{i}]"
        code_ = str(item.get("code") or "").strip()
        label = _text(item.get("label"), 120) or code_
        if not CODE.match(code_):
            raise ModelError(f"{where}.code", "use lower-case letters, digits and _", label)
        if code_ in seen or code_ in computed:
            raise ModelError(f"{where}.code", f"{code_!r} is already a name in this model",
                             label)
        try:
            computed[code_] = formulas.parse_sum(item.get("formula"))
        except formulas.FormulaError as exc:
            raise ModelError(f"{where}.formula", str(exc), f"{label} › formula") from None
        out["computed"].append({"code": code_, "label": label,
                                "formula": str(item.get("formula")).strip(),
                                "unit": _text(item.get("unit"), 20)})
    properties = {p for a in out["attributes"] for o in a.get("options", [])
                  for p in (o.get("properties") or {})} | \
        {p for a in out["attributes"] for p in (a.get("properties") or {})}
    for i, item in enumerate(out["computed"]):
        _check_names(computed[item["code"]], seen, computed, properties,
                     f"computed[{i}].formula", f"{item['label']} › formula")
    try:
        formulas.expand_computed(computed)
    except formulas.FormulaError as exc:
        raise ModelError("computed", str(exc), "Computed values") from None
    rules = raw.get("rules") or []
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise ModelError("rules", f"at most {MAX_RULES} rules", "Rules")
    out["rules"] = []
    ids: set[str] = set()
    for i, rule in enumerate(rules):
        clean = _check_rule(rule, f"rules[{i}]", seen, computed, properties, i)
        if clean["id"] in ids:
            raise ModelError(f"rules[{i}].id", f"{clean['id']!r} is used twice",
                             f"Rule {clean['id']}")
        ids.add(clean["id"])
        out["rules"].append(clean)
    out["volume_breaks"] = []
    for i, brk in enumerate(raw.get("volume_breaks") or []):
        where = f"volume_breaks[{i}]"
        low = _number(brk.get("min_quantity"), f"{where}.min_quantity", "Volume break › from")
        pct = _number(brk.get("discount_percent"), f"{where}.discount_percent",
                      "Volume break › discount")
        if low is None or low <= 0 or pct is None or not (0 <= pct <= 100):
            raise ModelError(where, "give a quantity above 0 and a discount from 0 to 100 %",
                             "Volume break")
        out["volume_breaks"].append({"min_quantity": _plain(low), "discount_percent": _plain(pct)})
    return out


def _check_attribute(attr: Any, where: str, steps: list[str]) -> dict[str, Any]:
    if not isinstance(attr, Mapping):
        raise ModelError(where, "must be an object", where)
    code = str(attr.get("code") or "").strip()
    label = _text(attr.get("label"), 120)
    if not label:
        raise ModelError(f"{where}.label", "give the attribute a name", code or where)
    if not CODE.match(code):
        raise ModelError(f"{where}.code", "use lower-case letters, digits and _ (e.g. cpu)",
                         label)
    kind = attr.get("kind")
    if kind not in KINDS:
        raise ModelError(f"{where}.kind", "choose single choice, multiple choice, number, "
                         "yes / no or free text", label)
    step = _text(attr.get("step"), 60)
    if step and step not in steps:
        steps.append(step)
    clean: dict[str, Any] = {"code": code, "label": label, "kind": kind, "step": step,
                             "required": bool(attr.get("required")),
                             "help": _text(attr.get("help"), 300)}
    if kind in ("single", "multiple"):
        options = attr.get("options") or []
        if not options:
            raise ModelError(f"{where}.options", "add at least one option", label)
        clean["options"] = []
        codes: set[str] = set()
        for j, option in enumerate(options):
            ow = f"{where}.options[{j}]"
            o_code = str(option.get("code") or "").strip()
            o_label = _text(option.get("label"), 120)
            here = f"{label} › {o_label or o_code or j + 1}"
            if not o_label:
                raise ModelError(f"{ow}.label", "give the option a name", here)
            if not OPTION_CODE.match(o_code):
                raise ModelError(f"{ow}.code", "use letters, digits, - and _ (e.g. i9)", here)
            if o_code in codes:
                raise ModelError(f"{ow}.code", f"{o_code!r} is used twice", here)
            codes.add(o_code)
            props = {}
            for key, value in (option.get("properties") or {}).items():
                if not CODE.match(str(key)):
                    raise ModelError(f"{ow}.properties", f"{key!r} is not a property name "
                                     "(lower-case letters, digits and _)", here)
                props[str(key)] = _plain(_number(value, f"{ow}.properties.{key}",
                                                 f"{here} › {key}", default=Decimal(0)))
            quantity = _number(option.get("quantity"), f"{ow}.quantity", f"{here} › quantity",
                               default=Decimal(1))
            if quantity is None or quantity <= 0:
                raise ModelError(f"{ow}.quantity", "must be more than 0", here)
            clean["options"].append({
                "code": o_code, "label": o_label, "sku": _text(option.get("sku"), 64),
                "description": _text(option.get("description"), 500),
                "price": _amount(option.get("price"), f"{ow}.price", f"{here} › price"),
                "value": _plain(_number(option.get("value"), f"{ow}.value",
                                        f"{here} › value")),
                "quantity": _plain(quantity), "properties": props,
                "image": _image(option.get("image"), f"{ow}.image", here)})
        default = attr.get("default")
        if kind == "single" and default not in (None, "") and default not in codes:
            raise ModelError(f"{where}.default", f"{default!r} is not one of its options", label)
        if kind == "multiple":
            default = [d for d in (default or []) if d]
            bad = [d for d in default if d not in codes]
            if bad:
                raise ModelError(f"{where}.default", f"{bad[0]!r} is not one of its options",
                                 label)
        clean["default"] = default or ([] if kind == "multiple" else None)
    elif kind == "number":
        low = _number(attr.get("min"), f"{where}.min", f"{label} › from")
        high = _number(attr.get("max"), f"{where}.max", f"{label} › to")
        inc = _number(attr.get("increment"), f"{where}.increment", f"{label} › step",
                      default=Decimal(1))
        if low is None or high is None:
            raise ModelError(f"{where}.min", "give the lowest and highest value", label)
        if high < low:
            raise ModelError(f"{where}.max", "must not be below the lowest value", label)
        if inc is None or inc <= 0:
            raise ModelError(f"{where}.increment", "must be more than 0", label)
        if (high - low) / inc >= configure.MAX_NUMBER_VALUES:
            raise ModelError(f"{where}.increment", f"gives more than "
                             f"{configure.MAX_NUMBER_VALUES} values: use a larger step", label)
        default = _number(attr.get("default"), f"{where}.default", f"{label} › default")
        if default is not None and (default < low or default > high or
                                    (default - low) % inc != 0):
            raise ModelError(f"{where}.default", "must be one of the allowed values", label)
        clean.update(min=_plain(low), max=_plain(high), increment=_plain(inc),
                     default=_plain(default), unit=_text(attr.get("unit"), 20),
                     sku=_text(attr.get("sku"), 64),
                     price_per_unit=_amount(attr.get("price_per_unit"),
                                            f"{where}.price_per_unit", f"{label} › price per unit"))
        clean["required"] = True
    elif kind == "yesno":
        clean.update(sku=_text(attr.get("sku"), 64),
                     price=_amount(attr.get("price"), f"{where}.price", f"{label} › price"),
                     default=bool(attr.get("default")),
                     properties={str(k): _plain(_number(v, f"{where}.properties.{k}", label,
                                                        default=Decimal(0)))
                                 for k, v in (attr.get("properties") or {}).items()})
    elif kind == "text":
        limit = _number(attr.get("max_length"), f"{where}.max_length", label,
                        default=Decimal(200))
        if limit is None or not (1 <= limit <= 2000):
            raise ModelError(f"{where}.max_length", "must be from 1 to 2000", label)
        clean["max_length"] = int(limit)
    return clean


def _condition(text: Any, where: str, label: str, attributes: Mapping[str, Mapping[str, Any]]
               ) -> str:
    raw = str(text or "").strip()
    body = raw[1:] if raw.startswith("!") else raw
    if "=" in body:
        attr, option = (p.strip() for p in body.split("=", 1))
        found = attributes.get(attr)
        if found is None or found["kind"] not in ("single", "multiple"):
            raise ModelError(where, f"{attr!r} is not a choice attribute of this model", label)
        if option not in {o["code"] for o in found["options"]}:
            raise ModelError(where, f"{option!r} is not an option of {found['label']}", label)
        return ("!" if raw.startswith("!") else "") + f"{attr}={option}"
    found = attributes.get(body)
    if found is None or found["kind"] != "yesno":
        raise ModelError(where, f"{raw!r} names no option (write attribute=option, or a "
                         "yes / no attribute)", label)
    return raw


def _check_names(linear: formulas.Linear, attributes: Mapping[str, Mapping[str, Any]],
                 computed: Mapping[str, Any], properties: set[str], where: str,
                 label: str) -> None:
    for name in formulas.names(linear):
        attr = attributes.get(name)
        if name not in computed and (attr is None or attr["kind"] == "text"):
            raise ModelError(where, f"{name!r} is not a number, choice or computed value of "
                             "this model", label)
    for prop in formulas.properties(linear):
        if prop not in properties:
            raise ModelError(where, f"no option has the property {prop!r}", label)


def _check_rule(rule: Any, where: str, attributes: Mapping[str, Mapping[str, Any]],
                computed: Mapping[str, Any], properties: set[str], index: int) -> dict[str, Any]:
    if not isinstance(rule, Mapping):
        raise ModelError(where, "must be an object", where)
    rid = str(rule.get("id") or f"R{index + 1}").strip()[:20]
    label = f"Rule {rid}"
    kind = rule.get("kind")
    if kind not in RULE_KINDS:
        raise ModelError(f"{where}.kind", "choose requires, excludes, allowed combinations, "
                         "shown only when, numeric rule or quantity rule", label)
    clean: dict[str, Any] = {"id": rid, "kind": kind, "message": _text(rule.get("message"), 300)}
    clean["when"] = [_condition(c, f"{where}.when[{k}]", label, attributes)
                     for k, c in enumerate(rule.get("when") or []) if str(c).strip()]
    if kind in ("requires", "excludes"):
        clean["then"] = [_condition(c, f"{where}.then[{k}]", label, attributes)
                         for k, c in enumerate(rule.get("then") or []) if str(c).strip()]
        if not clean["when"]:
            raise ModelError(f"{where}.when", "say which choice the rule starts from", label)
        if not clean["then"]:
            raise ModelError(f"{where}.then", "say what it requires or excludes", label)
    elif kind == "visible":
        attr = str(rule.get("attribute") or "")
        if attr not in attributes:
            raise ModelError(f"{where}.attribute", "choose the attribute to show or hide", label)
        if not clean["when"]:
            raise ModelError(f"{where}.when", "say when it is shown", label)
        if any(c.lstrip("!").split("=")[0] == attr for c in clean["when"]):
            raise ModelError(f"{where}.when", "an attribute cannot depend on itself", label)
        clean["attribute"] = attr
    elif kind == "table":
        columns = [str(a) for a in rule.get("attributes") or []]
        if len(columns) < 2:
            raise ModelError(f"{where}.attributes", "choose at least two attributes", label)
        for c in columns:
            if c not in attributes or attributes[c]["kind"] not in ("single", "multiple"):
                raise ModelError(f"{where}.attributes", f"{c!r} is not a choice attribute",
                                 label)
        rows = rule.get("rows") or []
        if not rows or len(rows) > MAX_ROWS:
            raise ModelError(f"{where}.rows", f"list from 1 to {MAX_ROWS:,} combinations", label)
        clean_rows = []
        for r, row in enumerate(rows):
            if not isinstance(row, list | tuple) or len(row) != len(columns):
                raise ModelError(f"{where}.rows[{r}]", f"give one option for each of the "
                                 f"{len(columns)} attributes", label)
            for c, value in zip(columns, row, strict=True):
                if value != "*" and value not in {o["code"] for o in attributes[c]["options"]}:
                    raise ModelError(f"{where}.rows[{r}]", f"{value!r} is not an option of "
                                     f"{attributes[c]['label']}", label)
            clean_rows.append([str(v) for v in row])
        clean.update(attributes=columns, rows=clean_rows)
    elif kind == "formula":
        text = str(rule.get("formula") or "").strip()
        try:
            parsed = formulas.parse(text)
        except formulas.FormulaError as exc:
            raise ModelError(f"{where}.formula", str(exc), label) from None
        for comparison in parsed:
            _check_names(comparison.difference(), attributes, computed, properties,
                         f"{where}.formula", label)
        clean["formula"] = text
    elif kind == "quantity":
        for key in ("min", "max", "multiple"):
            value = _number(rule.get(key), f"{where}.{key}", label)
            if value is not None and value <= 0:
                raise ModelError(f"{where}.{key}", "must be more than 0", label)
            clean[key] = _plain(value)
        if not any(clean[k] for k in ("min", "max", "multiple")):
            raise ModelError(f"{where}.min", "give a lowest, highest or multiple quantity",
                             label)
    return clean


def compile_check(definition: Mapping[str, Any]) -> configure.Engine:
    """The engine of a checked definition (a formula whose encoding fails is named)."""
    try:
        return configure.Engine(definition)
    except (formulas.FormulaError, KeyError, ValueError) as exc:
        raise ModelError("rules", f"cannot be solved: {exc}", "Rules") from None


def digest(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


# --- Storage -------------------------------------------------------------------------------


def loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def create_model(actor: Actor, code: str, name: str, description: str = "", *,
                       definition: Mapping[str, Any] | None = None, ip: str = ""
                       ) -> dict[str, Any]:
    code = str(code or "").strip().upper()
    name = _text(name, 200)
    if not name:
        raise ModelError("name", "give the product a name", "Name")
    if not MODEL_CODE.match(code):
        raise ModelError("code", "use capital letters, digits and - (e.g. PC)", "Code")
    if await ProductModel.exists().where(ProductModel.code == code):
        raise ModelError("code", f"{code} is already used by another model", "Code")
    clean = check_definition(definition or {}, name=name, code=code)
    return await records.create(actor, ProductModel, {
        "code": code, "name": name, "description": _text(description, 2000),
        "draft": json.dumps(clean), "status": "draft", "updated_by": actor.id if actor else None,
    }, ip=ip, summary=f"configurable product {name} created")


async def save_draft(actor: Actor, model_id: int, definition: Mapping[str, Any], *,
                     name: str | None = None, description: str | None = None, ip: str = ""
                     ) -> dict[str, Any]:
    """Replace the draft after checking it whole: a bad draft is refused, never half-saved."""
    model = await get_model(model_id)
    name = _text(name, 200) if name is not None else model["name"]
    if not name:
        raise ModelError("name", "give the product a name", "Name")
    clean = check_definition(definition, name=name, code=model["code"])
    values: dict[str, Any] = {"draft": json.dumps(clean), "name": name,
                              "updated_by": actor.id if actor else None, "updated_at": datetime.now(UTC)}
    if description is not None:
        values["description"] = _text(description, 2000)
    return await records.update(actor, ProductModel, model_id, values, ip=ip,
                                summary="draft changed")


async def get_model(model_id: int) -> dict[str, Any]:
    row = await ProductModel.select().where(ProductModel.id == model_id).first().run()
    if row is None:
        raise records.RecordNotFound(f"no configurable product {model_id}")
    return row


async def list_models(*, published_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    query = ProductModel.select(ProductModel.id, ProductModel.code, ProductModel.name,
                                ProductModel.description, ProductModel.status,
                                ProductModel.current_version, ProductModel.updated_at)
    if published_only:
        query = query.where(ProductModel.status == "published")
    return await query.order_by(ProductModel.name).limit(limit).run()


async def publish(actor: Actor, model_id: int, *, ip: str = "") -> dict[str, Any]:
    """Publish the draft as the next immutable version (checked, compiled and analysed:
    a model no configuration satisfies is refused with the rules to blame)."""
    async with ProductModel._meta.db.transaction():
        model = await get_model(model_id)
        definition = check_definition(loads(model["draft"]), name=model["name"],
                                      code=model["code"])
        engine = compile_check(definition)
        analysis = configure.analyse(engine)
        if analysis.unsatisfiable is not None:
            raise ModelError("rules", "no configuration satisfies every rule: "
                             + analysis.unsatisfiable.words(), "Rules")
        number = (model["current_version"] or 0) + 1
        version = await records.create(actor, ModelVersion, {
            "model": model_id, "number": number, "definition": json.dumps(definition),
            "digest": digest(definition), "published_by": actor.id if actor else None}, ip=ip,
            summary=f"{model['name']} version {number} published")
        await records.update(actor, ProductModel, model_id, {
            "current_version": number, "status": "published",
            "updated_at": datetime.now(UTC)}, ip=ip, summary=f"version {number} published")
    return version


async def retire_version(actor: Actor, version_id: int, *, ip: str = "") -> dict[str, Any]:
    """No new configurations against this version; saved ones stay as they are."""
    return await records.update(actor, ModelVersion, version_id, {"retired": True}, ip=ip,
                                summary="version retired")


async def retire_model(actor: Actor, model_id: int, *, ip: str = "") -> dict[str, Any]:
    async with ProductModel._meta.db.transaction():
        row = await records.update(actor, ProductModel, model_id, {"status": "retired"}, ip=ip,
                                   summary="model retired")
        await ModelVersion.update({ModelVersion.retired: True}).where(
            ModelVersion.model == model_id).run()
    return row


async def current_version(model_id: int) -> dict[str, Any] | None:
    """The latest version that is not retired, with its definition parsed."""
    row = await ModelVersion.select().where(
        (ModelVersion.model == model_id) & (ModelVersion.retired == False)  # noqa: E712
    ).order_by(ModelVersion.number, ascending=False).first().run()
    if row is not None:
        row["definition"] = loads(row["definition"])
    return row


async def get_version(version_id: int) -> dict[str, Any] | None:
    row = await ModelVersion.select().where(ModelVersion.id == version_id).first().run()
    if row is not None:
        row["definition"] = loads(row["definition"])
    return row


async def versions(model_id: int) -> list[dict[str, Any]]:
    rows = await ModelVersion.select(
        ModelVersion.id, ModelVersion.number, ModelVersion.retired, ModelVersion.published_at,
        ModelVersion.published_by.name.as_alias("published_by_name"),
    ).where(ModelVersion.model == model_id).order_by(ModelVersion.number, ascending=False
                                                     ).limit(100).run()
    for row in rows:
        row["configurations"] = await Configuration.count().where(
            Configuration.version == row["id"])
    return rows


def engine_of(version: Mapping[str, Any]) -> configure.Engine:
    return configure.engine_for(version["id"], version["definition"],
                                version.get("digest") or "")
