"""REST API for members and points under ``/api/v1/loyalty``: enrol, look a card up, the
ledger, purchases a shop or till reports (earning keyed by its transaction id: the same id
again returns the original result), their returns, and manual adjustments.

Errors are ``application/problem+json`` naming the field; lists page by keyset.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody, Parameter

from core.api_schemas import accepts
from core.audit import client_ip
from core.permissions import current_actor
from core.problems import bad_request, forbidden, problem
from plugins.loyalty import api_bodies as bodies
from plugins.loyalty import ledger, members, purchases, tiers
from plugins.loyalty.programs import LoyaltyError, get_program, programs

VIEW = {"permission": "loyalty.member.view"}
ENROL = {"permission": "loyalty.member.enrol"}
EARN = {"permission": "loyalty.points.earn"}
ADJUST = {"permission": "loyalty.points.adjust"}



def loyalty_error(request: Request, exc: LoyaltyError) -> Response:
    titles = {404: "Not found", 409: "Conflict"}
    return problem(exc.status, titles.get(exc.status, "Invalid request"),
                   f"{exc.field}: {exc.message}", field=exc.field)


def not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "Not found", "No such record")




API: dict[str, Any] = {
    "exception_handlers": {LoyaltyError: loyalty_error, NotFoundException: not_found,
                           PermissionDeniedException: forbidden, ClientException: bad_request},
    "tags": ["loyalty"],
}


def body_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise LoyaltyError("body", "must be a JSON object")
    return data


def int_field(data: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoyaltyError(name, "must be a whole number" if value is not None else
                           "is required")
    return value


async def member_summary(member: dict[str, Any]) -> dict[str, Any]:
    """A member as the API, the till and the portal card see it."""
    program = await get_program(member["program"])
    tier_list = await tiers.tiers_of(member["program"])
    current = next((t for t in tier_list if t["id"] == member["tier"]), None)
    step = tiers.progress(tier_list, member["tier"], member["qualifying"])
    wallet = member
    if member["pool"]:
        wallet = await members.get_member(member["pool"]) or member
    return {
        "id": member["id"], "program": member["program"], "program_name": program["name"],
        "customer": member["customer"], "card_number": member["card_number"],
        "status": member["status"], "balance": wallet["balance"], "pending": wallet["pending"],
        "pooled_with": member["pool"], "tier": current["name"] if current else None,
        "discount_percent": str(current["discount_percent"]) if current else "0",
        "free_shipping": bool(current and current["free_shipping"]),
        "qualifying": member["qualifying"],
        "next_tier": step["tier"]["name"] if step else None,
        "to_next_tier": step["missing"] if step else None,
        "referral_code": member["referral_code"], "enrolled_at": member["enrolled_at"],
        "point_value": str(program["point_value"]), "currency": program["currency"],
        # What the program counts: a stamp card's members collect stamps.
        "unit": "stamps" if program["kind"] == "stamps" else "points",
    }


def ledger_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "kind", "points", "pending", "source", "source_ref",
                                "explanation", "reason", "created_at")}


async def _member(member_id: int) -> dict[str, Any]:
    member = await members.get_member(member_id)
    if member is None:
        raise LoyaltyError("member", "no such member", status=404)
    return member


async def resolve_member(data: dict[str, Any]) -> dict[str, Any]:
    """The member a till names by ``card_number`` or an integration by ``member``."""
    if data.get("card_number"):
        member = await members.by_card(str(data["card_number"]))
        if member is None:
            raise LoyaltyError("card_number", "no member has this card", status=404)
        return member
    member_id = int_field(data, "member", required=False)
    if member_id is None:
        raise LoyaltyError("card_number", "give the member's card number (or member id)")
    return await _member(member_id)


@get("/api/v1/loyalty/programs", opt=VIEW, **API, summary="Loyalty programs")
async def api_programs() -> dict[str, Any]:
    rows = await programs()
    return {"items": [{k: r[k] for k in ("id", "name", "kind", "active", "currency",
                                         "point_value", "terms_version")} for r in rows]}


@accepts(bodies.ENROLMENT)
@post("/api/v1/loyalty/members", opt=ENROL, **API, summary="Enrol a customer",
      status_code=201)
async def api_enrol(request: Request, data: JSONBody[Any]) -> Response:
    """Body: ``program``, ``customer``, ``accept_terms`` (true: the customer accepted the
    program's terms, recorded in their consent log), optional ``referral_code``. Enrolling a
    member again returns their membership (200)."""
    data = body_object(data)
    program_id, customer_id = int_field(data, "program"), int_field(data, "customer")
    before = await members.member_of(program_id, customer_id)
    member = await members.enrol(
        request.app.state.rapport, current_actor(request), program_id, customer_id,
        via="api", accepted_terms=data.get("accept_terms") is True,
        referral_code=str(data.get("referral_code") or ""), ip=client_ip(request))
    return Response(await member_summary(member), status_code=200 if before else 201)


@get("/api/v1/loyalty/members/{member_id:int}", opt=VIEW, **API, summary="A member")
async def api_member(member_id: FromPath[int]) -> dict[str, Any]:
    return await member_summary(await _member(member_id))


@get("/api/v1/loyalty/cards/{card_number:str}", opt=VIEW, **API,
     summary="A member by card number (a till's balance lookup)")
async def api_card(card_number: FromPath[str]) -> dict[str, Any]:
    member = await members.by_card(card_number)
    if member is None:
        raise LoyaltyError("card_number", "no member has this card", status=404)
    return await member_summary(member)


@get("/api/v1/loyalty/members/{member_id:int}/ledger", opt=VIEW, **API,
     summary="A member's points history, newest first")
async def api_ledger(member_id: FromPath[int],
                     before: Annotated[int | None, Parameter(ge=1)] = None,
                     limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> dict[str, Any]:
    member = await _member(member_id)
    rows = await ledger.history(member["pool"] or member["id"], before=before, limit=limit)
    return {"items": [ledger_row(r) for r in rows],
            "next": rows[-1]["id"] if len(rows) == limit else None}


def _lines(data: dict[str, Any]) -> tuple[list[dict[str, Any]], Decimal | None]:
    """A purchase's lines, or one line of ``amount`` (net, before tax)."""
    raw = data.get("lines")
    if raw is None:
        if data.get("amount") in (None, ""):
            raise LoyaltyError("lines", "give the lines bought (or the amount)")
        raw = [{"net": data["amount"], "quantity": 1}]
    if not isinstance(raw, list) or not raw or len(raw) > 500:
        raise LoyaltyError("lines", "must be a list of 1 to 500 lines")
    lines = []
    for i, line in enumerate(raw):
        if not isinstance(line, dict):
            raise LoyaltyError(f"lines[{i}]", "must be an object")
        try:
            net = Decimal(str(line.get("net")))
            quantity = Decimal(str(line.get("quantity", 1)))
        except (InvalidOperation, ValueError):
            raise LoyaltyError(f"lines[{i}].net", "must be an amount") from None
        if not net.is_finite() or net < 0 or abs(net) > 10 ** 12:
            raise LoyaltyError(f"lines[{i}].net", "must be an amount, not negative")
        if not quantity.is_finite() or quantity <= 0:
            raise LoyaltyError(f"lines[{i}].quantity", "must be more than 0")
        lines.append({"line_id": str(line.get("line_id") or i + 1), "net": str(net),
                      "gross": str(line.get("gross") or net), "quantity": str(quantity),
                      "product_id": line.get("product_id"), "sku": str(line.get("sku") or ""),
                      "source": str(line.get("source") or "")})
    total = data.get("total")
    try:
        total_value = Decimal(str(total)) if total not in (None, "") else None
    except InvalidOperation:
        raise LoyaltyError("total", "must be an amount") from None
    return lines, total_value


@accepts(bodies.PURCHASE)
@post("/api/v1/loyalty/purchases", opt=EARN, **API, status_code=201,
      summary="Earn points for a purchase (a shop or till)")
async def api_purchase(request: Request, data: JSONBody[Any]) -> Response:
    """Body: ``card_number`` (or ``member``), ``transaction_id`` (unique per shop or till),
    ``currency``, ``lines`` (``net`` after discount before tax, ``quantity``, ``sku``,
    ``product_id``, ``line_id``) or ``amount``, optional ``total`` (paid with tax) and
    ``reference`` (shown in the reason). The same ``transaction_id`` again returns the
    original result (200, ``replayed``: true)."""
    data = body_object(data)
    member = await resolve_member(data)
    transaction = str(data.get("transaction_id") or "").strip()
    if not transaction or len(transaction) > 100:
        raise LoyaltyError("transaction_id", "is required (up to 100 characters)")
    lines, total = _lines(data)
    reference = str(data.get("reference") or transaction)[:60]
    posted = await purchases.earn_purchase(
        request.app.state.rapport, member, key=f"p{member['program']}:api:{transaction}",
        source="api", source_ref=f"api:{transaction}", reference=reference, lines=lines,
        currency=str(data.get("currency") or ""), total=total, actor=current_actor(request))
    fresh = await members.get_member(member["pool"] or member["id"])
    return Response({"transaction_id": transaction, "points": posted.row["points"],
                     "pending": posted.row["pending"],
                     "explanation": posted.row["explanation"], "ledger_id": posted.row["id"],
                     "replayed": posted.replayed, "balance": fresh["balance"]},
                    status_code=200 if posted.replayed else 201)


@accepts(bodies.RETURN)
@post("/api/v1/loyalty/purchases/{transaction_id:str}/returns", opt=EARN, **API,
      status_code=201, summary="Take back the points of returned goods")
async def api_purchase_return(request: Request, transaction_id: FromPath[str],
                              data: JSONBody[Any]) -> Response:
    """Body: ``card_number`` (or ``member``), ``return_id`` (unique per return), ``lines``
    (``line_id`` and ``quantity`` returned; absent: everything)."""
    data = body_object(data)
    member = await resolve_member(data)
    return_id = str(data.get("return_id") or "").strip()[:100]
    if not return_id:
        raise LoyaltyError("return_id", "is required")
    lines = data.get("lines")
    if lines is not None and not isinstance(lines, list):
        raise LoyaltyError("lines", "must be a list")
    key = f"p{member['program']}:api:{transaction_id}"
    posted = await purchases.reverse_purchase(
        member["id"], earn_key=key, reverse_key=f"{key}:return:{return_id}",
        source_ref=f"api:{transaction_id}", reference=transaction_id, lines=lines,
        why=f"return {return_id}", actor=current_actor(request), rapport=request.app.state.rapport)
    if posted is None:
        raise LoyaltyError("transaction_id", "no purchase with this id earned points",
                           status=404)
    return Response({"points": posted.row["points"], "explanation": posted.row["explanation"],
                     "replayed": posted.replayed}, status_code=200 if posted.replayed else 201)


@accepts(bodies.ADJUSTMENT)
@post("/api/v1/loyalty/members/{member_id:int}/adjustments", opt=ADJUST, **API,
      status_code=201, summary="Award or take off points with a reason")
async def api_adjust(request: Request, member_id: FromPath[int], data: JSONBody[Any]
                     ) -> dict[str, Any]:
    data = body_object(data)
    member = await _member(member_id)
    key = request.headers.get("idempotency-key")
    posted = await ledger.adjust(current_actor(request), member["pool"] or member["id"],
                                 int_field(data, "points"), str(data.get("reason") or ""),
                                 key=f"adjust:{member_id}:{key}"[:160] if key else None)
    return ledger_row(posted.row)


ROUTES = [api_programs, api_enrol, api_member, api_card, api_ledger, api_purchase,
          api_purchase_return, api_adjust]
