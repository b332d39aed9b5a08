"""Fetching support mail from a Maildir or an IMAP mailbox.

Each message goes through ``email_in.receive``; it is marked done only afterwards, so a crash
or a database outage leaves it to be fetched again (and ``receive`` recognises a Message-ID it
already stored, so the retry does not duplicate it):

- Maildir (stdlib ``mailbox.Maildir``): messages in ``new/`` are processed and then moved to
  ``cur/`` with the Seen flag. A message that ``receive`` rejected or ignored is moved too
  (it would never succeed), flagged ``F`` when rejected so an administrator can find it.
- IMAP over SSL (stdlib ``imaplib`` in a worker thread): UNSEEN messages of
  ``settings.imap_folder`` are fetched with ``BODY.PEEK[]`` (which does not mark them read) and
  flagged ``\\Seen`` after they were stored.

``startup`` starts a loop running one pass every ``settings.mail_poll_seconds`` when a Maildir
or an IMAP host is configured; ``rapport service fetch-mail`` runs one pass by hand.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import mailbox
import ssl
from pathlib import Path

log = logging.getLogger("rapport.service.mail")

DONE = ("created", "threaded", "duplicate", "ignored", "rejected")
IMAP_BATCH = 50  # messages per pass; the next pass takes the rest
_loops: dict[int, asyncio.Task] = {}


async def poll_maildir(rapport, path: str | Path) -> list[dict]:
    """One pass over ``path/new``; returns one result per message handled."""
    from plugins.service import email_in

    box = mailbox.Maildir(str(path), factory=None, create=False)
    results = []
    for key in sorted(box.iterkeys()):
        try:
            entry = box.get_message(key)
        except KeyError:
            continue  # taken by a concurrent poller
        if entry.get_subdir() != "new":
            continue
        try:
            raw = box.get_bytes(key)
            result = await email_in.receive(rapport, raw)
        except Exception as exc:  # noqa: BLE001 - keep it in new/ and try again next pass
            log.exception("support mail %s could not be stored; it stays in new/", key)
            results.append({"source": f"maildir:{key}", "status": "error",
                            "reason": f"{type(exc).__name__}: {exc}"})
            continue
        entry.set_subdir("cur")
        entry.add_flag("S" if result["status"] != "rejected" else "FS")
        box[key] = entry  # moves the file to cur/ with its flags
        results.append({"source": f"maildir:{key}", **result})
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


async def poll_imap(rapport) -> list[dict]:
    """One pass over the IMAP folder's unseen messages."""
    from plugins.service import email_in

    settings = rapport.plugin_settings("service")
    client, messages = await asyncio.to_thread(_imap_fetch, settings)
    results = []
    try:
        for uid, raw in messages:
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


async def fetch_once(rapport) -> list[dict]:
    """One pass over every configured source."""
    settings = rapport.plugin_settings("service")
    results: list[dict] = []
    if settings.maildir:
        results += await poll_maildir(rapport, settings.maildir)
    if settings.imap_host:
        results += await poll_imap(rapport)
    return results


async def _loop(rapport, seconds: int) -> None:
    while True:
        try:
            results = await fetch_once(rapport)
            if results:
                log.info("support mail: %d message(s) handled", len(results))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a mailbox that is down must not stop the loop
            log.exception("fetching support mail failed; trying again in %s s", seconds)
        await asyncio.sleep(seconds)


async def startup(rapport) -> None:
    settings = rapport.plugin_settings("service")
    if not (settings.maildir or settings.imap_host) or settings.mail_poll_seconds <= 0:
        return
    if id(rapport) not in _loops:
        _loops[id(rapport)] = asyncio.create_task(_loop(rapport, settings.mail_poll_seconds),
                                                  name="service-mail-poll")


async def shutdown(rapport) -> None:
    task = _loops.pop(id(rapport), None)
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


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
        """Fetch support mail once from the configured Maildir and IMAP mailbox."""
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
        except (OSError, imaplib.IMAP4.error, mailbox.Error, RuntimeError) as exc:
            raise click.ClickException(f"fetching mail failed: {exc}") from None
        for result in results:
            click.echo(describe(result))
        click.echo(f"{len(results)} message(s) handled.")
