"""Staff identity: users, teams (nested), roles and the permissions they grant."""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
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
    # TOTP two-factor: the secret is set at enrolment, used only once confirmed with a code.
    totp_secret = Varchar(length=64, null=True, default=None, secret=True)
    totp_enabled = Boolean(default=False)
    # The last TOTP time step accepted at sign-in: a code is good once (RFC 6238 section 5.2).
    totp_last_step = BigInt(null=True, default=None)
    # My account: the IANA zone times are shown and typed in, and the locale ("" = instance's).
    time_zone = Varchar(length=64, default="")
    locale = Varchar(length=35, default="")


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
    # Password accepted, two-factor code still owed: such a session signs nobody in.
    pending_second_factor = Boolean(default=False)


class LoginAttempt(Table, tablename="core_login_attempt"):
    """Every sign-in attempt, so limits hold across several workers (not per-process memory)."""

    attempted_at = Timestamptz(default=TimestamptzNow(), index=True)
    ip = Varchar(length=64, default="", index=True)
    email = Varchar(length=254, default="", index=True)
    succeeded = Boolean(default=False)


class ApiToken(Table, tablename="core_api_token"):
    """A personal API token. Only its SHA-256 is stored; ``prefix`` lets people recognise it.

    ``scopes`` is a JSON list of permission patterns (``core.customer.*``); the token's actor
    holds the user's grants restricted to those patterns.
    """

    id: Serial
    user = ForeignKey(User, index=True)
    name = Varchar(length=100, default="")
    token_hash = Varchar(length=64, unique=True, secret=True)
    prefix = Varchar(length=16, default="")
    scopes = Text(default='["*"]')
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)


class PasswordReset(Table, tablename="core_password_reset"):
    """A single-use, expiring password-reset link; only the hash of its token is kept."""

    user = ForeignKey(User, index=True)
    token_hash = Varchar(length=64, unique=True, secret=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class FieldRule(Table, tablename="core_field_rule"):
    """Hides one field of one record type (a table name) from one role."""

    role = ForeignKey(Role, index=True)
    record_type = Varchar(length=100)
    field = Varchar(length=100)
