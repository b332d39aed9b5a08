"""Managing pipelines: create and rename them, choose the default, and edit their ordered
stages with win probabilities. Every pipeline ends in one Won and one Lost stage.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Response, Template

from core import records
from core.api_schemas import accepts
from core.audit import client_ip
from core.permissions import Actor, current_actor
from plugins.sales import api_bodies as bodies
from plugins.sales.controllers import form_data, perm
from plugins.sales.pipeline import default_pipeline, stages_of
from plugins.sales.tables import Opportunity, Pipeline, Stage, StageChange

MANAGE = perm("sales.pipeline.manage")
MAX_STAGES = 20


class PipelineError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _probability(raw: Any, field: str) -> int:
    text = str(raw if raw is not None else "").strip().rstrip("%").strip()
    if not text.isdigit() or not 0 <= int(text) <= 100:
        raise PipelineError(field, "give a whole percentage from 0 to 100")
    return int(text)


def _stage_name(raw: Any, field: str) -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise PipelineError(field, "give the stage a name")
    if len(name) > 100:
        raise PipelineError(field, "is longer than 100 characters")
    return name


def parse_stages(raw: Any) -> list[tuple[str, int]]:
    """Open stages from ``"Name: probability"`` lines (the form) or a list of
    ``{"name", "probability"}`` (the API)."""
    if isinstance(raw, list):
        items = [(s.get("name"), s.get("probability")) if isinstance(s, dict) else (s, None)
                 for s in raw]
    else:
        items = []
        for line in str(raw or "").splitlines():
            if line.strip():
                name, _, probability = line.rpartition(":") if ":" in line else (line, "", "")
                items.append((name, probability))
    stages: list[tuple[str, int]] = []
    for i, (name, probability) in enumerate(items, start=1):
        field = f"stages[{i}]"
        clean = _stage_name(name, field)
        if clean.lower() in {n.lower() for n, _ in stages} | {"won", "lost"}:
            raise PipelineError(field, f"{clean} is named twice (Won and Lost are added)")
        stages.append((clean, _probability(probability, field)))
    if not stages:
        raise PipelineError("stages", "give at least one open stage, one per line")
    if len(stages) > MAX_STAGES:
        raise PipelineError("stages", f"at most {MAX_STAGES} stages")
    return stages


async def _check_name(name: Any, pipeline_id: int | None = None) -> str:
    clean = " ".join(str(name or "").split())
    if not clean:
        raise PipelineError("name", "give the pipeline a name")
    if len(clean) > 200:
        raise PipelineError("name", "is longer than 200 characters")
    query = Pipeline.exists().where(Pipeline.name == clean)
    if pipeline_id is not None:
        query = query.where(Pipeline.id != pipeline_id)
    if await query.run():
        raise PipelineError("name", "another pipeline has this name")
    return clean


async def create_pipeline(actor: Actor, data: dict[str, Any], *, ip: str = "") -> dict[str, Any]:
    await default_pipeline()  # the first pipeline stays the default one
    name = await _check_name(data.get("name"))
    stages = parse_stages(data.get("stages"))
    async with Pipeline._meta.db.transaction():
        row = await records.create(actor, Pipeline, {"name": name, "is_default": False}, ip=ip)
        all_stages = [(n, p, "open") for n, p in stages] + [("Won", 100, "won"),
                                                             ("Lost", 0, "lost")]
        for position, (stage, probability, outcome) in enumerate(all_stages):
            await records.create(actor, Stage, {"pipeline": row["id"], "name": stage,
                                                "position": position,
                                                "probability": probability,
                                                "outcome": outcome}, ip=ip)
    return row


async def _pipeline(pipeline_id: int) -> dict[str, Any]:
    found = await Pipeline.select().where(Pipeline.id == pipeline_id).first().run()
    if found is None:
        raise NotFoundException("not found")
    return found


async def _stage(pipeline_id: int, stage_id: int) -> dict[str, Any]:
    found = await Stage.select().where((Stage.id == stage_id)
                                       & (Stage.pipeline == pipeline_id)).first().run()
    if found is None:
        raise NotFoundException("not found")
    return found


async def _renumber(actor: Actor, ordered: list[dict[str, Any]], ip: str) -> None:
    for position, stage in enumerate(ordered):
        if stage["position"] != position:
            await records.update(actor, Stage, stage["id"], {"position": position}, ip=ip)


# --- Pages -----------------------------------------------------------------------------------


async def _list_page(errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                     status: int = 200) -> Template:
    await default_pipeline()
    pipelines = await Pipeline.select().order_by(Pipeline.name).limit(100).run()
    stages = await Stage.select().where(Stage.pipeline.is_in([p["id"] for p in pipelines])
                                        ).order_by(Stage.position).order_by(Stage.id).run()
    by_pipeline: dict[int, list[dict[str, Any]]] = {}
    for stage in stages:
        by_pipeline.setdefault(stage["pipeline"], []).append(stage)
    return Template("sales/pipelines.html", status_code=status, context={
        "pipelines": pipelines, "stages": by_pipeline, "errors": errors or {},
        "values": values or {}})


@get("/sales/pipelines", opt=MANAGE)
async def pipelines_page() -> Template:
    return await _list_page()


@post("/sales/pipelines", opt=MANAGE, status_code=303)
async def pipeline_create(request: Request) -> Response:
    data = await form_data(request)
    try:
        row = await create_pipeline(current_actor(request), data, ip=client_ip(request))
    except PipelineError as exc:
        field = "stages" if exc.field.startswith("stages") else exc.field
        return await _list_page({field: exc.message}, data, status=400)
    return Redirect(f"/sales/pipelines/{row['id']}", status_code=303)


async def _edit_page(pipeline: dict[str, Any], errors: dict[str, str] | None = None,
                     status: int = 200) -> Template:
    stages = await stages_of(pipeline["id"])
    return Template("sales/pipeline_edit.html", status_code=status, context={
        "pipeline": pipeline, "stages": stages, "errors": errors or {},
        "open_count": sum(1 for s in stages if s["outcome"] == "open")})


@get("/sales/pipelines/{pipeline_id:int}", opt=MANAGE)
async def pipeline_edit(pipeline_id: FromPath[int]) -> Template:
    return await _edit_page(await _pipeline(pipeline_id))


@post("/sales/pipelines/{pipeline_id:int}", opt=MANAGE, status_code=303)
async def pipeline_save(request: Request, pipeline_id: FromPath[int]) -> Response:
    pipeline = await _pipeline(pipeline_id)
    data = await form_data(request)
    actor, ip = current_actor(request), client_ip(request)
    try:
        name = await _check_name(data.get("name"), pipeline_id)
    except PipelineError as exc:
        return await _edit_page(pipeline, {exc.field: exc.message}, status=400)
    async with Pipeline._meta.db.transaction():
        if data.get("is_default") == "on" and not pipeline["is_default"]:
            for other in await Pipeline.select(Pipeline.id).where(
                    Pipeline.is_default == True).run():  # noqa: E712
                await records.update(actor, Pipeline, other["id"], {"is_default": False}, ip=ip)
            await records.update(actor, Pipeline, pipeline_id, {"is_default": True}, ip=ip)
        if name != pipeline["name"]:
            await records.update(actor, Pipeline, pipeline_id, {"name": name}, ip=ip)
    return Redirect(f"/sales/pipelines/{pipeline_id}", status_code=303)


@post("/sales/pipelines/{pipeline_id:int}/stages", opt=MANAGE, status_code=303)
async def stage_add(request: Request, pipeline_id: FromPath[int]) -> Response:
    pipeline = await _pipeline(pipeline_id)
    data = await form_data(request)
    actor, ip = current_actor(request), client_ip(request)
    stages = await stages_of(pipeline_id)
    try:
        name = _stage_name(data.get("name"), "stage_name")
        if name.lower() in {s["name"].lower() for s in stages}:
            raise PipelineError("stage_name", "this pipeline already has a stage of this name")
        probability = _probability(data.get("probability"), "stage_probability")
        if len(stages) >= MAX_STAGES:
            raise PipelineError("stage_name", f"a pipeline has at most {MAX_STAGES} stages")
    except PipelineError as exc:
        return await _edit_page(pipeline, {exc.field: exc.message}, status=400)
    # A new open stage goes after the last open one, before Won and Lost.
    open_stages = [s for s in stages if s["outcome"] == "open"]
    closed = [s for s in stages if s["outcome"] != "open"]
    async with Stage._meta.db.transaction():
        row = await records.create(actor, Stage, {
            "pipeline": pipeline_id, "name": name, "probability": probability,
            "outcome": "open", "position": len(stages)}, ip=ip)
        await _renumber(actor, [*open_stages, {**row, "position": -1}, *closed], ip)
    return Redirect(f"/sales/pipelines/{pipeline_id}", status_code=303)


@post("/sales/pipelines/{pipeline_id:int}/stages/{stage_id:int}", opt=MANAGE,
      status_code=303)
async def stage_save(request: Request, pipeline_id: FromPath[int],
                     stage_id: FromPath[int]) -> Response:
    pipeline = await _pipeline(pipeline_id)
    stage = await _stage(pipeline_id, stage_id)
    data = await form_data(request)
    stages = await stages_of(pipeline_id)
    prefix = f"stage{stage_id}"
    try:
        name = _stage_name(data.get("name"), f"{prefix}_name")
        if name.lower() in {s["name"].lower() for s in stages if s["id"] != stage_id}:
            raise PipelineError(f"{prefix}_name", "this pipeline already has a stage of this name")
        # Won and Lost keep 100 % and 0 %: the forecast relies on it.
        probability = stage["probability"] if stage["outcome"] != "open" else _probability(
            data.get("probability"), f"{prefix}_probability")
    except PipelineError as exc:
        return await _edit_page(pipeline, {exc.field: exc.message}, status=400)
    changes = {k: v for k, v in (("name", name), ("probability", probability))
               if stage[k] != v}
    if changes:
        await records.update(current_actor(request), Stage, stage_id, changes,
                             ip=client_ip(request))
    return Redirect(f"/sales/pipelines/{pipeline_id}", status_code=303)


@post("/sales/pipelines/{pipeline_id:int}/stages/{stage_id:int}/move", opt=MANAGE,
      status_code=303)
async def stage_move(request: Request, pipeline_id: FromPath[int],
                     stage_id: FromPath[int]) -> Response:
    """Move an open stage one place up or down among the open stages."""
    await _pipeline(pipeline_id)
    stage = await _stage(pipeline_id, stage_id)
    data = await form_data(request)
    stages = await stages_of(pipeline_id)
    open_stages = [s for s in stages if s["outcome"] == "open"]
    if stage["outcome"] == "open":
        i = next(n for n, s in enumerate(open_stages) if s["id"] == stage_id)
        j = i - 1 if data.get("direction") == "up" else i + 1
        if 0 <= j < len(open_stages):
            open_stages[i], open_stages[j] = open_stages[j], open_stages[i]
            async with Stage._meta.db.transaction():
                await _renumber(current_actor(request), open_stages + [
                    s for s in stages if s["outcome"] != "open"], client_ip(request))
    return Redirect(f"/sales/pipelines/{pipeline_id}", status_code=303)


@post("/sales/pipelines/{pipeline_id:int}/stages/{stage_id:int}/delete", opt=MANAGE,
      status_code=303)
async def stage_delete(request: Request, pipeline_id: FromPath[int],
                       stage_id: FromPath[int]) -> Response:
    pipeline = await _pipeline(pipeline_id)
    stage = await _stage(pipeline_id, stage_id)
    stages = await stages_of(pipeline_id)
    problem = None
    if stage["outcome"] != "open":
        problem = "Won and Lost stages cannot be deleted"
    elif sum(1 for s in stages if s["outcome"] == "open") <= 1:
        problem = "a pipeline needs at least one open stage"
    elif await Opportunity.exists().where(Opportunity.stage == stage_id).run() or \
            await StageChange.exists().where((StageChange.to_stage == stage_id)
                                             | (StageChange.from_stage == stage_id)).run():
        problem = "deals are or were in this stage: rename it instead"
    if problem:
        return await _edit_page(pipeline, {f"stage{stage_id}_name": problem}, status=400)
    await records.delete(current_actor(request), Stage, stage_id, ip=client_ip(request))
    return Redirect(f"/sales/pipelines/{pipeline_id}", status_code=303)


# --- API -------------------------------------------------------------------------------------


@get("/api/v1/sales/pipelines", opt=perm("sales.opportunity.view"))
async def api_pipelines() -> dict[str, Any]:
    """Every pipeline with its ordered stages (id, name, probability, outcome)."""
    await default_pipeline()
    pipelines = await Pipeline.select().order_by(Pipeline.name).limit(100).run()
    stages = await Stage.select().where(Stage.pipeline.is_in([p["id"] for p in pipelines])
                                        ).order_by(Stage.position).order_by(Stage.id).run()
    return {"items": [{**p, "stages": [
        {k: s[k] for k in ("id", "name", "position", "probability", "outcome")}
        for s in stages if s["pipeline"] == p["id"]]} for p in pipelines]}


@accepts(bodies.PIPELINE)
@post("/api/v1/sales/pipelines", opt=MANAGE)
async def api_pipeline_create(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Create a pipeline: ``name`` and ``stages`` (a list of ``{"name", "probability"}``,
    the open stages in order; Won and Lost are added)."""
    try:
        row = await create_pipeline(current_actor(request), data, ip=client_ip(request))
    except PipelineError as exc:
        return Response({"type": "about:blank", "title": "Invalid input", "status": 422,
                         "detail": f"{exc.field}: {exc.message}", "field": exc.field},
                        status_code=422, media_type="application/problem+json")
    return Response({"id": row["id"], "name": row["name"]}, status_code=201)


ROUTES = [pipelines_page, pipeline_create, pipeline_edit, pipeline_save, stage_add, stage_save,
          stage_move, stage_delete, api_pipelines, api_pipeline_create]
