"""Fetching support mail from a Maildir or an IMAP mailbox.

Each message goes through ``email_in.receive``; it is marked done only afterwards, so a crash
or a database outage leaves it to be fetched again (and ``receive`` recognises a Message-ID it
already stored, so the retry does not duplicate it):

- Maildir: files in ``new/`` are read and, once handled, renamed into ``cur/`` with the Seen
  flag (an atomic rename: of two pollers only one moves a file). A message that ``receive``
  rejected or ignored is moved too (it would never succeed), flagged ``F`` when rejected so an
  administrator can find it.
- IMAP over SSL (stdlib ``imaplib`` in a worker thread): UNSEEN messages of
  ``settings.imap_folder`` are fetched with ``BODY.PEEK[]`` (which does not mark them read) and
  flagged ``\\Seen`` after they were stored.

Only one pass runs at a time. Passes run as the recurring job ``service.mail.fetch`` (every
``settings.mail_poll_seconds`` when a Maildir or an IMAP host is configured), and the job
system never runs a recurring job twice at once, across all workers; ``rapport service
fetch-mail`` runs one pass by hand, outside the job system. The lease (the row ``mail`` of
``service_mail_lease``) is what keeps these two apart: a pass claims it with a conditional
UPDATE (free, expired, or already ours), renews it before each message, stops when it lost
it, and gives it up at its end; a process that dies stops renewing it, so it expires. Should
two passes overlap anyway (a lease lost in the middle of a message, the inbound endpoint
receiving the same mail), the unique index on ``service_message.message_id`` still stores the
message once.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import mailbox
import os
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("rapport.service.mail")

DONE = ("created", "threaded", "duplicate", "ignored", "rejected")
IMAP_BATCH = 50  # messages per pass; the next pass takes the rest
LEASE = "mail"
MIN_LEASE_SECONDS = 300  # how long a dead poller blocks the others, at least
FETCH_JOB = "service.mail.fetch"

Renew = Callable[[], Awaitable[bool]]


# --- the lease -------------------------------------------------------------------------------


class LeaseHeld(RuntimeError):
    """Another process is polling the mailboxes."""

    def __init__(self, holder: str, seconds_left: float) -> None:
        self.holder, self.seconds_left = holder, seconds_left
        super().__init__(f"another process ({holder}) is fetching mail; its lease runs "
                         f"{max(0, round(seconds_left))} s more unless it renews it")


def new_holder() -> str:
    """Names this process in the lease row, for an administrator reading it."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_seconds(settings) -> int:
    """Outlives the pause between two passes of the holder, so it keeps the lease."""
    return max(MIN_LEASE_SECONDS, 3 * settings.mail_poll_seconds)


def _now_sql() -> str:
    """Unix seconds by the database's clock: the processes may run on several hosts."""
    from plugins.service.tables import CaseMessage

    if CaseMessage._meta.db.engine_type == "postgres":
        return "extract(epoch from clock_timestamp())::float8"
    return "((julianday('now') - 2440587.5) * 86400.0)"


async def claim_lease(holder: str, seconds: int) -> bool:
    """Take or renew the lease for ``seconds``; False while another holder has it."""
    from plugins.service.tables import CaseMessage

    now = _now_sql()
    for _ in range(2):
        # One statement, so two claimers never both win: PostgreSQL re-checks the WHERE on
        # the row the other one just updated, SQLite runs one writer at a time.
        async with CaseMessage._meta.db.transaction():
            rows = await CaseMessage.raw(
                f"UPDATE service_mail_lease SET holder = {{}}, expires_at = {now} + {{}} "
                f"WHERE name = {{}} AND (holder = {{}} OR expires_at < {now}) RETURNING holder",
                holder, float(seconds), LEASE, holder).run()
        if rows:
            return True
        # The migration made the row; should someone have deleted it, make it again.
        async with CaseMessage._meta.db.transaction():
            made = await CaseMessage.raw(
                "INSERT INTO service_mail_lease (name, holder, expires_at) VALUES ({}, '', 0) "
                "ON CONFLICT (name) DO NOTHING RETURNING name", LEASE).run()
        if not made:
            return False
    return False


async def lease_state() -> dict:
    """``holder`` ('' when free) and ``seconds_left`` (negative once expired)."""
    from plugins.service.tables import CaseMessage

    rows = await CaseMessage.raw(
        f"SELECT holder, expires_at - {_now_sql()} AS seconds_left FROM service_mail_lease "
        "WHERE name = {}", LEASE).run()
    if not rows:
        return {"holder": "", "seconds_left": 0.0}
    return {"holder": rows[0]["holder"], "seconds_left": float(rows[0]["seconds_left"])}


async def release_lease(holder: str) -> None:
    """Give the lease up at once (shutdown, end of the command) if it is still ours."""
    from plugins.service.tables import CaseMessage

    async with CaseMessage._meta.db.transaction():
        await CaseMessage.raw(
            "UPDATE service_mail_lease SET holder = '', expires_at = 0 "
            "WHERE name = {} AND holder = {}", LEASE, holder).run()


# --- Maildir ---------------------------------------------------------------------------------


async def _always() -> bool:
    return True


def _read_new(path: Path, name: str) -> bytes | None:
    try:
        return (path / "new" / name).read_bytes()
    except FileNotFoundError:
        return None  # taken by another poller


def _move_to_cur(path: Path, name: str, flags: str) -> None:
    key = name.split(":", 1)[0]
    try:
        os.rename(path / "new" / name, path / "cur" / f"{key}:2,{flags}")
    except FileNotFoundError:
        pass  # another poller moved it first; the message is stored once either way


async def poll_maildir(rapport, path: str | Path, renew: Renew = _always) -> list[dict]:
    """One pass over ``path/new``; returns one result per message handled.

    ``renew`` is called before each message; the pass stops when it returns False.
    """
    from plugins.service import email_in

    mailbox.Maildir(str(path), factory=None, create=False)  # not a Maildir: NoSuchMailboxError
    path = Path(path)
    results = []
    names = sorted(n for n in os.listdir(path / "new") if not n.startswith("."))
    for name in names:
        raw = _read_new(path, name)
        if raw is None:
            continue
        if not await renew():
            log.warning("the mail poll lease was taken over; stopping this pass")
            break
        source = f"maildir:{name.split(':', 1)[0]}"
        try:
            result = await email_in.receive(rapport, raw)
        except Exception as exc:  # noqa: BLE001 - keep it in new/ and try again next pass
            log.exception("support mail %s could not be stored; it stays in new/", name)
            results.append({"source": source, "status": "error",
                            "reason": f"{type(exc).__name__}: {exc}"})
            continue
        _move_to_cur(path, name, "FS" if result["status"] == "rejected" else "S")
        results.append({"source": source, **result})
    return results


def imap_ssl_context() -> ssl.SSLContext:
    """Certificates are verified against the system's trust store (tests swap this)."""
    return ssl.create_default_context()


def _imap_fetch(settings) -> tuple[imaplib.IMAP4, list[tuple[bytes, bytes]]]:
    client = imaplib.IMAP4_SSL(settings.imap_host, settings.imap_port,
                               ssl_context=imap_ssl_context(), timeout=30)
    client.login(settings.imap_user, settings.imap_password)
    status, _ = client.select(settings.imap_folder)
    if status != "OK":
        client.logout()
        raise RuntimeError(f"IMAP folder {settings.imap_folder!r} cannot be opened")
    status, data = client.uid("SEARCH", None, "UNSEEN")
    uids = (data[0] or b"").split()[:IMAP_BATCH] if status == "OK" else []
    messages = []
    for uid in uids:
        status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
        if status == "OK":
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if raw:
                messages.append((uid, raw))
    return client, messages


def _imap_seen(client: imaplib.IMAP4, uid: bytes) -> None:
    client.uid("STORE", uid, "+FLAGS", "(\\Seen)")


def _imap_close(client: imaplib.IMAP4) -> None:
    try:
        client.close()
        client.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


async def poll_imap(rapport, renew: Renew = _always) -> list[dict]:
    """One pass over the IMAP folder's unseen messages (``renew`` as for the Maildir)."""
    from plugins.service import email_in

    settings = rapport.plugin_settings("service")
    client, messages = await asyncio.to_thread(_imap_fetch, settings)
    results = []
    try:
        for uid, raw in messages:
            if not await renew():
                log.warning("the mail poll lease was taken over; stopping this pass")
                break
            try:
                result = await email_in.receive(rapport, raw)
            except Exception as exc:  # noqa: BLE001 - stays unseen, fetched again next pass
                log.exception("support mail uid %s could not be stored", uid)
                results.append({"source": f"imap:{uid.decode()}", "status": "error",
                                "reason": f"{type(exc).__name__}: {exc}"})
                continue
            await asyncio.to_thread(_imap_seen, client, uid)
            results.append({"source": f"imap:{uid.decode()}", **result})
    finally:
        await asyncio.to_thread(_imap_close, client)
    return results


async def fetch_once(rapport, holder: str | None = None, *, keep: bool = False) -> list[dict]:
    """One pass over every configured source, under the lease.

    Raises ``LeaseHeld`` when another process holds it. ``keep``: hold the lease after the
    pass (the server loop, which renews it next pass); otherwise it is given up at once.
    """
    settings = rapport.plugin_settings("service")
    holder = holder or new_holder()
    seconds = lease_seconds(settings)
    if not await claim_lease(holder, seconds):
        state = await lease_state()
        raise LeaseHeld(state["holder"], state["seconds_left"])

    async def renew() -> bool:
        return await claim_lease(holder, seconds)

    results: list[dict] = []
    try:
        if settings.maildir:
            results += await poll_maildir(rapport, settings.maildir, renew)
        if settings.imap_host and await renew():
            results += await poll_imap(rapport, renew)
    finally:
        if not keep:
            await release_lease(holder)
    return results


async def fetch_job(rapport, job) -> None:
    """The ``service.mail.fetch`` job: one pass. Idempotent: a message is marked done only
    after it is stored, and a Message-ID already stored is recognised."""
    try:
        results = await fetch_once(rapport)
    except LeaseHeld as held:
        log.info("support mail: skipped, %s", held)  # `rapport service fetch-mail` is running
        return
    if results:
        log.info("support mail: %d message(s) handled", len(results))


def job_types(rapport) -> list:
    from core.plugin import JobType

    settings = rapport.plugin_settings("service")
    if not (settings.maildir or settings.imap_host) or settings.mail_poll_seconds <= 0:
        return []  # nothing to fetch: no job waits on the jobs page for nothing
    # One attempt: a mailbox that is down is tried again at the next occurrence.
    return [JobType(FETCH_JOB, fetch_job, schedule=settings.mail_poll_seconds, unique=True,
                    max_attempts=1, timeout_seconds=max(300, lease_seconds(settings)),
                    description="Fetch support mail into cases")]


def describe(result: dict) -> str:
    status = result["status"]
    where = result.get("source", "")
    if status in ("created", "threaded", "duplicate"):
        verb = {"created": "new case", "threaded": "added to case",
                "duplicate": "already stored on case"}[status]
        line = f"{where}: {verb} {result.get('case_id')}"
        if result.get("dropped"):
            line += " (refused attachments: " + ", ".join(
                d["filename"] for d in result["dropped"]) + ")"
        return line
    return f"{where}: {status}: {result.get('reason', '')}"


def register_commands(group) -> None:
    import click

    @group.command(name="fetch-mail")
    @click.pass_context
    def fetch_mail(ctx: click.Context) -> None:
        """Fetch support mail once from the configured Maildir and IMAP mailbox.

        Takes the same lease as the server's mail job: refused while another process polls.
        """
        from core import db
        from core.cli import get_rapport

        rapport = get_rapport(ctx)
        settings = rapport.plugin_settings("service")
        if not (settings.maildir or settings.imap_host):
            raise click.ClickException("neither maildir nor imap_host is set in "
                                       "[plugins.service]")

        async def main():
            rapport.activate()
            await db.connect(rapport.engine, pool_size=2)
            try:
                await db.ensure_migrated(rapport.piccolo_apps())
                return await fetch_once(rapport)
            finally:
                await db.disconnect(rapport.engine)

        try:
            results = asyncio.run(main())
        except LeaseHeld as held:
            raise click.ClickException(f"nothing fetched: {held}") from None
        except (OSError, imaplib.IMAP4.error, mailbox.Error, RuntimeError) as exc:
            raise click.ClickException(f"fetching mail failed: {exc}") from None
        for result in results:
            click.echo(describe(result))
        click.echo(f"{len(results)} message(s) handled.")
