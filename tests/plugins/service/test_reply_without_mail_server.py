"""Without a mail server, a case reply is saved in the outbox folder: the case page says it
was not e-mailed, never "E-mail sent"."""

from __future__ import annotations

import re

from plugins.service import cases, email_in
from tests.plugins.service.cases_helpers import staff_actor
from tests.plugins.service.email_helpers import eml


async def test_reply_kept_in_the_outbox_is_shown_as_not_sent(service_client, monkeypatch):
    monkeypatch.delenv("RAPPORT_SMTP_URL", raising=False)
    rapport = service_client.rapport
    result = await email_in.receive(rapport, eml("plain.eml"))
    agent = await staff_actor(rapport, "grace@example.test")
    reply = await cases.add_message(rapport, agent, result["case_id"], kind="reply",
                                    body="Please use the left paper tray.")
    page = (await service_client.get(f"/service/cases/{result['case_id']}")).text
    reply_html = re.search(rf'id="message-{reply["id"]}".*?</li>', page, re.S).group(0)
    assert "E-mail sent" not in reply_html
    assert "E-mail not sent" in reply_html and "outbox" in reply_html
    assert list((rapport.settings.data_dir / "outbox").glob("*.eml"))
