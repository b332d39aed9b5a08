"""The Maildir poller on a real Maildir in a temporary folder, and the CLI command."""

from __future__ import annotations

import mailbox

from plugins.service import mailpoll
from plugins.service.tables import Case, CaseMessage
from tests.plugins.service import email_helpers
from tests.plugins.service.email_helpers import eml

mail_rapport = email_helpers.mail_rapport


def _maildir(tmp_path, *raws: bytes) -> tuple[mailbox.Maildir, list[str]]:
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    keys = []
    for raw in raws:
        message = mailbox.MaildirMessage(raw)
        message.set_subdir("new")
        keys.append(box.add(message))
    return box, keys


async def test_maildir_messages_become_cases_and_move_to_cur(mail_rapport, tmp_path):
    box, keys = _maildir(tmp_path, eml("plain.eml"), eml("html_only.eml"),
                         eml("auto_reply.eml", NUMBER="CS-000001"))
    results = await mailpoll.poll_maildir(mail_rapport, tmp_path / "Maildir")
    assert sorted(r["status"] for r in results) == ["created", "created", "ignored"]
    assert await Case.count().run() == 2
    assert list((tmp_path / "Maildir" / "new").iterdir()) == []
    assert len(list((tmp_path / "Maildir" / "cur").iterdir())) == 3
    assert all("S" in box.get_message(k).get_flags() for k in keys)
    # A second pass finds nothing new and stores nothing twice.
    assert await mailpoll.poll_maildir(mail_rapport, tmp_path / "Maildir") == []
    assert await CaseMessage.count().where(CaseMessage.kind == "inbound").run() == 2


async def test_message_stays_in_new_when_storing_fails(mail_rapport, tmp_path, monkeypatch):
    from plugins.service import email_in

    _maildir(tmp_path, eml("plain.eml"))

    async def broken(rapport, raw):
        raise ConnectionError("database is down")

    monkeypatch.setattr(email_in, "receive", broken)
    [result] = await mailpoll.poll_maildir(mail_rapport, tmp_path / "Maildir")
    assert result["status"] == "error" and "database is down" in result["reason"]
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 1
    monkeypatch.undo()
    [result] = await mailpoll.poll_maildir(mail_rapport, tmp_path / "Maildir")
    assert result["status"] == "created"
    assert list((tmp_path / "Maildir" / "new").iterdir()) == []


async def test_cli_fetch_mail_runs_one_pass_and_says_what_it_did(mail_rapport, tmp_path):
    import asyncio

    from click.testing import CliRunner

    from core.app import Rapport
    from core.cli import cli

    _maildir(tmp_path, eml("plain.eml"), eml("auto_reply.eml", NUMBER="CS-000001"))
    cli_rapport = Rapport(mail_rapport.settings, plugins=["service"], plugin_settings={
        "service": {"maildir": str(tmp_path / "Maildir")}})
    cli_rapport.pm.hook.register_commands(cli=cli)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["service", "fetch-mail"],
                                     obj={"rapport": cli_rapport})
    mail_rapport.activate()
    assert result.exit_code == 0, result.output
    assert "new case" in result.output and "ignored" in result.output
    assert "2 message(s) handled." in result.output
    assert await Case.count().run() == 1


async def test_cli_fetch_mail_needs_a_source(mail_rapport):
    import asyncio

    from click.testing import CliRunner

    from core.app import Rapport
    from core.cli import cli

    cli_rapport = Rapport(mail_rapport.settings, plugins=["service"])
    cli_rapport.pm.hook.register_commands(cli=cli)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["service", "fetch-mail"],
                                     obj={"rapport": cli_rapport})
    mail_rapport.activate()
    assert result.exit_code != 0 and "neither maildir nor imap_host" in result.output


async def test_mail_is_fetched_by_a_recurring_job_while_the_server_runs(make_rapport, tmp_path):
    import asyncio

    from core.jobs_tables import JobRow
    from tests.conftest import app_client

    _maildir(tmp_path, eml("plain.eml"))
    rapport = await make_rapport(["service"], {"service": {
        "maildir": str(tmp_path / "Maildir"), "mail_poll_seconds": 1}}, extra={"worker": "on"})
    async with app_client(rapport):
        for _ in range(400):
            if not list((tmp_path / "Maildir" / "new").iterdir()):
                break
            await asyncio.sleep(0.05)
        assert await Case.count().run() == 1
        assert await JobRow.exists().where(JobRow.name == "service.mail.fetch").run()


async def test_no_mail_job_without_a_mailbox(make_rapport):
    from core import jobs

    rapport = await make_rapport(["service"], {"service": {"mail_poll_seconds": 60}})
    assert "service.mail.fetch" not in jobs.job_types(rapport)
