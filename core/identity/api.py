"""Identity's JSON API: who am I, and staff users for administrators."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery, JSONBody
from litestar.response import Response

from core import audit
from core.api_schemas import EMAIL, accepts, array, obj, text
from core.identity.tables import User
from core.identity.users import UserError, create_user
from core.permissions import current_actor


def problem(status: int, field: str, detail: str) -> Response:
    """A validation error as RFC 9457 problem details naming the offending field."""
    return Response(
        {"type": "about:blank", "title": "Invalid input", "status": status, "detail": detail,
         "errors": [{"field": field, "message": detail}]},
        status_code=status, media_type="application/problem+json",
    )


@get("/api/v1/me", opt={"permission": "authenticated"})
async def me(request: Request) -> dict[str, Any]:
    actor = current_actor(request)
    return {"id": actor.id, "email": actor.email, "name": actor.name,
            "permissions": dict(sorted(actor.grants.items())),
            "team_ids": sorted(actor.team_ids), "hidden_fields": sorted(actor.hidden_fields)}


@get("/api/v1/users", opt={"permission": "core.user.manage"})
async def list_users(limit: FromQuery[int] = 50, after: FromQuery[int] = 0) -> dict[str, Any]:
    limit = max(1, min(limit, 200))
    rows = await User.select(User.id, User.email, User.name, User.is_active,
                             User.last_login_at).where(User.id > after).order_by(
        User.id).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": rows[-1]["id"] if more else None}


@accepts(obj({"email": EMAIL, "name": text(200, 1), "password": text(1000, 1),
              "roles": array(text(100), 50), "teams": array(text(200), 50)},
             required=["email", "name", "password"]))
@post("/api/v1/users", opt={"permission": "core.user.manage"}, status_code=201)
async def create_user_api(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    try:
        user_id = await create_user(
            str(data.get("email", "")), str(data.get("name", "")), str(data.get("password", "")),
            roles=[str(r) for r in data.get("roles", [])],
            teams=[str(t) for t in data.get("teams", [])],
        )
    except UserError as exc:
        return problem(422, exc.field, exc.message)
    await audit.record(current_actor(request), "create", "core_user", user_id,
                       summary=f"roles {', '.join(map(str, data.get('roles', [])))}",
                       ip=audit.client_ip(request))
    return Response({"id": user_id}, status_code=201)


ROUTES = [me, list_users, create_user_api]
