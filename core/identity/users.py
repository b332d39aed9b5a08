"""Creating users and turning a user into the :class:`Actor` a request acts as."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.identity.passwords import hash_password, password_problem
from core.identity.roles import expand_grants
from core.identity.tables import (
    FieldRule,
    Role,
    RolePermission,
    Team,
    TeamMember,
    User,
    UserRole,
)
from core.permissions import Actor

if TYPE_CHECKING:
    from core.app import Rapport


class UserError(ValueError):
    """Bad input for a user; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    email: str,
    name: str,
    password: str,
    roles: list[str] = (),
    teams: list[str] = (),
) -> int:
    """Create an active staff user with the given role keys and team names; return its id."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise UserError("email", "is not an email address")
    if problem := password_problem(password):
        raise UserError("password", problem)
    role_rows = await Role.select(Role.id, Role.key).where(Role.key.is_in(list(roles) or [""])).run()
    unknown = set(roles) - {r["key"] for r in role_rows}
    if unknown:
        known = [r["key"] for r in await Role.select(Role.key).order_by(Role.key).run()]
        raise UserError("role", f"unknown role {sorted(unknown)[0]!r}; roles: {', '.join(known)}")
    team_rows = await Team.select(Team.id, Team.name).where(Team.name.is_in(list(teams) or [""])).run()
    missing = set(teams) - {t["name"] for t in team_rows}
    if missing:
        raise UserError("team", f"unknown team {sorted(missing)[0]!r}")
    async with User._meta.db.transaction():
        if await User.exists().where(User.email == email).run():
            raise UserError("email", f"a user with email {email} already exists")
        rows = await User.insert(
            User(email=email, name=name.strip() or email, password_hash=hash_password(password))
        ).returning(User.id).run()
        user_id = rows[0]["id"]
        if role_rows:
            await UserRole.insert(*[UserRole(user=user_id, role=r["id"]) for r in role_rows]).run()
        if team_rows:
            await TeamMember.insert(*[TeamMember(user=user_id, team=t["id"]) for t in team_rows]).run()
    return user_id


async def create_team(name: str, parent: str | None = None) -> int:
    parent_id = None
    if parent is not None:
        found = await Team.select(Team.id).where(Team.name == parent).first().run()
        if found is None:
            raise UserError("parent", f"unknown team {parent!r}")
        parent_id = found["id"]
    rows = await Team.insert(Team(name=name, parent=parent_id)).returning(Team.id).run()
    return rows[0]["id"]


def teams_below(team_ids: set[int], parents: dict[int, int | None]) -> frozenset[int]:
    """The given teams and every team nested under them, at any depth."""
    children: dict[int, list[int]] = {}
    for team, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(team)
    result, stack = set(), list(team_ids)
    while stack:
        team = stack.pop()
        if team not in result:
            result.add(team)
            stack.extend(children.get(team, []))
    return frozenset(result)


async def load_actor(rapport: Rapport, user_id: int) -> Actor | None:
    """The staff actor for an active user, with grants expanded and teams resolved."""
    user = await User.select(User.id, User.name, User.email, User.is_active, User.time_zone,
                             User.locale).where(User.id == user_id).first().run()
    if user is None or not user["is_active"]:
        return None
    grants = await RolePermission.select(RolePermission.permission, RolePermission.scope).where(
        RolePermission.role.is_in(
            UserRole.select(UserRole.role).where(UserRole.user == user_id)
        )
    ).run()
    member_of = await TeamMember.select(TeamMember.team).where(TeamMember.user == user_id).run()
    team_ids: frozenset[int] = frozenset()
    if member_of:
        parents = {t["id"]: t["parent"] for t in await Team.select(Team.id, Team.parent).run()}
        team_ids = teams_below({m["team"] for m in member_of}, parents)
    hidden = await FieldRule.select(FieldRule.record_type, FieldRule.field).where(
        FieldRule.role.is_in(UserRole.select(UserRole.role).where(UserRole.user == user_id))
    ).run()
    return Actor(
        kind="staff",
        id=user["id"],
        name=user["name"],
        email=user["email"],
        grants=expand_grants(((g["permission"], g["scope"]) for g in grants), rapport.permissions),
        team_ids=team_ids,
        # A field hidden by ANY of the user's roles stays hidden (see docs/identity.md).
        hidden_fields=frozenset(f"{h['record_type']}.{h['field']}" for h in hidden),
        time_zone=user["time_zone"] or "", locale=user["locale"] or "",
    )


async def set_password(user_id: int, password: str) -> None:
    """Change a user's password and end every session they have (all devices sign in again);
    a lockout is lifted, since whoever sets the password has proved who they are."""
    if problem := password_problem(password):
        raise UserError("password", problem)
    from core.identity.sessions import end_all_sessions

    async with User._meta.db.transaction():
        await User.update({User.password_hash: hash_password(password), User.failed_logins: 0,
                           User.locked_until: None}).where(User.id == user_id).run()
        await end_all_sessions(user_id)
