"""Portal identities: invitations, passwords, magic sign-in links, sessions, visit counts.

A portal identity acts as ``Actor(kind="portal", customer_id=..., account_id=...)``. Its
grants are every declared permission of the form ``<id>.portal.<verb>`` except the staff
verbs ``invite`` and ``manage`` (see :func:`portal_grants`), each at scope ``"customer"``,
so the row filter limits every query to the customer's own rows.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core import audit, rate_limits
from core.customers.tables import Customer
from core.identity.passwords import DUMMY_HASH, hash_password, password_problem, verify_password
from core.permissions import Actor
from core.portal.tables import (
    PortalIdentity,
    PortalLoginAttempt,
    PortalLoginLink,
    PortalSession,
    PortalVisit,
)

if TYPE_CHECKING:
    from core.app import Rapport

COOKIE = "rapport_portal"
SESSION_LIFETIME = timedelta(days=30)
INVITATION_LIFETIME = timedelta(days=7)
LOGIN_LINK_LIFETIME = timedelta(minutes=15)
# A visit is a run of requests without a pause of this length (as web analytics count).
VISIT_GAP = timedelta(minutes=30)
# last_seen_at is written at most this often, so browsing costs no write per page.
SEEN_PRECISION = timedelta(minutes=1)

RATE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_LINKS_PER_EMAIL = 3
MAX_ATTEMPTS_PER_IP = 30
STAFF_VERBS = ("invite", "manage")


class PortalError(ValueError):
    """Bad input in a portal flow; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def is_portal_permission(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 3 and parts[-2] == "portal" and parts[-1] not in STAFF_VERBS


def portal_grants(rapport: Rapport) -> dict[str, str]:
    """What every portal customer may do: ``<id>.portal.<verb>`` permissions, own rows only."""
    return {name: "customer" for name in rapport.permissions if is_portal_permission(name)}


# --- invitations -----------------------------------------------------------------------------


async def invite(rapport: Rapport, actor: Actor, customer_id: int, email: str, *, ip: str = ""
                 ) -> tuple[int, str]:
    """Create (or renew) the customer's portal identity with a fresh invitation; return the
    identity id and the invitation token (shown once, never stored)."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254 or " " in email:
        raise PortalError("email", "Enter the email address the customer signs in with.")
    token, hashed = new_token()
    expires = now() + INVITATION_LIFETIME
    async with PortalIdentity._meta.db.transaction():
        taken = await PortalIdentity.select(PortalIdentity.customer).where(
            PortalIdentity.email == email).first().run()
        if taken is not None and taken["customer"] != customer_id:
            raise PortalError("email", "Another customer already signs in with this address.")
        existing = await PortalIdentity.select(PortalIdentity.id).where(
            PortalIdentity.customer == customer_id).first().run()
        values = {
            PortalIdentity.email: email,
            PortalIdentity.invitation_hash: hashed,
            PortalIdentity.invitation_expires_at: expires,
            PortalIdentity.invited_by: actor.id if actor.kind == "staff" else None,
            PortalIdentity.invited_at: now(),
            PortalIdentity.is_active: True,
        }
        if existing is None:
            rows = await PortalIdentity.insert(PortalIdentity(
                customer=customer_id, **{c._meta.name: v for c, v in values.items()}
            )).returning(PortalIdentity.id).run()
            identity_id = rows[0]["id"]
        else:
            identity_id = existing["id"]
            await PortalIdentity.update(values).where(PortalIdentity.id == identity_id).run()
        await audit.record(actor, "portal_invite", PortalIdentity._meta.tablename, identity_id,
                           summary=f"invited customer {customer_id} to the portal", ip=ip)
    return identity_id, token


async def invitation(token: str) -> dict[str, Any] | None:
    """The identity a valid, unexpired invitation token belongs to."""
    row = await PortalIdentity.select(
        PortalIdentity.id, PortalIdentity.email, PortalIdentity.invitation_expires_at,
        PortalIdentity.customer.name,
    ).where(
        (PortalIdentity.invitation_hash == token_hash(token))
        & (PortalIdentity.is_active == True)  # noqa: E712 (Piccolo builds SQL from ==)
    ).first().run()
    if row is None or row["invitation_expires_at"] is None or row["invitation_expires_at"] <= now():
        return None
    return row


async def accept_invitation(token: str, password: str, confirm: str) -> int:
    """Set the password of an invited identity; the invitation is used up. Returns its id."""
    found = await invitation(token)
    if found is None:
        raise PortalError("token", "This invitation link has expired or was already used.")
    if problem := password_problem(password):
        raise PortalError("password", problem)
    if password != confirm:
        raise PortalError("confirm", "The two passwords differ.")
    # The hash condition makes using the invitation atomic: a second use changes nothing.
    rows = await PortalIdentity.update({
        PortalIdentity.password_hash: hash_password(password),
        PortalIdentity.invitation_hash: None,
        PortalIdentity.invitation_expires_at: None,
        PortalIdentity.activated_at: now(),
    }).where(PortalIdentity.invitation_hash == token_hash(token)).returning(
        PortalIdentity.id).run()
    if not rows:
        raise PortalError("token", "This invitation link has expired or was already used.")
    await audit.record(Actor(kind="portal", id=rows[0]["id"], name=f"portal identity {rows[0]['id']}"),
                       "portal_activate", PortalIdentity._meta.tablename, rows[0]["id"])
    return rows[0]["id"]


# --- signing in ------------------------------------------------------------------------------


async def reserve(rapport: Any, email: str, ip: str, kind: str) -> bool:
    """Reserve this attempt against the address's and the IP's limits before checking
    anything (atomic counters, :mod:`core.rate_limits`: parallel attempts cannot all pass);
    ``False`` when either is used up. Successes give the IP's reservation back."""
    per_email = MAX_FAILURES_PER_EMAIL if kind == "password" else MAX_LINKS_PER_EMAIL
    if not await rate_limits.allow(rapport, f"portal-{kind}", email[:254], per_email,
                                   RATE_WINDOW):
        return False
    return await rate_limits.allow(rapport, "portal-ip", ip[:64], MAX_ATTEMPTS_PER_IP,
                                   RATE_WINDOW)


async def note_attempt(email: str, ip: str, kind: str, succeeded: bool) -> None:
    await PortalLoginAttempt.delete().where(
        PortalLoginAttempt.attempted_at < now() - timedelta(days=1)).run()
    await PortalLoginAttempt.insert(PortalLoginAttempt(
        attempted_at=now(), email=email[:254], ip=ip[:64], kind=kind, succeeded=succeeded,
    )).run()


async def _active_identity(email: str) -> dict[str, Any] | None:
    return await PortalIdentity.select(
        PortalIdentity.id, PortalIdentity.password_hash, PortalIdentity.is_active,
        PortalIdentity.customer.erased_at,
    ).where(PortalIdentity.email == email).first().run()


def _usable(identity: dict[str, Any] | None) -> bool:
    return bool(identity and identity["is_active"] and identity["customer.erased_at"] is None)


async def check_password(email: str, password: str, ip: str = "", *,
                         rapport: Any = None) -> int:
    """The identity id for a correct email and password; raises :class:`PortalError`."""
    email = normalise_email(email)
    if not await reserve(rapport, email, ip, "password"):
        raise PortalError("email", "Too many attempts. Wait 15 minutes or ask for a sign-in link.")
    identity = await _active_identity(email)
    stored = identity["password_hash"] if identity and identity["password_hash"] else DUMMY_HASH
    ok = verify_password(stored, password) and _usable(identity) and stored != DUMMY_HASH
    await note_attempt(email, ip, "password", ok)
    if ok:  # only failures count
        await rate_limits.give_back(rapport, "portal-password", email[:254], RATE_WINDOW)
        await rate_limits.give_back(rapport, "portal-ip", ip[:64], RATE_WINDOW)
    else:
        who = Actor(kind="anonymous", name="portal sign-in")
        await audit.record(who, "portal_login_failed", PortalIdentity._meta.tablename,
                           identity["id"] if identity else "", ip=ip)
        raise PortalError("email", "Wrong email or password.")
    return identity["id"]


async def create_login_link(email: str, ip: str = "", *,
                            rapport: Any = None) -> tuple[dict[str, Any], str] | None:
    """A single-use sign-in link token for a known, active address; ``None`` otherwise (the
    caller answers the same either way, so the form reveals no customers)."""
    email = normalise_email(email)
    if not await reserve(rapport, email, ip, "link"):
        raise PortalError("email", "Too many sign-in links asked for. Wait 15 minutes.")
    identity = await _active_identity(email)
    await note_attempt(email, ip, "link", _usable(identity))
    if not _usable(identity):
        return None
    await rate_limits.give_back(rapport, "portal-ip", ip[:64], RATE_WINDOW)
    token, hashed = new_token()
    await PortalLoginLink.insert(PortalLoginLink(
        token_hash=hashed, identity=identity["id"], created_at=now(),
        expires_at=now() + LOGIN_LINK_LIFETIME,
    )).run()
    return identity, token


async def use_login_link(token: str) -> int | None:
    """Spend a sign-in link; the identity id, or ``None`` if unknown, expired or used."""
    rows = await PortalLoginLink.update({PortalLoginLink.used_at: now()}).where(
        (PortalLoginLink.token_hash == token_hash(token))
        & PortalLoginLink.used_at.is_null()
        & (PortalLoginLink.expires_at > now())
    ).returning(PortalLoginLink.identity).run()
    if not rows:
        return None
    identity = await PortalIdentity.select(
        PortalIdentity.id, PortalIdentity.is_active, PortalIdentity.customer.erased_at,
        PortalIdentity.activated_at,
    ).where(PortalIdentity.id == rows[0]["identity"]).first().run()
    if not _usable(identity):
        return None
    if identity["activated_at"] is None:  # a magic link proves the address too
        await PortalIdentity.update({PortalIdentity.activated_at: now()}).where(
            PortalIdentity.id == identity["id"]).run()
    return identity["id"]


# --- sessions --------------------------------------------------------------------------------


async def start_session(identity_id: int) -> str:
    key, hashed = new_token()
    await PortalSession.insert(PortalSession(
        key_hash=hashed, identity=identity_id, created_at=now(),
        expires_at=now() + SESSION_LIFETIME,
    )).run()
    await PortalSession.delete().where(PortalSession.expires_at < now()).run()
    return key


async def end_session(key: str) -> None:
    await PortalSession.delete().where(PortalSession.key_hash == token_hash(key)).run()


async def session_actor(rapport: Rapport, key: str) -> Actor | None:
    """The portal actor behind a session cookie, counting the visit; ``None`` if the session
    is unknown or expired, or the identity was deactivated or its customer erased."""
    row = await PortalSession.select(
        PortalSession.expires_at,
        PortalSession.identity.id,
        PortalSession.identity.is_active,
        PortalSession.identity.last_seen_at,
        PortalSession.identity.time_zone,
        PortalSession.identity.customer.id,
        PortalSession.identity.customer.account,
        PortalSession.identity.customer.erased_at,
    ).where(PortalSession.key_hash == token_hash(key)).first().run()
    if (row is None or row["expires_at"] <= now() or not row["identity.is_active"]
            or row["identity.customer.erased_at"] is not None):
        return None
    identity_id = row["identity.id"]
    await note_visit(identity_id, row["identity.last_seen_at"])
    customer_id = row["identity.customer.id"]
    return Actor(
        kind="portal",
        id=identity_id,
        # No personal data in the actor's label: it is what the audit log records.
        name=f"portal customer #{customer_id}",
        grants=portal_grants(rapport),
        customer_id=customer_id,
        account_id=row["identity.customer.account"],
        time_zone=row["identity.time_zone"] or "",
    )


async def note_time_zone(identity_id: int, zone: str | None) -> None:
    """Remember the zone the customer's browser reported at sign-in (when it is a real one):
    portal pages show times in it."""
    from core.local_time import valid_zone

    zone = valid_zone(zone)
    if zone:
        await PortalIdentity.update({PortalIdentity.time_zone: zone}).where(
            (PortalIdentity.id == identity_id) & (PortalIdentity.time_zone != zone)).run()


async def note_visit(identity_id: int, last_seen_at: datetime | None) -> None:
    """Count a visit when the customer comes back after :data:`VISIT_GAP`; keep last seen."""
    moment = now()
    if last_seen_at is not None and moment - last_seen_at < SEEN_PRECISION:
        return
    # Only the request that moves last_seen_at on counts the visit (two workers, one visit).
    condition = PortalIdentity.id == identity_id
    condition &= (PortalIdentity.last_seen_at.is_null() if last_seen_at is None
                  else PortalIdentity.last_seen_at == last_seen_at)
    moved = await PortalIdentity.update({PortalIdentity.last_seen_at: moment}).where(
        condition).returning(PortalIdentity.id).run()
    if not moved or (last_seen_at is not None and moment - last_seen_at < VISIT_GAP):
        return
    month = moment.strftime("%Y-%m")
    bumped = await PortalVisit.update({PortalVisit.visits: PortalVisit.visits + 1}).where(
        (PortalVisit.identity == identity_id) & (PortalVisit.month == month)
    ).returning(PortalVisit.id).run()
    if not bumped:
        await PortalVisit.insert(PortalVisit(identity=identity_id, month=month, visits=1)).run()


async def visits_by_month(identity_id: int, months: int = 12) -> list[dict[str, Any]]:
    return await PortalVisit.select(PortalVisit.month, PortalVisit.visits).where(
        PortalVisit.identity == identity_id).order_by(PortalVisit.month, ascending=False).limit(
        months).run()


async def has_portal_access(customer_id: int) -> bool:
    """Whether this customer can sign in to the portal (an active identity, invited or in
    use): what a plugin asks before offering something only the portal shows."""
    return await PortalIdentity.exists().where(
        (PortalIdentity.customer == customer_id)
        & (PortalIdentity.is_active == True)).run()  # noqa: E712


async def customer_row(customer_id: int) -> dict[str, Any] | None:
    return await Customer.select().where(Customer.id == customer_id).first().run()
