"""REST API for interactions and follow-ups: /api/v1/interactions, /api/v1/follow-ups.

Lists page by keyset (``?after=<cursor>``, ``?limit=`` up to 200). ``POST`` answers 201 for a
new interaction and 200 when its ``client_id`` was recorded before (the stored row, so a
device can replay its outbox safely). Errors are ``application/problem+json`` naming the
field; an interaction outside the caller's scope answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, patch, post
from litestar.exceptions import ClientException
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from core.api_schemas import BOOLEAN, COUNT, DATE, DATETIME, ID, accepts, array, nullable, obj, text
from core.audit import client_ip
from core.interactions import listing, service
from core.interactions.service import InteractionError, InteractionNotFound
from core.permissions import current_actor
from core.problems import bad_request, problem

CREATE_FIELDS = ("customer_id", "channel", "direction", "subject", "notes", "purpose",
                 "outcome", "occurred_at", "duration_seconds", "participants", "followup_due",
                 "followup_assignee", "followup_note", "plugin", "plugin_record", "client_id",
                 "visible_in_portal")


def interaction_error(request: Request, exc: InteractionError) -> Response:
    return problem(422, "Invalid interaction", f"{exc.field}: {exc.message}", field=exc.field,
                   errors=exc.errors)


def not_found(request: Request, exc: InteractionNotFound) -> Response:
    return problem(404, "Not found", "No such interaction")


API: dict[str, Any] = {
    "exception_handlers": {InteractionError: interaction_error, InteractionNotFound: not_found,
                           ClientException: bad_request},
    "tags": ["interactions"],
}



def serialise(row: dict[str, Any], participants: list[int] | None = None) -> dict[str, Any]:
    return {
        "id": row["id"], "customer_id": row["customer"],
        "customer_name": row.get("customer.name"), "channel": row["channel"],
        "direction": row["direction"], "subject": row["subject"], "notes": row["notes"],
        "purpose": row["purpose"], "outcome": row["outcome"],
        "occurred_at": row["occurred_at"], "duration_seconds": row["duration_seconds"],
        "user_id": row["user"], "user_name": row.get("user.name"), "plugin": row["plugin"],
        "plugin_record": row["plugin_record"], "client_id": row["client_id"],
        "visible_in_portal": row["visible_in_portal"],
        "participants": participants if participants is not None else [],
        "followup": None if row["followup_due"] is None else {
            "due": row["followup_due"], "assignee_id": row["followup_assignee"],
            "done": row["followup_done"], "note": row["followup_note"]},
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "url": f"/api/v1/interactions/{row['id']}",
    }


async def _serialise_many(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    involved = await service.participants_of([r["id"] for r in rows])
    return [serialise(r, involved.get(r["id"], [])) for r in rows]


@get("/api/v1/interactions", opt={"permission": "core.interaction.view"}, **API,
     summary="List interactions")
async def list_interactions(
    request: Request,
    customer: Annotated[int | None, Parameter(description="Involving this customer")] = None,
    channel: Annotated[str | None, Parameter(description="call, email, meeting, ...")] = None,
    direction: Annotated[str | None, Parameter(description="inbound, outbound or none")] = None,
    user: Annotated[int | None, Parameter(description="Recorded by this user id")] = None,
    outcome: Annotated[str | None, QueryParameter(description="Outcome recorded")] = None,
    from_: Annotated[str | None, QueryParameter(name="from", description="From (ISO date)")] = None,
    to: Annotated[str | None, Parameter(description="Until (ISO date, inclusive)")] = None,
    order: Annotated[str | None, Parameter(description="newest (default) or oldest first")
                     ] = None,
    after: Annotated[str | None, Parameter(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Parameter(ge=1, le=listing.MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """Newest first (``order=oldest``: oldest first); follow ``next`` (a cursor for
    ``after``) until it is ``null``."""
    filters = listing.Filters.from_params(request.query_params)
    rows, next_cursor = await listing.page(request.app.state.rapport, current_actor(request),
                                           filters, after=after or "", limit=limit)
    return {"data": await _serialise_many(rows), "next": next_cursor}


async def _joined(request: Request, interaction_id: int) -> dict[str, Any]:
    from core.interactions.tables import Interaction
    from core.permissions import scoped

    query = scoped(Interaction.select(*listing.COLUMNS).where(Interaction.id == interaction_id),
                   request.app.state.rapport, current_actor(request), "core.interaction.view",
                   Interaction)
    row = await query.first().run()
    if row is None:
        raise InteractionNotFound(f"interaction {interaction_id} does not exist")
    return row


@get("/api/v1/interactions/{interaction_id:int}", opt={"permission": "core.interaction.view"},
     **API, summary="Get an interaction")
async def get_interaction(request: Request, interaction_id: FromPath[int]) -> dict[str, Any]:
    return (await _serialise_many([await _joined(request, interaction_id)]))[0]


_WHEN = nullable({"anyOf": [DATETIME, DATE], "description": "a date or a date and time "
                                                             "(ISO 8601)"})
_EDITABLE = {
    "channel": text(20), "direction": nullable(text(20)), "subject": nullable(text(300)),
    "notes": nullable(text(20000)), "purpose": nullable(text(200)),
    "outcome": nullable(text(200)), "occurred_at": _WHEN,
    "duration_seconds": nullable({"anyOf": [COUNT, text(12)]}),
    "followup_due": _WHEN, "followup_assignee": nullable(ID),
    "followup_note": nullable(text(2000)), "visible_in_portal": nullable(BOOLEAN),
}


@accepts(obj({**_EDITABLE, "customer_id": ID, "participants": nullable(array(ID, 100)),
              "plugin": nullable(text(100)), "plugin_record": nullable({"anyOf": [
                  text(100), {"type": "integer"}]}), "client_id": nullable(text(100))},
             required=["customer_id", "channel"]))
@post("/api/v1/interactions", opt={"permission": "core.interaction.create"}, **API,
      summary="Record an interaction")
async def create_interaction(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
    """Body: ``customer_id`` and ``channel`` (required), ``direction``, ``subject``, ``notes``,
    ``purpose``, ``outcome``, ``occurred_at``, ``duration_seconds``, ``participants`` (ids),
    ``followup_due``, ``followup_assignee``, ``followup_note``, ``client_id`` (makes retries
    safe: a known one answers 200 with the stored interaction)."""
    if not isinstance(data, dict):
        raise InteractionError({"body": "must be a JSON object"})
    unknown = sorted(set(data) - set(CREATE_FIELDS))
    if unknown:
        raise InteractionError({name: "is not a field of an interaction" for name in unknown})
    participants = data.get("participants") or []
    if not isinstance(participants, list):
        raise InteractionError({"participants": "must be a list of customer ids"})
    values = {k: v for k, v in data.items() if k != "participants"}
    values.setdefault("customer_id", None)
    values.setdefault("channel", "")
    row, created = await service.record_interaction(
        request.app.state.rapport, current_actor(request), participants=participants,
        ip=client_ip(request), **values)
    body = (await _serialise_many([row]))[0]
    return Response(body, status_code=201 if created else 200,
                    headers={"location": f"/api/v1/interactions/{row['id']}"})


@accepts(obj({**_EDITABLE, "followup_done": nullable(BOOLEAN)}))
@patch("/api/v1/interactions/{interaction_id:int}", opt={"permission": "core.interaction.edit"},
       **API, summary="Change an interaction")
async def update_interaction(request: Request, interaction_id: FromPath[int],
                             data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """Change the fields given (not the customer, the recorder or the recording plugin)."""
    if not isinstance(data, dict):
        raise InteractionError({"body": "must be a JSON object"})
    await service.update_interaction(request.app.state.rapport, current_actor(request),
                                     interaction_id, data, ip=client_ip(request))
    return (await _serialise_many([await _joined(request, interaction_id)]))[0]


@get("/api/v1/follow-ups", opt={"permission": "core.interaction.view"}, **API,
     summary="My open follow-ups")
async def my_followups(request: Request) -> dict[str, Any]:
    """The caller's open follow-ups: ``overdue``, ``today`` and ``upcoming`` (two weeks)."""
    day = await service.my_followups(current_actor(request).id)
    return {key: [{"id": r["id"], "customer_id": r["customer"],
                   "customer_name": r["customer.name"], "channel": r["channel"],
                   "subject": r["subject"], "due": r["followup_due"],
                   "note": r["followup_note"], "url": f"/api/v1/interactions/{r['id']}"}
                  for r in rows] for key, rows in day.items()}


@accepts(nullable(obj({"done": nullable(BOOLEAN), "note": nullable(text(2000))})))
@post("/api/v1/follow-ups/{interaction_id:int}/complete",
      opt={"permission": "core.interaction.view", "write_permission": "core.interaction.edit"},
      **API, summary="Complete a follow-up",
      status_code=200)
async def complete_followup(request: Request, interaction_id: FromPath[int],
                            data: JSONBody[dict[str, Any] | None] = None) -> dict[str, Any]:
    """Mark done (``{"done": false}`` reopens; ``note`` replaces the follow-up note). The
    assignee always may; others need edit rights on the interaction."""
    body = data if isinstance(data, dict) else {}
    await service.complete_followup(request.app.state.rapport, current_actor(request),
                                    interaction_id, done=bool(body.get("done", True)),
                                    note=body.get("note"), ip=client_ip(request))
    return (await _serialise_many([await _joined(request, interaction_id)]))[0]


ROUTES = [list_interactions, get_interaction, create_interaction, update_interaction,
          my_followups, complete_followup]
