"""The notification bell, the /notifications page, its live stream and the API.

Every route is the signed-in staff user's own inbox (permission ``authenticated``): a user
never reaches another user's notifications, which answer 404 like missing ones.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Redirect, ServerSentEvent, Template

from core.live import Channels, sse
from core.notifications import inbox
from core.permissions import current_actor
from core.problems import bad_request, problem

OWN = {"permission": "authenticated"}


def _is_unread_filter(value: str | None) -> bool:
    return str(value or "").lower() in {"1", "true", "yes", "on"}


# --- staff pages -------------------------------------------------------------------------------


@get("/notifications", opt=OWN, include_in_schema=False)
async def notifications_page(
    request: Request,
    before: Annotated[int | None, Parameter(gt=0)] = None,
    unread: FromQuery[str | None] = None,
) -> Template:
    """Newest first, 30 a page (keyset: ``?before=<id>``); ``?unread=1`` hides read ones."""
    actor = current_actor(request)
    unread_only = _is_unread_filter(unread)
    rows, next_before = await inbox.page(actor.id, before=before, unread_only=unread_only)
    query = [("unread", "1")] if unread_only else []
    return Template("notifications/list.html", context={
        "rows": rows, "unread_only": unread_only, "first_page": before is None,
        "unread_count": await inbox.unread_count(actor.id), "cap": inbox.UNREAD_CAP,
        "next_url": "/notifications?" + urlencode(query + [("before", next_before)])
        if next_before else None,
        "first_url": "/notifications" + ("?" + urlencode(query) if query else ""),
    })


@get("/notifications/bell", opt=OWN, include_in_schema=False)
async def bell(request: Request) -> Template:
    """The shell's bell with the unread count (loaded lazily by htmx, refreshed live)."""
    count = await inbox.unread_count(current_actor(request).id)
    return Template("notifications/_bell.html",
                    context={"count": count, "cap": inbox.UNREAD_CAP})


@get("/notifications/{notification_id:int}/open", opt=OWN, include_in_schema=False)
async def open_notification(request: Request, notification_id: FromPath[int]) -> Redirect:
    """Follow a notification's link, marking it read on the way."""
    actor = current_actor(request)
    row = await inbox.get(actor.id, notification_id)
    if row is None:
        raise NotFoundException("No such notification")
    await inbox.mark_read(request.app.state.rapport, actor.id, notification_id)
    return Redirect(inbox.safe_url(row["url"]) or "/notifications", status_code=303)


def _back(request: Request, form: Any) -> str:
    back = str(form.get("back") or "")
    return back if back.startswith("/notifications") and not back.startswith("//") \
        else "/notifications"


@post("/notifications/{notification_id:int}/read", opt=OWN, include_in_schema=False,
      status_code=303)
async def read_one(request: Request, notification_id: FromPath[int]) -> Redirect:
    actor = current_actor(request)
    if not await inbox.mark_read(request.app.state.rapport, actor.id, notification_id):
        raise NotFoundException("No such notification")
    return Redirect(_back(request, await request.form()), status_code=303)


@post("/notifications/read-all", opt=OWN, include_in_schema=False, status_code=303)
async def read_all(request: Request) -> Redirect:
    await inbox.mark_all_read(request.app.state.rapport, current_actor(request).id)
    return Redirect(_back(request, await request.form()), status_code=303)


@get("/live/notifications", opt=OWN, include_in_schema=False)
async def notifications_stream(request: Request) -> ServerSentEvent:
    """A ``change`` event whenever the user's inbox changes (new, read); no contents."""
    actor = current_actor(request)
    return sse(request, Channels(request.app.state.rapport).notifications(actor.id),
               check_each=False)


# --- API ---------------------------------------------------------------------------------------

API: dict[str, Any] = {"exception_handlers": {ClientException: bad_request},
                       "tags": ["notifications"]}


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "topic": row["topic"], "title": row["title"], "body": row["body"],
            "url": row["url"] or None, "created_at": row["created_at"],
            "read_at": row["read_at"], "read": row["read_at"] is not None}


@get("/api/v1/notifications", opt=OWN, **API, summary="List my notifications")
async def api_list(
    request: Request,
    before: Annotated[int | None, Parameter(gt=0, description="Page: ids below this")] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = inbox.PAGE_SIZE,
    unread: Annotated[bool, Parameter(description="Only unread ones")] = False,
) -> dict[str, Any]:
    """The signed-in user's notifications, newest first; ``next`` is the next page's URL."""
    actor = current_actor(request)
    rows, next_before = await inbox.page(actor.id, before=before, unread_only=unread,
                                         limit=limit)
    query = {"limit": limit, **({"unread": "true"} if unread else {})}
    return {"items": [_item(r) for r in rows],
            "unread": await inbox.unread_count(actor.id),
            "next": f"/api/v1/notifications?{urlencode({**query, 'before': next_before})}"
            if next_before else None}


@post("/api/v1/notifications/{notification_id:int}/read", opt=OWN, **API, status_code=200,
      summary="Mark one notification read")
async def api_read_one(request: Request, notification_id: FromPath[int]) -> Response:
    actor = current_actor(request)
    if not await inbox.mark_read(request.app.state.rapport, actor.id, notification_id):
        return problem(404, "Not found", "No such notification")
    return Response(_item(await inbox.get(actor.id, notification_id)))


@post("/api/v1/notifications/read", opt=OWN, **API, status_code=200,
      summary="Mark all my notifications read")
async def api_read_all(request: Request) -> dict[str, int]:
    marked = await inbox.mark_all_read(request.app.state.rapport, current_actor(request).id)
    return {"marked": marked}


ROUTES = [notifications_page, bell, open_notification, read_one, read_all,
          notifications_stream, api_list, api_read_one, api_read_all]
