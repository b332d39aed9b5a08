"""Outbound support mail through a real local SMTP server: acknowledgements, agents' replies,
the contact-policy check, and what happens when the SMTP server is down."""

from __future__ import annotations

from core.customers.tables import Customer
from plugins.service import cases, email_in
from plugins.service.tables import CaseMessage, EmailTemplate
from tests.plugins.service import email_helpers
from tests.plugins.service.cases_helpers import staff_actor
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.email_helpers import eml

mail_rapport = email_helpers.mail_rapport
smtp_down = email_helpers.smtp_down
smtp_sink = email_helpers.smtp_sink


async def _messages(case_id: int) -> list[dict]:
    return await CaseMessage.select().where(CaseMessage.case == case_id).order_by(
        CaseMessage.id).run()


async def test_new_case_is_acknowledged_with_its_number_and_a_stored_message_id(
        mail_rapport, smtp_sink):
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer,
                                 subject="Printer jams", description="It jams.")
    [sent] = smtp_sink.messages
    mail = sent["message"]
    assert sent["to"] == ["ada@example.test"]
    assert mail["From"] == "support@example.com"
    assert f"[{case['number']}]" in mail["Subject"]
    assert mail["Auto-Submitted"] == "auto-replied"
    assert case["number"] in mail.get_body(("plain",)).get_content()
    ack = (await _messages(case["id"]))[-1]
    assert ack["kind"] == "reply" and ack["author_user"] is None
    assert ack["delivery"] == "sent" and ack["message_id"] == mail["Message-ID"]
    fresh = await cases.get_case(case["id"])
    assert fresh["first_responded_at"] is None and fresh["status"] == "new"


async def test_administrators_template_is_used(mail_rapport, smtp_sink):
    await EmailTemplate.insert(EmailTemplate(
        key="acknowledgement", name="Ack", subject="Ticket {{ case.number }} opened",
        body="Dear {{ customer.name }}, see {{ portal_url }}")).run()
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    mail = smtp_sink.messages[0]["message"]
    assert mail["Subject"] == f"Ticket {case['number']} opened [{case['number']}]"
    assert mail.get_body(("plain",)).get_content().startswith("Dear Ada Lovelace, see http")


async def test_no_acknowledgement_for_a_customer_who_asked_not_to_be_contacted(
        mail_rapport, smtp_sink):
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    await Customer.update({Customer.do_not_contact: True}).where(Customer.id == customer).run()
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    assert smtp_sink.messages == []
    ack = (await _messages(case["id"]))[-1]
    assert ack["delivery"] == "suppressed"
    assert "do not contact" in ack["delivery_detail"]


async def test_no_acknowledgement_for_a_customer_who_opted_out_of_email(
        mail_rapport, smtp_sink):
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    await Customer.update({Customer.opted_out_channels: "email"}).where(
        Customer.id == customer).run()
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    assert smtp_sink.messages == []
    assert (await _messages(case["id"]))[-1]["delivery"] == "suppressed"


async def test_acknowledgements_can_be_switched_off(make_rapport, smtp_sink):
    from tests.conftest import connected

    rapport = await make_rapport(["service"], {"service": {"acknowledge": False}})
    async with connected(rapport):
        customer = await new_customer("Ada Lovelace", email="ada@example.test")
        await cases.open_case(rapport, None, customer_id=customer, subject="Jam")
    assert smtp_sink.messages == []


async def test_agent_reply_is_mailed_in_the_customers_thread(mail_rapport, smtp_sink):
    result = await email_in.receive(mail_rapport, eml("plain.eml"))
    assert result["status"] == "created"
    ack_mail = smtp_sink.messages[0]["message"]
    assert ack_mail["In-Reply-To"] == "<plain-0001@mail.example.test>"
    agent = await staff_actor(mail_rapport, "grace@example.test")
    reply = await cases.add_message(mail_rapport, agent, result["case_id"], kind="reply",
                                    body="Please use the left paper tray.")
    assert len(smtp_sink.messages) == 2
    sent = smtp_sink.messages[1]
    mail = sent["message"]
    assert sent["to"] == ["ada@example.test"]
    assert mail["In-Reply-To"] == "<plain-0001@mail.example.test>"
    assert "<plain-0001@mail.example.test>" in mail["References"]
    assert ack_mail["Message-ID"] in mail["References"]
    assert "Auto-Submitted" not in mail
    assert "Please use the left paper tray." in mail.get_body(("plain",)).get_content()
    case = await cases.get_case(result["case_id"])
    assert f"[{case['number']}]" in mail["Subject"]
    row = await CaseMessage.select().where(CaseMessage.id == reply["id"]).first().run()
    assert row["delivery"] == "sent" and row["message_id"] == mail["Message-ID"]


async def test_agent_reply_to_a_customer_who_opted_out_of_email_is_not_sent_and_says_so(
        mail_rapport, smtp_sink):
    from core.interactions.tables import Interaction

    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    assert len(smtp_sink.messages) == 1  # the acknowledgement, before she opted out
    await Customer.update({Customer.opted_out_channels: "email"}).where(
        Customer.id == customer).run()
    agent = await staff_actor(mail_rapport, "grace@example.test")
    reply = await cases.add_message(mail_rapport, agent, case["id"], kind="reply",
                                    body="Fixed.")
    assert len(smtp_sink.messages) == 1
    row = await CaseMessage.select().where(CaseMessage.id == reply["id"]).first().run()
    assert row["delivery"] == "suppressed" and "opted out" in row["delivery_detail"]
    entry = await Interaction.select().where(Interaction.id == row["interaction_id"]).first().run()
    assert entry["channel"] == "email" and entry["subject"].endswith("(e-mail not sent: contact policy)")
    assert entry["direction"] == "none"  # it reached nobody: not an outbound contact


async def test_agent_reply_to_a_do_not_contact_customer_is_not_sent(mail_rapport, smtp_sink):
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    await Customer.update({Customer.do_not_contact: True}).where(Customer.id == customer).run()
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    reply = await cases.add_message(mail_rapport, agent, case["id"], kind="reply", body="Fixed.")
    assert smtp_sink.messages == []
    row = await CaseMessage.select().where(CaseMessage.id == reply["id"]).first().run()
    assert row["delivery"] == "suppressed" and "do not contact" in row["delivery_detail"]


async def test_agent_replies_are_not_held_back_by_the_fatigue_rule(mail_rapport, smtp_sink):
    from core.interactions.policy import set_fatigue_rule

    await set_fatigue_rule(None, 1, 30)
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    for text in ("First answer.", "Second answer."):
        await cases.add_message(mail_rapport, agent, case["id"], kind="reply", body=text)
    bodies = [m["message"].get_body(("plain",)).get_content() for m in smtp_sink.messages]
    assert sum("answer." in b for b in bodies) == 2


async def test_agent_reply_is_on_the_timeline_as_an_email_whatever_the_case_came_in_by(
        mail_rapport, smtp_sink):
    from core.interactions.tables import Interaction

    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam",
                                 channel="phone")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    reply = await cases.add_message(mail_rapport, agent, case["id"], kind="reply",
                                    body="Fixed.")
    assert reply["channel"] == "email"
    entry = await Interaction.select().where(
        Interaction.id == reply["interaction_id"]).first().run()
    assert entry["channel"] == "email" and entry["direction"] == "outbound"
    opening = await Interaction.select(Interaction.channel).where(
        Interaction.customer == customer).order_by(Interaction.id).first().run()
    assert opening["channel"] == "call"  # the case itself did come in by phone


async def test_sending_failure_is_recorded_and_the_reply_kept(mail_rapport, smtp_down):
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    reply = await cases.add_message(mail_rapport, agent, case["id"], kind="reply",
                                    body="Please use the left paper tray.")
    ack, row = (await _messages(case["id"]))[-2:]
    assert ack["delivery"] == "failed" and ack["delivery_detail"]
    assert row["id"] == reply["id"]
    assert row["delivery"] == "failed" and row["delivery_detail"]
    assert row["body"] == "Please use the left paper tray."


async def test_failed_reply_can_be_sent_again(mail_rapport, smtp_sink, monkeypatch):
    from plugins.service import email_out
    from tests.plugins.service.email_helpers import free_port

    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    with monkeypatch.context() as patch:
        patch.setenv("RAPPORT_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
        reply = await cases.add_message(mail_rapport, agent, case["id"], kind="reply",
                                        body="Try again.")
    assert len(smtp_sink.messages) == 1  # only the acknowledgement
    row = await email_out.send_reply(mail_rapport, reply["id"])
    assert row["delivery"] == "sent"
    assert len(smtp_sink.messages) == 2
    again = await email_out.send_reply(mail_rapport, reply["id"])
    assert again["delivery"] == "sent" and len(smtp_sink.messages) == 2


async def test_internal_notes_are_never_mailed(mail_rapport, smtp_sink):
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    await cases.add_message(mail_rapport, agent, case["id"], kind="note",
                            body="Customer sounds annoyed")
    assert len(smtp_sink.messages) == 1


async def test_files_attached_to_a_reply_go_with_the_mail(mail_rapport, smtp_sink):
    from plugins.service.attachments import NewAttachment
    from tests.plugins.service.cases_helpers import PNG

    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    case = await cases.open_case(mail_rapport, None, customer_id=customer, subject="Jam")
    agent = await staff_actor(mail_rapport, "grace@example.test")
    await cases.add_message(mail_rapport, agent, case["id"], kind="reply",
                            body="See the picture.",
                            attachments=[NewAttachment("tray.png", "image/png", PNG)])
    mail = smtp_sink.messages[-1]["message"]
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "tray.png"
    assert attached.get_content_type() == "image/png" and attached.get_content() == PNG
