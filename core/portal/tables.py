"""Portal identities and their sessions. Secrets (passwords, session keys, invitation and
sign-in tokens) are stored only as hashes, so a leaked backup opens no portal account."""

from __future__ import annotations

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.customers.tables import Customer
from core.identity.tables import User


class PortalIdentity(Table, tablename="core_portal_identity"):
    """A contact's access to the portal: at most one per customer, one per email address."""

    id: Serial
    customer = ForeignKey(Customer, unique=True, on_delete=OnDelete.cascade)
    email = Varchar(length=254, unique=True)  # normalised (lower case)
    password_hash = Varchar(length=200, null=True, default=None, secret=True)
    invitation_hash = Varchar(length=64, null=True, default=None, unique=True, secret=True)
    invitation_expires_at = Timestamptz(null=True, default=None)
    invited_by = ForeignKey(User, null=True, default=None, on_delete=OnDelete.set_null)
    invited_at = Timestamptz(null=True, default=None)
    activated_at = Timestamptz(null=True, default=None)
    last_seen_at = Timestamptz(null=True, default=None)
    is_active = Boolean(default=True)
    failed_logins = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)
    # The customer's time zone (IANA name), sent by their browser at sign-in; "" = instance's.
    time_zone = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class PortalSession(Table, tablename="core_portal_session"):
    """Server-side portal session, separate from staff sessions; the cookie holds a random
    key, this table its hash."""

    key_hash = Varchar(length=64, unique=True, secret=True)
    identity = ForeignKey(PortalIdentity, index=True, on_delete=OnDelete.cascade)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()


class PortalLoginLink(Table, tablename="core_portal_login_link"):
    """A magic sign-in link: single use, short-lived, stored as a hash."""

    token_hash = Varchar(length=64, unique=True, secret=True)
    identity = ForeignKey(PortalIdentity, index=True, on_delete=OnDelete.cascade)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class PortalVisit(Table, tablename="core_portal_visit"):
    """Visits counted per identity per month (``2026-11``), never listed one by one."""

    identity = ForeignKey(PortalIdentity, index=True, on_delete=OnDelete.cascade)
    month = Varchar(length=7)
    visits = Integer(default=0)


class PortalLoginAttempt(Table, tablename="core_portal_login_attempt"):
    """Recent portal sign-in attempts, for rate limiting across workers; pruned after a day."""

    attempted_at = Timestamptz(default=TimestamptzNow(), index=True)
    email = Varchar(length=254, default="", index=True)
    ip = Varchar(length=64, default="", index=True)
    kind = Varchar(length=16, default="password")  # password, link
    succeeded = Boolean(default=False)
