"""Staff identity: users, teams (nested), roles and the permissions they grant."""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="core_user"):
    id: Serial
    email = Varchar(length=254, unique=True)
    name = Varchar(length=200)
    password_hash = Varchar(length=200, secret=True)
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)
    failed_logins = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)


class Team(Table, tablename="core_team"):
    """Teams nest: a manager's ``team`` scope covers every team below theirs."""

    id: Serial
    name = Varchar(length=200, unique=True)
    parent = ForeignKey("self", null=True, default=None)


class TeamMember(Table, tablename="core_team_member"):
    user = ForeignKey(User, index=True)
    team = ForeignKey(Team, index=True)


class Role(Table, tablename="core_role"):
    id: Serial
    key = Varchar(length=64, unique=True)
    name = Varchar(length=200)
    description = Text(default="")
    builtin = Boolean(default=False)


class RolePermission(Table, tablename="core_role_permission"):
    """A grant. ``permission`` may be a pattern (``*``, ``sales.*``, ``*.view``) so that a
    role keeps covering permissions that plugins enabled later declare."""

    role = ForeignKey(Role, index=True)
    permission = Varchar(length=200)
    scope = Varchar(length=10, default="all")


class UserRole(Table, tablename="core_user_role"):
    user = ForeignKey(User, index=True)
    role = ForeignKey(Role, index=True)


class StaffSession(Table, tablename="core_staff_session"):
    """Server-side session; the cookie holds a random key, the table only its hash."""

    key_hash = Varchar(length=64, unique=True)
    user = ForeignKey(User, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=300, default="")
