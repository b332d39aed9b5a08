"""Staff pages for segments: the list, and the rule editor with its live count and member
preview (``campaigns.segment.view`` to look, ``campaigns.segment.manage`` to save).

The editor is a plain form that works without JavaScript (Add condition, Add group and
Remove re-draw the page without saving); with htmx the same buttons re-draw only the rules,
and typing updates the count and preview. Counts and previews only ever include customers
the user may see.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.audit import client_ip
from core.permissions import current_actor
from plugins.campaigns import segments
from plugins.campaigns.segments import SegmentError

VIEW = {"permission": "campaigns.segment.view"}
MANAGE = {"permission": "campaigns.segment.manage"}


async def form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _grouped(known: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = {}
    for criterion in known.values():
        groups.setdefault(criterion.group, []).append(criterion)
    return list(groups.items())


def apply_action(rules: dict[str, Any], action: str, known: dict[str, Any]) -> dict[str, Any]:
    """Add a condition or group, or remove one, as the editor's buttons ask."""
    groups = rules.setdefault("groups", [])
    first = next(iter(known))
    blank = {"criterion": first, "op": known[first].operators[0][0], "value": ""}
    if action == "add_group" and len(groups) < segments.MAX_GROUPS:
        groups.append({"match": "all", "conditions": [dict(blank)]})
    elif action.startswith("add_c"):
        index = _index(action.removeprefix("add_c"))
        if index is not None and index < len(groups) and \
                len(groups[index]["conditions"]) < segments.MAX_CONDITIONS:
            groups[index]["conditions"].append(dict(blank))
    elif action.startswith("remove_"):
        parts = action.removeprefix("remove_").split("_")
        g = _index(parts[0].removeprefix("g"))
        c = _index(parts[1].removeprefix("c")) if len(parts) > 1 else None
        if g is not None and g < len(groups):
            if c is None:
                groups.pop(g)
            elif c < len(groups[g]["conditions"]):
                groups[g]["conditions"].pop(c)
    if not groups:
        groups.append({"match": "all", "conditions": []})
    # A condition whose operator does not fit its (changed) criterion gets the first one.
    for group in groups:
        for condition in group["conditions"]:
            criterion = known.get(condition["criterion"])
            if criterion and condition["op"] not in dict(criterion.operators):
                condition["op"] = criterion.operators[0][0]
                condition["value"] = ""
            # A choice starts on its first option, as the editor's drop-down shows it.
            if criterion and criterion.value == "choice" and criterion.choices and \
                    condition["value"] not in dict(criterion.choices):
                condition["value"] = criterion.choices[0][0]
    return rules


def _index(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


async def _count_context(request: Request, rules: dict[str, Any], known: dict[str, Any]
                         ) -> dict[str, Any]:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    try:
        compiled = segments.compile_rules(rules, known)
    except SegmentError as exc:
        return {"count": None, "members": [], "count_error": exc.message,
                "count_error_field": exc.field}
    return {"count": await segments.count(rapport, actor, compiled),
            "members": await segments.preview(rapport, actor, compiled),
            "count_error": "", "count_error_field": ""}


async def editor_page(request: Request, segment: dict[str, Any] | None, rules: dict[str, Any],
                      values: dict[str, Any], *, errors: dict[str, str] | None = None,
                      status: int = 200, notice: str = "") -> Template:
    rapport = request.app.state.rapport
    known = await segments.criteria(rapport)
    context = {"segment": segment, "rules": rules, "values": values, "errors": errors or {},
               "criteria": known, "grouped": _grouped(known), "notice": notice,
               "can_manage": current_actor(request).can("campaigns.segment.manage"),
               "stage_labels": segments.STAGE_LABELS}
    context.update(await _count_context(request, rules, known))
    return Template("campaigns/segment.html", status_code=status, context=context)


@get("/campaigns/segments", opt=VIEW, name="campaigns-segments")
async def segment_list(request: Request) -> Template:
    rapport = request.app.state.rapport
    known = await segments.criteria(rapport)
    rows = await segments.list_segments()
    for row in rows:
        row["described"] = segments.describe(segments.parse_rules(row["rules"]), known)
    return Template("campaigns/segments.html", context={
        "segments": rows,
        "can_manage": current_actor(request).can("campaigns.segment.manage")})


@get("/campaigns/segments/new", opt=MANAGE, name="campaigns-segment-new")
async def segment_new(request: Request) -> Template:
    known = await segments.criteria(request.app.state.rapport)
    rules = apply_action(segments.empty_rules(), "add_c0", known)
    return await editor_page(request, None, rules, {"name": "", "description": ""})


async def _segment_or_404(segment_id: int) -> dict[str, Any]:
    segment = await segments.get_segment(segment_id)
    if segment is None:
        raise NotFoundException("not found")
    return segment


@get("/campaigns/segments/{segment_id:int}", opt=VIEW, name="campaigns-segment")
async def segment_show(request: Request, segment_id: FromPath[int]) -> Template:
    segment = await _segment_or_404(segment_id)
    return await editor_page(request, segment, segments.parse_rules(segment["rules"]),
                             segment, notice=request.query_params.get("done", ""))


async def _save(request: Request, segment: dict[str, Any] | None) -> Template | Redirect:
    rapport = request.app.state.rapport
    data = await form_data(request)
    known = await segments.criteria(rapport)
    rules = segments.rules_from_form(data)
    action = data.get("_action", "save")
    if action != "save":
        return await editor_page(request, segment, apply_action(rules, action, known), data)
    try:
        saved = await segments.save_segment(
            rapport, current_actor(request), segment["id"] if segment else None,
            data.get("name", ""), data.get("description", ""), rules, ip=client_ip(request))
    except SegmentError as exc:
        return await editor_page(request, segment, rules, data,
                                 errors={exc.field: exc.message}, status=422)
    return Redirect(f"/campaigns/segments/{saved['id']}?done=saved", status_code=303)


@post("/campaigns/segments", opt=MANAGE, name="campaigns-segment-create")
async def segment_create(request: Request) -> Template | Redirect:
    return await _save(request, None)


@post("/campaigns/segments/{segment_id:int}", opt=MANAGE, name="campaigns-segment-update")
async def segment_update(request: Request, segment_id: FromPath[int]) -> Template | Redirect:
    return await _save(request, await _segment_or_404(segment_id))


@post("/campaigns/segments/{segment_id:int}/delete", opt=MANAGE,
      name="campaigns-segment-delete")
async def segment_delete(request: Request, segment_id: FromPath[int]) -> Template | Redirect:
    segment = await _segment_or_404(segment_id)
    try:
        await segments.delete_segment(current_actor(request), segment_id, ip=client_ip(request))
    except SegmentError as exc:
        return await editor_page(request, segment, segments.parse_rules(segment["rules"]),
                                 segment, errors={"delete": exc.message}, status=409)
    return Redirect("/campaigns/segments", status_code=303)


# htmx: re-draw the rules after a button or a criterion change (and the count, out of band)
@post("/campaigns/segments/editor", opt=VIEW,
      name="campaigns-segment-editor")
async def segment_editor(request: Request) -> Template:
    rapport = request.app.state.rapport
    data = await form_data(request)
    known = await segments.criteria(rapport)
    rules = apply_action(segments.rules_from_form(data), data.get("_action", ""), known)
    context = {"rules": rules, "criteria": known, "grouped": _grouped(known), "errors": {},
               "oob": True}
    context.update(await _count_context(request, rules, known))
    return Template("campaigns/_rules.html", context=context)


# htmx: the live count and member preview while the rules are edited
@post("/campaigns/segments/count", opt=VIEW,
      name="campaigns-segment-count")
async def segment_count(request: Request) -> Template:
    rapport = request.app.state.rapport
    data = await form_data(request)
    known = await segments.criteria(rapport)
    context = await _count_context(request, segments.rules_from_form(data), known)
    return Template("campaigns/_count.html", context=context)


ROUTES = [segment_list, segment_new, segment_show, segment_create, segment_update,
          segment_delete, segment_editor, segment_count]
