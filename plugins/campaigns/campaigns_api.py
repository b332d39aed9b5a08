"""REST API for segments and campaigns (read only): segments with their rules in words and
their size for the token's user (counting only customers that user may see), campaigns, and
a campaign's report. Errors are RFC 9457 problem documents (core.problems)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath

from core.permissions import current_actor
from core.problems import bad_request, forbidden, problem
from plugins.campaigns import campaigns, segments, sending


def not_found(request: Request, exc: NotFoundException) -> Response:
    return problem(404, "Not found", str(exc.detail))


API: dict[str, Any] = {
    "exception_handlers": {NotFoundException: not_found, PermissionDeniedException: forbidden,
                           ClientException: bad_request},
    "tags": ["campaigns"],
}
SEGMENTS = {"permission": "campaigns.segment.view"}
CAMPAIGNS = {"permission": "campaigns.campaign.view"}


def _segment_json(row: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    rules = segments.parse_rules(row["rules"])
    return {"id": row["id"], "name": row["name"], "description": row["description"],
            "rules": rules, "rules_in_words": segments.describe(rules, known),
            "updated_at": row["updated_at"]}


@get("/api/v1/campaigns/segments", opt=SEGMENTS, **API, summary="Segments")
async def api_segments(request: Request) -> dict[str, Any]:
    known = await segments.criteria(request.app.state.rapport)
    return {"items": [_segment_json(row, known) for row in await segments.list_segments()]}


@get("/api/v1/campaigns/segments/{segment_id:int}", opt=SEGMENTS, **API,
     summary="A segment and how many customers the caller may see in it")
async def api_segment(request: Request, segment_id: FromPath[int]) -> dict[str, Any]:
    rapport = request.app.state.rapport
    row = await segments.get_segment(segment_id)
    if row is None:
        raise NotFoundException(f"segment {segment_id} does not exist")
    known = await segments.criteria(rapport)
    out = _segment_json(row, known)
    try:
        compiled = segments.compile_rules(out["rules"], known)
    except segments.SegmentError as exc:
        out.update(count=None, problem=f"{exc.field}: {exc.message}")
    else:
        out["count"] = await segments.count(rapport, current_actor(request), compiled)
    return out


@get("/api/v1/campaigns", opt=CAMPAIGNS, **API, summary="Campaigns, newest first")
async def api_campaigns() -> dict[str, Any]:
    return {"items": [{k: row[k] for k in ("id", "name", "state", "subject", "segment_name",
                                           "send_started_at")}
                      for row in await campaigns.list_campaigns()]}


@get("/api/v1/campaigns/{campaign_id:int}/report", opt=CAMPAIGNS, **API,
     summary="A campaign's report: messages per state, exclusions per reason, responses")
async def api_report(campaign_id: FromPath[int]) -> dict[str, Any]:
    campaign = await campaigns.get_campaign(campaign_id)
    if campaign is None:
        raise NotFoundException(f"campaign {campaign_id} does not exist")
    report = await sending.report(campaign_id)
    report.pop("failures")
    return {"id": campaign_id, "name": campaign["name"], "state": campaign["state"],
            "send_started_at": campaign["send_started_at"],
            "send_finished_at": campaign["send_finished_at"], **report}


ROUTES = [api_segments, api_segment, api_campaigns, api_report]
