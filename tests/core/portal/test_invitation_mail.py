"""Staff are told the truth about an invitation e-mail: sent through the mail server, or only
saved in the outbox folder when none is set up."""

from __future__ import annotations

from core.customers.tables import Customer
from tests.conftest import csrf_headers
from tests.plugins.service.email_helpers import smtp_sink  # noqa: F401 (fixture)


async def _invite(client) -> str:
    row = await Customer.insert(Customer(kind="contact", name="Mary Somerville",
                                         primary_email="mary@example.test")).returning(
        Customer.id).run()
    answer = await client.post(f"/customers/{row[0]['id']}/portal/invite",
                               data={"email": "mary@example.test"},
                               headers=await csrf_headers(client))
    assert answer.status_code == 200
    return answer.text


async def test_without_a_mail_server_the_invitation_is_not_called_sent(admin_client,
                                                                       monkeypatch):
    monkeypatch.delenv("RAPPORT_SMTP_URL", raising=False)
    page = await _invite(admin_client)
    assert "Invitation sent." not in page and "We emailed this link" not in page
    assert "no mail server is set up" in page and "outbox" in page
    assert "pass it on yourself" in page
    assert list((admin_client.rapport.settings.data_dir / "outbox").glob("*.eml"))


async def test_with_a_mail_server_the_invitation_is_sent(admin_client, smtp_sink):  # noqa: F811
    page = await _invite(admin_client)
    assert "Invitation sent." in page and "We emailed this link" in page
    assert "outbox" not in page
    assert [m["to"] for m in smtp_sink.messages] == [["mary@example.test"]]
