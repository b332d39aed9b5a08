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
