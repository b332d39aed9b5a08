"""Inbound support mail from real message files: new cases, threading, attachments, loops."""

from __future__ import annotations

from core.customers.tables import Customer, CustomerEmail
from plugins.service import cases, email_in
from plugins.service.tables import Case, CaseAttachment, CaseMessage, Queue
from tests.plugins.service import email_helpers
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.email_helpers import eml

mail_rapport = email_helpers.mail_rapport
smtp_sink = email_helpers.smtp_sink


async def _conversation(case_id: int) -> list[dict]:
    return await CaseMessage.select().where(CaseMessage.case == case_id).order_by(
        CaseMessage.id).run()


async def test_plain_message_opens_a_case_for_a_new_contact(mail_rapport, smtp_sink):
    result = await email_in.receive(mail_rapport, eml("plain.eml"))
    assert result["status"] == "created"
    case = await cases.get_case(result["case_id"])
    assert case["channel"] == "email" and case["subject"] == "The printer jams on page 2"
    assert case["thread_id"] == "<plain-0001@mail.example.test>"
    customer = await Customer.select().where(Customer.id == case["customer"]).first().run()
    assert customer["name"] == "Ada Lovelace" and customer["primary_email"] == "ada@example.test"
    opening = (await _conversation(case["id"]))[0]
    assert opening["kind"] == "inbound" and opening["author_email"] == "ada@example.test"
    assert "I already\ncleaned the rollers." in opening["body"]
    assert "Analytical Engines" not in opening["body"]  # the signature is cut
    assert [m["to"] for m in smtp_sink.messages] == [["ada@example.test"]]  # acknowledged


async def test_known_customer_is_found_by_any_of_their_addresses(mail_rapport):
    customer = await new_customer("Ada King", email="countess@example.test")
    await CustomerEmail.insert(CustomerEmail(customer=customer, email="ada@example.test")).run()
    result = await email_in.receive(mail_rapport, eml("plain.eml"))
    assert (await cases.get_case(result["case_id"]))["customer"] == customer
    assert await Customer.count().run() == 1


async def test_the_same_message_delivered_twice_is_stored_once(mail_rapport):
    first = await email_in.receive(mail_rapport, eml("plain.eml"))
    again = await email_in.receive(mail_rapport, eml("plain.eml"))
    assert again["status"] == "duplicate" and again["case_id"] == first["case_id"]
    assert await Case.count().run() == 1


async def test_attachment_is_kept_and_a_refused_one_is_named_on_the_case(mail_rapport):
    result = await email_in.receive(mail_rapport, eml("multipart_attachment.eml"))
    assert result["status"] == "created"
    files = await CaseAttachment.select().where(CaseAttachment.case == result["case_id"]).run()
    assert [f["filename"] for f in files] == ["printer-log.txt"]
    assert files[0]["message"] == result["message_id"]
    assert [d["filename"] for d in result["dropped"]] == ["setup.exe"]
    conversation = await _conversation(result["case_id"])
    assert conversation[0]["body"].startswith("The invoice lists three toner cartridges")
    note = [m for m in conversation if m["kind"] == "note"]
    assert len(note) == 1 and "setup.exe" in note[0]["body"]


async def test_html_only_message_becomes_readable_text(mail_rapport):
    result = await email_in.receive(mail_rapport, eml("html_only.eml"))
    case = await cases.get_case(result["case_id"])
    assert case["subject"] == "Where is my order?"
    body = (await _conversation(case["id"]))[0]["body"]
    assert "my order & its invoice never arrived.\nCan you check?" in body
    assert "alert" not in body and "color" not in body and "<p>" not in body


async def test_non_utf8_message_is_decoded(mail_rapport):
    result = await email_in.receive(mail_rapport, eml("latin1.eml"))
    case = await cases.get_case(result["case_id"])
    assert case["subject"] == "Café trop froid"
    assert "machine à expresso" in (await _conversation(case["id"]))[0]["body"]
    customer = await Customer.select().where(Customer.id == case["customer"]).first().run()
    assert customer["name"] == "René Descartes"


async def test_answer_to_the_acknowledgement_threads_and_reopens_the_case(
        mail_rapport, smtp_sink):
    first = await email_in.receive(mail_rapport, eml("plain.eml"))
    ack_id = smtp_sink.messages[0]["message"]["Message-ID"]
    await cases.change_status(mail_rapport, None, first["case_id"], "resolved")
    reply = await email_in.receive(mail_rapport, eml("reply_in_reply_to.eml",
                                                        IN_REPLY_TO=ack_id))
    assert reply["status"] == "threaded" and reply["case_id"] == first["case_id"]
    case = await cases.get_case(first["case_id"])
    assert case["status"] == "open" and case["reopened_count"] == 1
    message = (await _conversation(case["id"]))[-1]
    assert message["body"] == "It jams again since this morning, also with new paper."
    assert message["in_reply_to"] == ack_id and message["author_customer"] == case["customer"]
    assert await Case.count().run() == 1


async def test_subject_tag_threads_only_for_the_cases_customer(mail_rapport):
    first = await email_in.receive(mail_rapport, eml("plain.eml"))
    number = (await cases.get_case(first["case_id"]))["number"]
    tagged = await email_in.receive(mail_rapport, eml("reply_subject_tag.eml", NUMBER=number))
    assert tagged["status"] == "threaded" and tagged["case_id"] == first["case_id"]
    body = (await _conversation(first["case_id"]))[-1]["body"]
    assert body == "One more detail: the error code shown is 13."

    stranger = eml("reply_subject_tag.eml", NUMBER=number).replace(
        b"ada@example.test", b"mallory@example.test").replace(b"tag-0001", b"tag-0002")
    other = await email_in.receive(mail_rapport, stranger)
    assert other["status"] == "created" and other["case_id"] != first["case_id"]


async def test_auto_replies_are_ignored_so_autoresponders_never_loop(mail_rapport, smtp_sink):
    first = await email_in.receive(mail_rapport, eml("plain.eml"))
    number = (await cases.get_case(first["case_id"]))["number"]
    result = await email_in.receive(mail_rapport, eml("auto_reply.eml", NUMBER=number))
    assert result["status"] == "ignored" and "Auto-Submitted" in result["reason"]
    assert len(await _conversation(first["case_id"])) == 2  # message + acknowledgement
    assert len(smtp_sink.messages) == 1
    bounce = (b"From: MAILER-DAEMON@mx.example.test\nTo: support@example.com\n"
              b"Subject: Undelivered Mail\nMessage-ID: <b1@mx>\n\nGone.\n")
    assert (await email_in.receive(mail_rapport, bounce))["status"] == "ignored"
    assert await Case.count().run() == 1


async def test_mail_to_a_queues_address_lands_in_that_queue(mail_rapport):
    await Queue.insert(Queue(name="Printers", email_address="other@support.example.test")).run()
    rows = await Queue.insert(Queue(name="Help desk",
                                    email_address="help@support.example.test")).returning(
        Queue.id).run()
    result = await email_in.receive(mail_rapport, eml("plain.eml"))
    assert (await cases.get_case(result["case_id"]))["queue"] == rows[0]["id"]


async def test_message_without_sender_is_rejected_with_a_reason(mail_rapport):
    result = await email_in.receive(mail_rapport, b"Subject: hi\n\nno sender\n")
    assert result["status"] in ("rejected", "ignored") and result["reason"]
    assert await Case.count().run() == 0
