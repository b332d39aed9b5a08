"""References a user sets must be within their reach.

Every foreign key a person sets on a record (its owner, its team, the customer, deal or quote
it belongs to) is checked here before it is written, against what that person may see or
assign, so nobody can file a record under someone else's name or team, or attach it to a
record they cannot open. Core and plugins call these from their domain functions (never only
from a page), and turn :class:`ReferenceRefused` into their own field error:

    try:
        owner = await references.owner(rapport, actor, "owner", data.get("owner"),
                                       "sales.quote.create")
        deal = await references.record(rapport, actor, "opportunity", Opportunity,
                                       data.get("opportunity"), "sales.opportunity.view")
    except references.ReferenceRefused as exc:
        raise QuoteError(exc.field, exc.message) from None

The rules follow the scope of the permission the person acts under (docs/permissions.md):

- **records** (:func:`record`): the row must exist and pass :func:`core.permissions.row_filter`
  for the viewing permission named; one that exists out of reach is answered like one that does
  not exist, so the answer reveals nothing;
- **owners** (:func:`owner`): at scope ``all`` any active user; at ``team`` the person and the
  active members of their teams (and the teams below them); at ``own`` only themselves;
- **teams** (:func:`team`): at scope ``all`` any team; otherwise one of the person's own teams.

A value equal to ``current`` (the record's value before the change) always passes, so saving
a record one may edit never fails over a reference someone else set. Requests not made by a
staff user (the system, a job, a portal customer's request handled by a domain function) are
not limited here: their callers choose the values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.permissions import Actor, scoped

if TYPE_CHECKING:
    from piccolo.table import Table

    from core.app import Rapport

_UNSET = object()


class ReferenceRefused(ValueError):
    """A reference the person may not set; ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _id(field: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReferenceRefused(field, "must be a record id")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ReferenceRefused(field, "must be a record id") from None


def _limited(actor: Actor | None) -> bool:
    return actor is not None and actor.kind == "staff"


def _scope(actor: Actor, permission: str) -> str:
    return actor.grants.get(permission, "own") if actor.can(permission) else "none"


async def record(rapport: Rapport, actor: Actor | None, field: str, table: type[Table],
                 value: Any, permission: str, *, current: Any = _UNSET,
                 label: str | None = None) -> int | None:
    """The id in ``value`` when ``actor`` may see that row of ``table`` with ``permission``
    (``None`` for no value); raises :class:`ReferenceRefused` otherwise."""
    record_id = _id(field, value)
    if record_id is None or (current is not _UNSET and record_id == current):
        return record_id
    query = table.exists().where(table._meta.primary_key == record_id)
    if _limited(actor):
        if not actor.can(permission):
            raise ReferenceRefused(field, f"you may not choose a {label or field}")
        query = scoped(query, rapport, actor, permission, table)
    if not await query.run():
        raise ReferenceRefused(field, f"no such {label or field.replace('_', ' ')}")
    return record_id


async def owner(rapport: Rapport, actor: Actor | None, field: str, value: Any,
                permission: str, *, current: Any = _UNSET) -> int | None:
    """The user id in ``value`` when ``actor`` may make that user a record's owner under
    ``permission`` (see the module doc); raises :class:`ReferenceRefused` otherwise."""
    from core.identity.tables import TeamMember, User

    user_id = _id(field, value)
    if user_id is None or (current is not _UNSET and user_id == current):
        return user_id
    query = User.exists().where((User.id == user_id) & (User.is_active == True))  # noqa: E712
    if _limited(actor):
        scope = _scope(actor, permission)
        if scope == "team":
            members = TeamMember.select(TeamMember.user).where(
                TeamMember.team.is_in(sorted(actor.team_ids) or [0]))
            query = query.where(User.id.is_in(members) | (User.id == actor.id))
        elif scope != "all":
            query = query.where(User.id == actor.id)
    if not await query.run():
        raise ReferenceRefused(field, "choose someone you may give records to"
                               if _limited(actor) else "no such active user")
    return user_id


async def team(rapport: Rapport, actor: Actor | None, field: str, value: Any,
               permission: str, *, current: Any = _UNSET) -> int | None:
    """The team id in ``value`` when ``actor`` may put a record in that team under
    ``permission`` (any team at scope ``all``, else one of their own); raises
    :class:`ReferenceRefused` otherwise."""
    from core.identity.tables import Team

    team_id = _id(field, value)
    if team_id is None or (current is not _UNSET and team_id == current):
        return team_id
    if _limited(actor) and _scope(actor, permission) != "all" and \
            team_id not in actor.team_ids:
        raise ReferenceRefused(field, "choose one of your teams")
    if not await Team.exists().where(Team.id == team_id).run():
        raise ReferenceRefused(field, "no such team")
    return team_id
