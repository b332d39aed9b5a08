"""Who can still administer the instance, and the rule that someone always can.

An administrator is an active user whose roles grant both ``core.user.manage`` and
``core.role.manage``: with those two, every other right can be given back. A change to grants,
roles or users runs inside :func:`keeping_an_administrator`, which refuses it (rolling the
transaction back) when it would leave no active administrator where there was one.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from core.identity.roles import BUILTIN_ROLES, expand_grants
from core.identity.tables import Role, RolePermission, User, UserRole
from core.identity.users import UserError, normalise_email

if TYPE_CHECKING:
    from core.app import Rapport

ADMINISTRATION = ("core.user.manage", "core.role.manage")
LAST_ADMINISTRATOR = ("This would leave nobody able to administer Rapport (manage users and "
                      "roles). Give another active user the Administrator role first.")


class NoAdministratorLeft(UserError):
    def __init__(self) -> None:
        super().__init__("administrator", LAST_ADMINISTRATOR)


async def administrator_roles(rapport: Rapport) -> set[int]:
    """Ids of the roles whose grants include every administration permission."""
    grants: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for g in await RolePermission.select(RolePermission.role, RolePermission.permission,
                                         RolePermission.scope).run():
        grants[g["role"]].append((g["permission"], g["scope"]))
    names = list(rapport.permissions) or list(ADMINISTRATION)
    return {role for role, pairs in grants.items()
            if all(p in expand_grants(pairs, names) for p in ADMINISTRATION)}


async def active_administrators(rapport: Rapport) -> list[int]:
    """Ids of the active users who can administer, in id order."""
    roles = await administrator_roles(rapport)
    if not roles:
        return []
    rows = await UserRole.select(UserRole.user).where(
        UserRole.role.is_in(sorted(roles)) & (UserRole.user.is_active == True)  # noqa: E712
    ).run()
    return sorted({r["user"] for r in rows})


@asynccontextmanager
async def keeping_an_administrator(rapport: Rapport):
    """Use inside the change's transaction: raises :class:`NoAdministratorLeft` (so the
    transaction rolls back) if there was an active administrator before and none after."""
    had = bool(await active_administrators(rapport))
    yield
    if had and not await active_administrators(rapport):
        raise NoAdministratorLeft()


async def grant_administration(rapport: Rapport, email: str) -> list[str]:
    """The command-line rescue: make the user an active administrator, restoring the built-in
    Administrator role's ``*`` grant if it was removed. Returns what was done."""
    done: list[str] = []
    async with User._meta.db.transaction():
        user = await User.select(User.id, User.is_active).where(
            User.email == normalise_email(email)).first().run()
        if user is None:
            raise UserError("user", f"no user with email {normalise_email(email)}")
        role = await Role.select(Role.id).where(Role.key == "administrator").first().run()
        if role is None:
            spec = BUILTIN_ROLES["administrator"]
            rows = await Role.insert(Role(key="administrator", name=spec["name"],
                                          description=spec["description"], builtin=True)
                                     ).returning(Role.id).run()
            role = rows[0]
            done.append("created the Administrator role")
        if role["id"] not in await administrator_roles(rapport):
            await RolePermission.insert(RolePermission(role=role["id"], permission="*",
                                                       scope="all")).run()
            done.append("gave the Administrator role its '*' grant back")
        if not await UserRole.exists().where((UserRole.user == user["id"])
                                             & (UserRole.role == role["id"])).run():
            await UserRole.insert(UserRole(user=user["id"], role=role["id"])).run()
            done.append("gave the user the Administrator role")
        if not user["is_active"]:
            await User.update({User.is_active: True}).where(User.id == user["id"]).run()
            done.append("activated the user")
        await User.update({User.failed_logins: 0, User.locked_until: None}).where(
            User.id == user["id"]).run()  # a sign-in lockout must not outlast the rescue
    return done
