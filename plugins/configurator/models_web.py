"""Staff pages for modelling configurable products (permission ``configurator.model.edit``):
the list, a new model, the editor (basics, attributes and their options, computed values,
rules, volume breaks; every mistake shown beside its field), the authoring-time analysis,
publishing and retiring versions.

The editor is one form whose field names are the definition's own paths
(``attributes[2].options[1].price``), so an error naming a field lands beside that input.
Buttons add an attribute, an option or a rule without JavaScript.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from core.audit import client_ip
from core.permissions import current_actor
from plugins.configurator import configure, models
from plugins.configurator.models import ModelError

EDIT = {"permission": "configurator.model.edit"}
_PATH = re.compile(r"([a-z_]+)(?:\[(\d{1,4})\])?")
LIST_FIELDS = {"when", "then", "attributes", "default_list"}


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at ``attributes[2].options[1].price`` in nested dicts/lists."""
    node: Any = tree
    parts = path.split(".")
    for n, part in enumerate(parts):
        match = _PATH.fullmatch(part)
        if match is None:
            return
        key, index = match.group(1), match.group(2)
        last = n == len(parts) - 1
        if index is None:
            if last:
                node[key] = value
                return
            node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, {})  # index -> item, turned into lists afterwards
        if last:
            items[int(index)] = value
            return
        node = items.setdefault(int(index), {})


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_lists(node[k]) for k in sorted(node)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def _split(text: Any) -> list[str]:
    return [p.strip() for p in re.split(r"[,\n]", str(text or "")) if p.strip()]


def definition_from_form(form: Any) -> dict[str, Any]:
    """The editor's fields as a definition (removed items dropped, lists split)."""
    tree: dict[str, Any] = {}
    for key in form:
        if key.startswith("_") or key in ("add", "name", "description", "action"):
            continue
        values = form.getall(key) if hasattr(form, "getall") else [form.get(key)]
        value = values[-1] if len(values) == 1 else [v for v in values if v]
        _set(tree, key, value)
    definition = _lists(tree)
    for attr in definition.get("attributes", []) if isinstance(definition, dict) else []:
        if not isinstance(attr, dict):
            continue
        attr["required"] = attr.get("required") in ("on", "yes", "true", True)
        if attr.get("kind") == "multiple":
            attr["default"] = _split(attr.get("default"))
        if attr.get("kind") == "yesno":
            attr["default"] = attr.get("default") in ("on", "yes", "true", True)
        options = [o for o in attr.get("options", []) or [] if isinstance(o, dict)
                   and not o.get("remove")]
        for option in options:
            option["properties"] = _properties(option.get("properties"))
        attr["options"] = options
        if isinstance(attr.get("properties"), str):
            attr["properties"] = _properties(attr["properties"])
    if isinstance(definition, dict):
        definition["attributes"] = [a for a in definition.get("attributes", [])
                                    if isinstance(a, dict) and not a.get("remove")]
        definition["computed"] = [c for c in definition.get("computed", [])
                                  if isinstance(c, dict) and not c.get("remove")
                                  and (c.get("code") or c.get("formula"))]
        rules = []
        for rule in definition.get("rules", []):
            if not isinstance(rule, dict) or rule.get("remove"):
                continue
            for key in ("when", "then", "attributes"):
                if key in rule:
                    rule[key] = _split(rule[key])
            if "rows" in rule:
                rule["rows"] = [_split(line) for line in str(rule["rows"]).splitlines()
                                if line.strip()]
            rules.append(rule)
        definition["rules"] = rules
        definition["volume_breaks"] = [b for b in definition.get("volume_breaks", [])
                                       if isinstance(b, dict) and not b.get("remove")
                                       and (b.get("min_quantity") or b.get("discount_percent"))]
        definition["steps"] = _split(definition.get("steps"))
    return definition if isinstance(definition, dict) else {}


def _properties(text: Any) -> dict[str, str]:
    if isinstance(text, dict):
        return text
    out = {}
    for part in _split(text):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def _add(definition: dict[str, Any], what: str) -> None:
    kind, _, arg = what.partition(":")
    if kind == "attribute" and arg in models.KINDS:
        item: dict[str, Any] = {"code": "", "label": "", "kind": arg}
        if arg in ("single", "multiple"):
            item["options"] = [{"code": "", "label": ""}]
        if arg == "number":
            item.update(min="0", max="10", increment="1")
        definition.setdefault("attributes", []).append(item)
    elif kind == "option" and arg.isdigit() and int(arg) < len(definition.get("attributes", [])):
        definition["attributes"][int(arg)].setdefault("options", []).append(
            {"code": "", "label": ""})
    elif kind == "rule" and arg in models.RULE_KINDS:
        number = len(definition.get("rules", [])) + 1
        definition.setdefault("rules", []).append({"id": f"R{number}", "kind": arg})
    elif kind == "computed":
        definition.setdefault("computed", []).append({"code": "", "label": "", "formula": ""})
    elif kind == "break":
        definition.setdefault("volume_breaks", []).append({"min_quantity": "",
                                                          "discount_percent": ""})


def _conditions(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(condition, words) to pick from when writing rules."""
    out = []
    for attr in definition.get("attributes", []):
        if not isinstance(attr, dict):
            continue
        if attr.get("kind") in ("single", "multiple"):
            for o in attr.get("options", []):
                if o.get("code"):
                    out.append((f"{attr.get('code')}={o['code']}",
                                f"{attr.get('label')}: {o.get('label')}"))
        elif attr.get("kind") == "yesno":
            out.append((str(attr.get("code")), f"{attr.get('label')}: yes"))
            out.append((f"!{attr.get('code')}", f"{attr.get('label')}: no"))
    return out


async def _model(model_id: int) -> dict[str, Any]:
    try:
        return await models.get_model(model_id)
    except LookupError:
        raise NotFoundException("not found") from None


def _editor(model: dict[str, Any] | None, definition: dict[str, Any], *,
            error: ModelError | None = None, status: int = 200, notice: str = "",
            versions: list[dict[str, Any]] | None = None,
            analysis: configure.Analysis | None = None) -> Template:
    return Template("configurator/model_edit.html", context={
        "model": model, "d": definition, "kinds": models.KINDS, "rule_kinds": models.RULE_KINDS,
        "error": error, "errors": {error.field: error.message} if error else {},
        "conditions": _conditions(definition), "notice": notice,
        "versions": versions or [], "analysis": analysis,
        "rule_words": lambda rule: configure.rule_words(definition, rule)
        if isinstance(rule, dict) and rule.get("kind") in models.RULE_KINDS else ""},
        status_code=status)


@get("/configurator/models", opt=EDIT)
async def model_list(request: Request) -> Template:
    return Template("configurator/models.html", context={"rows": await models.list_models()})


@post("/configurator/models", opt=EDIT, status_code=303)
async def model_create(request: Request) -> Response:
    form = await request.form()
    try:
        row = await models.create_model(current_actor(request), str(form.get("code") or ""),
                                        str(form.get("name") or ""),
                                        str(form.get("description") or ""),
                                        definition={"currency": "EUR"}, ip=client_ip(request))
    except ModelError as exc:
        return Template("configurator/models.html", context={
            "rows": await models.list_models(), "error": exc, "values": dict(form)},
            status_code=400)
    return Redirect(f"/configurator/models/{row['id']}", status_code=303)


@get("/configurator/models/{model_id:int}", opt=EDIT)
async def model_edit(request: Request, model_id: FromPath[int]) -> Template:
    model = await _model(model_id)
    notice = {"saved": "Draft saved.", "published": "Published: new configurations use "
              "the new version; saved ones keep theirs."}.get(
        request.query_params.get("done", ""), "")
    return _editor(model, models.loads(model["draft"]), notice=notice,
                   versions=await models.versions(model_id))


@post("/configurator/models/{model_id:int}", opt=EDIT, status_code=303)
async def model_save(request: Request, model_id: FromPath[int]) -> Response:
    """Save the draft (or add a row and show the form again). A draft with a mistake is not
    saved: the form comes back with the error beside its field."""
    model = await _model(model_id)
    form = await request.form()
    definition = definition_from_form(form)
    versions = await models.versions(model_id)
    if form.get("add"):
        _add(definition, str(form.get("add")))
        return _editor(model, definition, versions=versions)
    try:
        await models.save_draft(current_actor(request), model_id, definition,
                                name=str(form.get("name") or model["name"]),
                                description=str(form.get("description") or ""),
                                ip=client_ip(request))
    except ModelError as exc:
        return _editor({**model, "name": form.get("name") or model["name"]}, definition,
                       error=exc, status=400, versions=versions)
    if form.get("action") == "analyse":
        return Redirect(f"/configurator/models/{model_id}/analysis", status_code=303)
    return Redirect(f"/configurator/models/{model_id}?done=saved", status_code=303)


@get("/configurator/models/{model_id:int}/analysis", opt=EDIT)
async def model_analysis(request: Request, model_id: FromPath[int]) -> Template:
    """Dead options, a model no configuration satisfies, contradictory rules: each with the
    rules to blame."""
    model = await _model(model_id)
    definition = models.loads(model["draft"])
    error = None
    analysis = None
    try:
        clean = models.check_definition(definition, name=model["name"], code=model["code"])
        analysis = configure.analyse(models.compile_check(clean))
    except ModelError as exc:
        error = exc
    return _editor(model, definition, error=error, analysis=analysis,
                   versions=await models.versions(model_id),
                   notice="" if error else "Analysis of the saved draft below.")


@post("/configurator/models/{model_id:int}/publish", opt=EDIT, status_code=303)
async def model_publish(request: Request, model_id: FromPath[int]) -> Response:
    model = await _model(model_id)
    try:
        await models.publish(current_actor(request), model_id, ip=client_ip(request))
    except ModelError as exc:
        return _editor(model, models.loads(model["draft"]), error=exc, status=400,
                       versions=await models.versions(model_id))
    return Redirect(f"/configurator/models/{model_id}?done=published", status_code=303)


@post("/configurator/models/{model_id:int}/versions/{version_id:int}/retire", opt=EDIT,
      status_code=303)
async def version_retire(request: Request, model_id: FromPath[int],
                         version_id: FromPath[int]) -> Response:
    version = await models.get_version(version_id)
    if version is None or version["model"] != model_id:
        raise NotFoundException("not found")
    await models.retire_version(current_actor(request), version_id, ip=client_ip(request))
    return Redirect(f"/configurator/models/{model_id}", status_code=303)


ROUTES = [model_list, model_create, model_edit, model_save, model_analysis, model_publish,
          version_retire]
