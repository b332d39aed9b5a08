"""Several server processes polling the same mailbox: the lease lets one poll at a time, and
the unique Message-ID index stores a message once even when two deliveries race."""

from __future__ import annotations

import asyncio
import mailbox

import pytest

from core import db
from core.customers.tables import Customer
from plugins.service import email_in, mailpoll
from plugins.service.tables import Case, CaseMessage
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.email_helpers import eml


@pytest.fixture
async def poll_rapport(make_rapport, tmp_path):
    """The service app with a Maildir configured, connected with room for two concurrent
    transactions plus the queries made beside them."""
    rapport = await make_rapport(["service"], {"service": {
        "maildir": str(tmp_path / "Maildir"), "mail_poll_seconds": 0}})
    rapport.activate()
    await db.connect(rapport.engine, pool_size=6)
    try:
        yield rapport
    finally:
        await db.disconnect(rapport.engine)


def _deliver(tmp_path, *raws: bytes) -> mailbox.Maildir:
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    for raw in raws:
        message = mailbox.MaildirMessage(raw)
        message.set_subdir("new")
        box.add(message)
    return box


def _names(tmp_path, subdir: str) -> list[str]:
    return sorted(p.name for p in (tmp_path / "Maildir" / subdir).iterdir())


async def test_two_concurrent_passes_store_each_message_once(poll_rapport, tmp_path):
    _deliver(tmp_path, eml("plain.eml"), eml("html_only.eml"), eml("latin1.eml"))
    first, second = await asyncio.gather(
        mailpoll.poll_maildir(poll_rapport, tmp_path / "Maildir"),
        mailpoll.poll_maildir(poll_rapport, tmp_path / "Maildir"))
    errors = [r for r in first + second if r["status"] == "error"]
    if errors:
        # SQLite lets one transaction write at a time and refuses the other ("database is
        # locked"); that message stays in new/ for the next pass. PostgreSQL waits instead.
        assert _sqlite(poll_rapport), errors
        assert all("locked" in r["reason"] for r in errors), errors
    third = await mailpoll.poll_maildir(poll_rapport, tmp_path / "Maildir")
    results = first + second + third
    assert len([r for r in results if r["status"] == "created"]) == 3
    assert all(r["status"] in ("created", "duplicate", "error") for r in results)
    assert await Case.count().run() == 3
    assert await CaseMessage.count().where(CaseMessage.kind == "inbound").run() == 3
    assert _names(tmp_path, "new") == []
    assert len(_names(tmp_path, "cur")) == 3  # moved once each, no copies


def _sqlite(rapport) -> bool:
    return rapport.engine.engine_type == "sqlite"


async def _receive_both(rapport, raw: bytes) -> list[str]:
    """Two deliveries of ``raw`` at once; a delivery that failed is delivered again, as the
    pollers and the mail server do."""
    statuses = []
    for result in await asyncio.gather(email_in.receive(rapport, raw),
                                       email_in.receive(rapport, raw),
                                       return_exceptions=True):
        if isinstance(result, BaseException):
            assert _sqlite(rapport) and "locked" in str(result), repr(result)
            result = await email_in.receive(rapport, raw)
        statuses.append(result["status"])
    return sorted(statuses)


async def test_same_message_stored_at_the_same_moment_is_stored_once(poll_rapport, monkeypatch):
    """Both deliveries look the Message-ID up before either stored it; the unique index makes
    the later one a duplicate, and its transaction leaves nothing behind."""
    customer_id = await new_customer("Ada Lovelace", email="ada@example.test")
    looked_up = asyncio.Barrier(2)
    real_stored = email_in._stored
    calls = []

    async def both_look_first(mid):
        result = await real_stored(mid)
        calls.append(mid)
        if len(calls) <= 2:
            await looked_up.wait()  # neither stores before both found nothing
        return result

    monkeypatch.setattr(email_in, "_stored", both_look_first)
    raw = eml("plain.eml")
    results = await asyncio.gather(email_in.receive(poll_rapport, raw),
                                   email_in.receive(poll_rapport, raw))
    assert sorted(r["status"] for r in results) == ["created", "duplicate"]
    created = next(r for r in results if r["status"] == "created")
    duplicate = next(r for r in results if r["status"] == "duplicate")
    assert duplicate["case_id"] == created["case_id"]
    assert duplicate["message_id"] == created["message_id"]
    assert "already received" in duplicate["reason"]
    assert await Case.count().run() == 1
    assert await Case.count().where(Case.customer == customer_id).run() == 1
    assert await CaseMessage.count().where(
        CaseMessage.message_id == "<plain-0001@mail.example.test>").run() == 1
    assert await Customer.count().run() == 1


async def test_same_reply_threaded_at_the_same_moment_is_added_once(poll_rapport, monkeypatch):
    first = await email_in.receive(poll_rapport, eml("plain.eml"))
    assert first["status"] == "created"
    case = await Case.select(Case.number).where(Case.id == first["case_id"]).first().run()
    looked_up = asyncio.Barrier(2)
    real_stored = email_in._stored
    calls = []

    async def both_look_first(mid):
        result = await real_stored(mid)
        calls.append(mid)
        if len(calls) <= 2:
            await looked_up.wait()
        return result

    monkeypatch.setattr(email_in, "_stored", both_look_first)
    raw = eml("reply_subject_tag.eml", NUMBER=case["number"])
    assert await _receive_both(poll_rapport, raw) == ["duplicate", "threaded"]
    assert await CaseMessage.count().where(
        (CaseMessage.case == first["case_id"]) & (CaseMessage.kind == "inbound")).run() == 2


async def test_a_held_lease_makes_the_other_pass_skip(poll_rapport, tmp_path):
    _deliver(tmp_path, eml("plain.eml"))
    assert await mailpoll.claim_lease("worker-a", 300)
    with pytest.raises(mailpoll.LeaseHeld) as held:
        await mailpoll.fetch_once(poll_rapport, "worker-b")
    assert held.value.holder == "worker-a" and held.value.seconds_left > 0
    assert await Case.count().run() == 0
    assert len(_names(tmp_path, "new")) == 1
    # The holder's own passes renew it; once it gives the lease up, the other one polls.
    assert await mailpoll.fetch_once(poll_rapport, "worker-a", keep=True) != []
    _deliver(tmp_path, eml("html_only.eml"))
    with pytest.raises(mailpoll.LeaseHeld):
        await mailpoll.fetch_once(poll_rapport, "worker-b")
    await mailpoll.release_lease("worker-a")
    [result] = await mailpoll.fetch_once(poll_rapport, "worker-b")
    assert result["status"] == "created"
    assert (await mailpoll.lease_state())["holder"] == ""  # a one-off pass gives it back


async def test_an_expired_lease_is_taken_over(poll_rapport, tmp_path):
    _deliver(tmp_path, eml("plain.eml"))
    assert await mailpoll.claim_lease("dead-worker", 300)
    await CaseMessage.raw(
        "UPDATE service_mail_lease SET expires_at = expires_at - 301 WHERE name = 'mail'").run()
    [result] = await mailpoll.fetch_once(poll_rapport, "worker-b", keep=True)
    assert result["status"] == "created"
    state = await mailpoll.lease_state()
    assert state["holder"] == "worker-b" and state["seconds_left"] > 0
    # The dead worker, should it wake up, does not get it back while it is held.
    assert not await mailpoll.claim_lease("dead-worker", 300)


async def test_a_pass_that_lost_the_lease_stops(poll_rapport, tmp_path, monkeypatch):
    _deliver(tmp_path, eml("plain.eml"), eml("html_only.eml"))
    real_receive = email_in.receive

    async def receive_then_lose_the_lease(rapport, raw):
        result = await real_receive(rapport, raw)
        # Meanwhile this worker was too slow: its lease expired and another one claimed it.
        await CaseMessage.raw("UPDATE service_mail_lease SET expires_at = 0").run()
        assert await mailpoll.claim_lease("worker-b", 300)
        return result

    monkeypatch.setattr(email_in, "receive", receive_then_lose_the_lease)
    results = await mailpoll.fetch_once(poll_rapport, "worker-a")
    assert [r["status"] for r in results] == ["created"]
    assert len(_names(tmp_path, "new")) == 1  # left for the new holder
    assert (await mailpoll.lease_state())["holder"] == "worker-b"  # not released by worker-a


async def test_cli_fetch_mail_says_when_another_process_polls(poll_rapport, tmp_path):
    from click.testing import CliRunner

    from core.app import Rapport
    from core.cli import cli

    _deliver(tmp_path, eml("plain.eml"))
    assert await mailpoll.claim_lease("mailhost:4242:abcd", 300)
    cli_rapport = Rapport(poll_rapport.settings, plugins=["service"], plugin_settings={
        "service": {"maildir": str(tmp_path / "Maildir")}})
    cli_rapport.pm.hook.register_commands(cli=cli)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["service", "fetch-mail"],
                                     obj={"rapport": cli_rapport})
    poll_rapport.activate()
    assert result.exit_code != 0
    assert "another process (mailhost:4242:abcd) is fetching mail" in result.output
    assert await Case.count().run() == 0
    assert len(_names(tmp_path, "new")) == 1


async def test_the_mail_job_skips_while_the_command_holds_the_lease(make_rapport, tmp_path):
    from core import jobs
    from core.jobs_tables import JobRow
    from tests.conftest import connected

    _deliver(tmp_path, eml("plain.eml"))
    rapport = await make_rapport(["service"], {"service": {
        "maildir": str(tmp_path / "Maildir"), "mail_poll_seconds": 60}})
    async with connected(rapport):
        assert await mailpoll.claim_lease("cli-host:4242:abcd", 300)  # fetch-mail runs
        skipped = await jobs.enqueue(rapport, "service.mail.fetch")
        await jobs.run_pending(rapport)
        assert await Case.count().run() == 0 and len(_names(tmp_path, "new")) == 1
        assert (await JobRow.select(JobRow.status).where(JobRow.id == skipped).first().run()
                )["status"] == "done"  # skipping is no failure
        await mailpoll.release_lease("cli-host:4242:abcd")
        await jobs.enqueue(rapport, "service.mail.fetch")
        await jobs.run_pending(rapport)
        assert await Case.count().run() == 1 and _names(tmp_path, "new") == []
        assert (await mailpoll.lease_state())["holder"] == ""  # given back after the pass


async def test_a_missing_lease_row_is_made_again(poll_rapport, tmp_path):
    _deliver(tmp_path, eml("plain.eml"))
    await CaseMessage.raw("DELETE FROM service_mail_lease").run()
    [result] = await mailpoll.fetch_once(poll_rapport, "worker-a")
    assert result["status"] == "created"
    assert await mailpoll.claim_lease("worker-b", 300)  # given up after the pass
    assert (await mailpoll.lease_state())["holder"] == "worker-b"
