"""Administration pages: staff users, teams, roles, the role-permission matrix and field rules.

Every change is audited (``create``/``update`` on users and teams, ``permission_change`` for
grants, ``field_rule_change`` for field rules), with before and after values.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from core import audit
from core.audit import client_ip
from core.identity import lockout
from core.identity.administrators import NoAdministratorLeft, keeping_an_administrator
from core.identity.roles import expand_grants
from core.identity.sessions import end_all_sessions
from core.identity.tables import (
    FieldRule,
    Role,
    RolePermission,
    Team,
    TeamMember,
    User,
    UserRole,
)
from core.identity.users import UserError, create_team, create_user
from core.permissions import current_actor

USERS = {"permission": "core.user.manage"}
ROLES = {"permission": "core.role.manage"}
PAGE_SIZE = 50
SCOPES = ("none", "own", "team", "all")



async def _roles() -> list[dict]:
    return await Role.select(Role.id, Role.key, Role.name, Role.description, Role.builtin
                             ).order_by(Role.id).run()


async def _teams() -> list[dict]:
    return await Team.select(Team.id, Team.name, Team.parent).order_by(Team.name).run()


# --- users -----------------------------------------------------------------------------------


@get("/admin/users", name="admin-users", opt=USERS)
async def users_page(after: FromQuery[int] = 0, q: FromQuery[str] = "") -> Template:
    query = User.select(User.id, User.email, User.name, User.is_active, User.last_login_at,
                        User.locked_until).where(User.id > after)
    if q.strip():
        query = query.where(User.email.ilike(f"%{q.strip().lower()}%")
                            | User.name.ilike(f"%{q.strip()}%"))
    rows = await query.order_by(User.id).limit(PAGE_SIZE + 1).run()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    roles_of: dict[int, list[str]] = defaultdict(list)
    if rows:
        for link in await UserRole.select(UserRole.user, UserRole.role.name).where(
                UserRole.user.is_in([r["id"] for r in rows])).run():
            roles_of[link["user"]].append(link["role.name"])
    return Template("admin/users.html", context={
        "users": rows, "roles_of": roles_of, "q": q, "now": lockout.now(),
        "next_after": rows[-1]["id"] if more else None, "after": after})


async def _user_form(user: dict | None, errors: dict | None = None, status: int = 200,
                     form: dict | None = None) -> Template:
    role_ids: set[int] = set()
    team_ids: set[int] = set()
    if user is not None:
        role_ids = {r["role"] for r in await UserRole.select(UserRole.role).where(
            UserRole.user == user["id"]).run()}
        team_ids = {t["team"] for t in await TeamMember.select(TeamMember.team).where(
            TeamMember.user == user["id"]).run()}
    locked_until = (user or {}).get("locked_until")
    return Template("admin/user_form.html", status_code=status, context={
        "user": user, "roles": await _roles(), "teams": await _teams(), "role_ids": role_ids,
        "team_ids": team_ids, "errors": errors or {}, "form": form or {},
        "locked_until": locked_until if locked_until and locked_until > lockout.now() else None})


@get("/admin/users/new", opt=USERS)
async def new_user_page() -> Template:
    return await _user_form(None)


@post("/admin/users/new", opt=USERS, status_code=303)
async def create_user_page(request: Request) -> Response:
    form = await request.form()
    role_ids = [int(v) for v in form.getall("roles", []) if v.isdigit()]
    team_ids = [int(v) for v in form.getall("teams", []) if v.isdigit()]
    role_keys = [r["key"] for r in await _roles() if r["id"] in role_ids]
    team_names = [t["name"] for t in await _teams() if t["id"] in team_ids]
    try:
        user_id = await create_user(form.get("email", ""), form.get("name", ""),
                                    form.get("password", ""), roles=role_keys, teams=team_names)
    except UserError as exc:
        return await _user_form(None, {exc.field: exc.message}, 400, dict(form))
    await audit.record(current_actor(request), "create", "core_user", user_id,
                       {"email": [None, form.get("email", "")], "roles": [None, role_keys],
                        "teams": [None, team_names]}, ip=client_ip(request))
    return Redirect(f"/admin/users/{user_id}?saved=1", status_code=303)


async def _user(user_id: int) -> dict:
    row = await User.select(User.id, User.email, User.name, User.is_active, User.locked_until,
                            User.totp_enabled).where(User.id == user_id).first().run()
    if row is None:
        raise NotFoundException("no such user")
    return row


@get("/admin/users/{user_id:int}", opt=USERS)
async def user_page(user_id: FromPath[int]) -> Template:
    return await _user_form(await _user(user_id))


@post("/admin/users/{user_id:int}", opt=USERS, status_code=303)
async def update_user_page(request: Request, user_id: FromPath[int]) -> Response:
    actor = current_actor(request)
    user = await _user(user_id)
    form = await request.form()
    name = (form.get("name") or "").strip()
    active = form.get("is_active") == "on"
    if not name:
        return await _user_form(user, {"name": "Enter a name."}, 400)
    if user_id == actor.id and not active:
        return await _user_form(user, {"is_active": "You cannot deactivate yourself."}, 400)
    roles = {r["id"]: r["key"] for r in await _roles()}
    teams = {t["id"]: t["name"] for t in await _teams()}
    new_roles = {int(v) for v in form.getall("roles", []) if v.isdigit() and int(v) in roles}
    new_teams = {int(v) for v in form.getall("teams", []) if v.isdigit() and int(v) in teams}
    try:
        await _save_user(request, actor, user, name, active, roles, teams, new_roles, new_teams)
    except NoAdministratorLeft as exc:
        return await _user_form(user, {"role" if active else "is_active": exc.message}, 409)
    return Redirect(f"/admin/users/{user_id}?saved=1", status_code=303)


async def _save_user(request: Request, actor, user: dict, name: str, active: bool,
                     roles: dict, teams: dict, new_roles: set[int], new_teams: set[int]) -> None:
    user_id = user["id"]
    async with User._meta.db.transaction(), keeping_an_administrator(request.app.state.rapport):
        old_roles = {r["role"] for r in await UserRole.select(UserRole.role).where(
            UserRole.user == user_id).run()}
        old_teams = {t["team"] for t in await TeamMember.select(TeamMember.team).where(
            TeamMember.user == user_id).run()}
        await User.update({User.name: name, User.is_active: active}).where(
            User.id == user_id).run()
        if new_roles != old_roles:
            await UserRole.delete().where(UserRole.user == user_id).run()
            if new_roles:
                await UserRole.insert(*[UserRole(user=user_id, role=r) for r in new_roles]).run()
        if new_teams != old_teams:
            await TeamMember.delete().where(TeamMember.user == user_id).run()
            if new_teams:
                await TeamMember.insert(*[TeamMember(user=user_id, team=t)
                                          for t in new_teams]).run()
        if not active:
            await end_all_sessions(user_id)
        changes = audit.diff(
            {"name": user["name"], "is_active": user["is_active"],
             "roles": sorted(roles[r] for r in old_roles if r in roles),
             "teams": sorted(teams[t] for t in old_teams if t in teams)},
            {"name": name, "is_active": active, "roles": sorted(roles[r] for r in new_roles),
             "teams": sorted(teams[t] for t in new_teams)})
        if changes:
            action = "permission_change" if "roles" in changes else "update"
            await audit.record(actor, action, "core_user", user_id, changes, ip=client_ip(request))


@post("/admin/users/{user_id:int}/unlock", opt=USERS, status_code=303)
async def unlock_user(request: Request, user_id: FromPath[int]) -> Response:
    """Lift a sign-in lockout now (audited as ``unlock``)."""
    await _user(user_id)
    unlocked = await lockout.unlock(current_actor(request), user_id, ip=client_ip(request))
    return Redirect(f"/admin/users/{user_id}?{'unlocked' if unlocked else 'not_locked'}=1",
                    status_code=303)


# --- teams -----------------------------------------------------------------------------------


def _team_tree(teams: list[dict]) -> list[tuple[int, dict]]:
    """Teams in tree order with their depth, for an indented list."""
    children: dict[int | None, list[dict]] = defaultdict(list)
    for team in teams:
        children[team["parent"]].append(team)
    ordered: list[tuple[int, dict]] = []

    def walk(parent: int | None, depth: int) -> None:
        for team in children.get(parent, []):
            ordered.append((depth, team))
            walk(team["id"], depth + 1)

    walk(None, 0)
    return ordered


@get("/admin/teams", opt=USERS)
async def teams_page() -> Template:
    teams = await _teams()
    return Template("admin/teams.html", context={"tree": _team_tree(teams), "teams": teams,
                                                 "errors": {}, "form": {}})


@post("/admin/teams", opt=USERS, status_code=303)
async def create_team_page(request: Request) -> Response:
    form = await request.form()
    name = (form.get("name") or "").strip()
    parent_id = form.get("parent") or ""
    teams = await _teams()
    by_id = {str(t["id"]): t["name"] for t in teams}
    errors = {}
    if not name:
        errors["name"] = "Enter a team name."
    elif any(t["name"] == name for t in teams):
        errors["name"] = "A team with this name exists."
    if errors:
        return Template("admin/teams.html", status_code=400, context={
            "tree": _team_tree(teams), "teams": teams, "errors": errors, "form": dict(form)})
    team_id = await create_team(name, by_id.get(parent_id))
    await audit.record(current_actor(request), "create", "core_team", team_id,
                       {"name": [None, name], "parent": [None, by_id.get(parent_id)]},
                       ip=client_ip(request))
    return Redirect("/admin/teams", status_code=303)


# --- roles and the matrix --------------------------------------------------------------------


@get("/admin/roles", name="admin-roles", opt=ROLES)
async def roles_page() -> Template:
    return Template("admin/roles.html", context={"roles": await _roles(), "errors": {},
                                                 "form": {}})


@post("/admin/roles", opt=ROLES, status_code=303)
async def create_role_page(request: Request) -> Response:
    form = await request.form()
    key = (form.get("key") or "").strip().lower()
    name = (form.get("name") or "").strip()
    errors = {}
    if not key or not key.replace("_", "").isalnum() or not key[0].isalpha():
        errors["key"] = "Use lower-case letters, digits and underscores, starting with a letter."
    elif await Role.exists().where(Role.key == key).run():
        errors["key"] = "A role with this key exists."
    if not name:
        errors["name"] = "Enter a name."
    if errors:
        return Template("admin/roles.html", status_code=400, context={
            "roles": await _roles(), "errors": errors, "form": dict(form)})
    rows = await Role.insert(Role(key=key, name=name, description=form.get("description", ""),
                                  builtin=False)).returning(Role.id).run()
    await audit.record(current_actor(request), "create", "core_role", rows[0]["id"],
                       {"key": [None, key], "name": [None, name]}, ip=client_ip(request))
    return Redirect("/admin/roles/matrix", status_code=303)


def _group(name: str) -> str:
    return name.rsplit(".", 1)[0]


@get("/admin/roles/matrix", opt=ROLES)
async def matrix_page(request: Request) -> Template:
    return await _matrix(request)


async def _matrix(request: Request, error: str = "") -> Template:
    rapport = request.app.state.rapport
    roles = await _roles()
    grants = await RolePermission.select(RolePermission.role, RolePermission.permission,
                                         RolePermission.scope).run()
    explicit: dict[tuple[int, str], str] = {}
    patterns: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for g in grants:
        if any(ch in g["permission"] for ch in "*?["):
            patterns[g["role"]].append((g["permission"], g["scope"]))
        else:
            explicit[(g["role"], g["permission"])] = g["scope"]
    effective = {r["id"]: expand_grants(patterns[r["id"]], rapport.permissions) for r in roles}
    groups: dict[str, list] = defaultdict(list)
    for name, permission in sorted(rapport.permissions.items()):
        groups[_group(name)].append(permission)
    return Template("admin/matrix.html", context={
        "roles": roles, "groups": sorted(groups.items()), "explicit": explicit,
        "patterns": patterns, "effective": effective, "scopes": SCOPES,
        "saved": request.query_params.get("saved"), "error": error},
        status_code=409 if error else 200)


@post("/admin/roles/matrix", opt=ROLES, status_code=303)
async def save_matrix(request: Request) -> Response:
    """Cells are named ``grant:<role id>:<permission>``; only exact-name grants change here,
    pattern grants are edited on the role's page."""
    rapport = request.app.state.rapport
    actor = current_actor(request)
    form = await request.form()
    role_ids = {r["id"] for r in await _roles()}
    wanted: dict[tuple[int, str], str] = {}
    for field_name, value in form.items():
        if not field_name.startswith("grant:"):
            continue
        _, role_id, permission = field_name.split(":", 2)
        if (role_id.isdigit() and int(role_id) in role_ids and permission in rapport.permissions
                and value in SCOPES):
            wanted[(int(role_id), permission)] = value
    try:
        await _save_matrix(request, actor, wanted)
    except NoAdministratorLeft as exc:
        return await _matrix(request, error=exc.message)
    return Redirect("/admin/roles/matrix?saved=1", status_code=303)


async def _save_matrix(request: Request, actor, wanted: dict[tuple[int, str], str]) -> None:
    async with RolePermission._meta.db.transaction(), \
            keeping_an_administrator(request.app.state.rapport):
        current = {(g["role"], g["permission"]): (g["id"], g["scope"])
                   for g in await RolePermission.select().run()}
        for (role_id, permission), scope in sorted(wanted.items()):
            before = current.get((role_id, permission))
            old_scope = before[1] if before else "none"
            if old_scope == scope:
                continue
            if before:
                await RolePermission.delete().where(RolePermission.id == before[0]).run()
            if scope != "none":
                await RolePermission.insert(RolePermission(role=role_id, permission=permission,
                                                           scope=scope)).run()
            await audit.record(actor, "permission_change", "core_role", role_id,
                               {permission: [old_scope, scope]}, ip=client_ip(request))


# --- one role: pattern grants and field rules ------------------------------------------------


def _fields_by_table(rapport) -> list[tuple[str, list[str]]]:
    """Every table's fields (except keys and secrets), for the field-rule editor."""
    tables = []
    for app in rapport.piccolo_apps():
        for table in app.table_classes:
            fields = [c._meta.name for c in table._meta.columns
                      if not c._meta.primary_key and not getattr(c._meta, "secret", False)]
            tables.append((table._meta.tablename, fields))
    return sorted(tables)


async def _role(role_id: int) -> dict:
    row = await Role.select().where(Role.id == role_id).first().run()
    if row is None:
        raise NotFoundException("no such role")
    return row


async def _role_page(request: Request, role: dict, errors: dict | None = None,
                     status: int = 200) -> Template:
    rapport = request.app.state.rapport
    grants = await RolePermission.select().where(RolePermission.role == role["id"]).order_by(
        RolePermission.permission).run()
    hidden = {f"{r['record_type']}.{r['field']}" for r in await FieldRule.select().where(
        FieldRule.role == role["id"]).run()}
    return Template("admin/role.html", status_code=status, context={
        "role": role, "grants": grants, "hidden": hidden,
        "hidden_tables": {key.split(".", 1)[0] for key in hidden}, "scopes": SCOPES[1:],
        "tables": _fields_by_table(rapport), "errors": errors or {},
        "saved": request.query_params.get("saved")})


@get("/admin/roles/{role_id:int}", opt=ROLES)
async def role_page(request: Request, role_id: FromPath[int]) -> Template:
    return await _role_page(request, await _role(role_id))


@post("/admin/roles/{role_id:int}/grants", opt=ROLES, status_code=303)
async def add_grant(request: Request, role_id: FromPath[int]) -> Response:
    """Add (or widen/narrow) a grant by name or pattern, e.g. ``sales.*`` at ``team``."""
    from fnmatch import fnmatchcase

    rapport = request.app.state.rapport
    role = await _role(role_id)
    form = await request.form()
    pattern = (form.get("permission") or "").strip()
    scope = form.get("scope", "all")
    if scope not in SCOPES[1:]:
        return await _role_page(request, role, {"scope": "Choose own, team or all."}, 400)
    if not pattern or not any(fnmatchcase(n, pattern) for n in rapport.permissions):
        return await _role_page(request, role, {"permission": f"{pattern!r} matches no "
                                                "permission."}, 400)
    try:
        async with RolePermission._meta.db.transaction(), keeping_an_administrator(rapport):
            await _replace_grant(request, role_id, pattern, scope)
    except NoAdministratorLeft as exc:
        return await _role_page(request, role, {"permission": exc.message}, 409)
    return Redirect(f"/admin/roles/{role_id}?saved=1", status_code=303)


async def _replace_grant(request: Request, role_id: int, pattern: str, scope: str) -> None:
    old = await RolePermission.select().where((RolePermission.role == role_id) & (
        RolePermission.permission == pattern)).first().run()
    await RolePermission.delete().where((RolePermission.role == role_id) & (
        RolePermission.permission == pattern)).run()
    await RolePermission.insert(RolePermission(role=role_id, permission=pattern,
                                               scope=scope)).run()
    await audit.record(current_actor(request), "permission_change", "core_role", role_id,
                       {pattern: [old["scope"] if old else "none", scope]}, ip=client_ip(request))


@post("/admin/roles/{role_id:int}/grants/{grant_id:int}/delete", opt=ROLES, status_code=303)
async def remove_grant(request: Request, role_id: FromPath[int], grant_id: FromPath[int]) -> Response:
    old = await RolePermission.select().where((RolePermission.id == grant_id) & (
        RolePermission.role == role_id)).first().run()
    if old is None:
        raise NotFoundException("no such grant")
    try:
        async with RolePermission._meta.db.transaction(), \
                keeping_an_administrator(request.app.state.rapport):
            await RolePermission.delete().where(RolePermission.id == grant_id).run()
            await audit.record(current_actor(request), "permission_change", "core_role",
                               role_id, {old["permission"]: [old["scope"], "none"]},
                               ip=client_ip(request))
    except NoAdministratorLeft as exc:
        return await _role_page(request, await _role(role_id), {"permission": exc.message}, 409)
    return Redirect(f"/admin/roles/{role_id}?saved=1", status_code=303)


@post("/admin/roles/{role_id:int}/fields", opt=ROLES, status_code=303)
async def save_field_rules(request: Request, role_id: FromPath[int]) -> Response:
    """The checked ``table.field`` boxes are the fields this role must not see."""
    rapport = request.app.state.rapport
    await _role(role_id)
    form = await request.form()
    known = {f"{t}.{f}" for t, fields in _fields_by_table(rapport) for f in fields}
    wanted = {v for v in form.getall("hidden", []) if v in known}
    async with FieldRule._meta.db.transaction():
        rows = await FieldRule.select().where(FieldRule.role == role_id).run()
        current = {f"{r['record_type']}.{r['field']}": r["id"] for r in rows}
        removed = set(current) - wanted
        added = wanted - set(current)
        if removed:
            await FieldRule.delete().where(FieldRule.id.is_in([current[k] for k in removed])).run()
        for key in sorted(added):
            table, field = key.split(".", 1)
            await FieldRule.insert(FieldRule(role=role_id, record_type=table, field=field)).run()
        if added or removed:
            changes: dict[str, Any] = {k: ["visible", "hidden"] for k in sorted(added)}
            changes.update({k: ["hidden", "visible"] for k in sorted(removed)})
            await audit.record(current_actor(request), "field_rule_change", "core_role",
                               role_id, changes, ip=client_ip(request))
    return Redirect(f"/admin/roles/{role_id}?saved=1", status_code=303)


ROUTES = [users_page, new_user_page, create_user_page, user_page, update_user_page, unlock_user,
          teams_page, create_team_page, roles_page, create_role_page, matrix_page, save_matrix,
          role_page, add_grant, remove_grant, save_field_rules]
