"""REST API for rewards and vouchers: the catalogue, redeeming for a member (an
``Idempotency-Key`` header makes a retried redemption return the first voucher), and a
till's check and single use of a voucher code."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody

from core.api_schemas import accepts
from core.permissions import current_actor
from plugins.loyalty import api_bodies as bodies
from plugins.loyalty import rewards, vouchers
from plugins.loyalty.members_api import API, _member, body_object, int_field
from plugins.loyalty.programs import LoyaltyError, get_program

VIEW = {"permission": "loyalty.member.view"}
REDEEM = {"permission": "loyalty.voucher.redeem"}


def voucher_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in ("id", "code", "value", "currency", "status", "issued_at",
                                   "expires_at", "used_at", "used_ref", "used_by", "member",
                                   "reward")}
    out["state"] = vouchers.state_words(row)
    if "reward_name" in row:
        out["reward_name"] = row["reward_name"]
    return out


@get("/api/v1/loyalty/programs/{program_id:int}/rewards", opt=VIEW, **API,
     summary="A program's rewards catalogue")
async def api_rewards(program_id: FromPath[int]) -> dict[str, Any]:
    if await get_program(program_id) is None:
        raise LoyaltyError("program", "no such program", status=404)
    rows = await rewards.catalogue(program_id)
    return {"items": [{k: r[k] for k in ("id", "name", "description", "kind", "cost", "value",
                                         "stock", "issued_count", "per_member_limit",
                                         "min_tier", "tier_name", "valid_days")}
                      for r in rows]}


@accepts(bodies.REDEMPTION)
@post("/api/v1/loyalty/members/{member_id:int}/redemptions", opt=REDEEM, **API,
      status_code=201, summary="Redeem a reward for a member: spend points, issue a voucher")
async def api_redeem(request: Request, member_id: FromPath[int], data: JSONBody[Any]
                     ) -> Response:
    data = body_object(data)
    await _member(member_id)
    key = request.headers.get("idempotency-key")
    voucher = await rewards.redeem(request.app.state.rapport, current_actor(request),
                                   member_id, int_field(data, "reward"),
                                   key=f"redeem:{member_id}:{key}"[:160] if key else None)
    return Response(voucher_json(voucher), status_code=201)


@get("/api/v1/loyalty/vouchers/{code:str}", opt=REDEEM, **API,
     summary="Check a voucher code (a till)")
async def api_voucher(code: FromPath[str]) -> dict[str, Any]:
    row = await vouchers.find(code)
    if row is None:
        raise LoyaltyError("code", "no such voucher", status=404)
    return voucher_json(row)


@accepts(bodies.VOUCHER_USE)
@post("/api/v1/loyalty/vouchers/{code:str}/use", opt=REDEEM, **API, status_code=200,
      summary="Use a voucher once (a till)")
async def api_voucher_use(request: Request, code: FromPath[str], data: JSONBody[Any]
                          ) -> dict[str, Any]:
    """Body: ``transaction_id`` (the till's), optional ``till``. Used once: a second till
    gets 409 saying when it was used; the same transaction again gets the original answer."""
    data = body_object(data)
    row, replayed = await vouchers.use(request.app.state.rapport, code,
                                       used_ref=str(data.get("transaction_id") or ""),
                                       used_by=str(data.get("till") or "till"))
    return {**voucher_json(row), "replayed": replayed}


ROUTES = [api_rewards, api_redeem, api_voucher, api_voucher_use]
