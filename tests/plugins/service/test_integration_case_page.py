"""Where the service plugin's parts meet on the staff side: the case page shows repair visits,
what became of each e-mail (with "Send again" for a failed reply), the setup page links to the
e-mail templates, large uploads get a readable error, and an agent is not notified of a case
they opened themselves."""

from __future__ import annotations

import re

from core import jobs
from plugins.service import cases
from plugins.service.tables import CaseMessage
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service import email_helpers
from tests.plugins.service.conftest import new_customer, post_form

smtp_sink = email_helpers.smtp_sink

MB = 1024 * 1024


async def _csrf(client) -> str:
    return client.cookies["csrftoken"]


# --- 1. visits on the case page --------------------------------------------------------------


async def test_case_page_loads_its_visits_and_offers_a_visit_for_maintenance(service_client):
    from plugins.service import visits

    rapport = service_client.rapport
    customer = await new_customer("Ada Lovelace")
    repair = await cases.open_case(rapport, None, customer_id=customer, subject="Boiler leaks",
                                   case_type="maintenance")
    question = await cases.open_case(rapport, None, customer_id=customer,
                                     subject="Opening hours?", case_type="information_request")

    page = (await service_client.get(f"/service/cases/{repair['id']}")).text
    section = re.search(r'<section class="service-visits"[^>]*>(.*?)</section>', page, re.S)
    assert section, page
    assert f'hx-get="/service/cases/{repair["id"]}/visits"' in section.group(0)
    assert 'hx-trigger="load"' in section.group(0) and 'hx-swap="outerHTML"' in section.group(0)
    # Without JavaScript: a plain link to the visits, and the scheduling link.
    assert f'href="/service/cases/{repair["id"]}/visits"' in section.group(1)
    assert f'href="/service/cases/{repair["id"]}/visits/new"' in section.group(1)
    other = (await service_client.get(f"/service/cases/{question['id']}")).text
    assert f'hx-get="/service/cases/{question["id"]}/visits"' in other
    assert f'/service/cases/{question["id"]}/visits/new' not in other

    fragment = await service_client.get(f"/service/cases/{repair['id']}/visits",
                                        headers={"hx-request": "true"})
    assert fragment.status_code == 200 and "No visits scheduled" in fragment.text
    await visits.schedule(rapport, None, repair["id"], assignee=service_client.user_id,
                          starts_at="2030-03-04T09:00", ends_at="2030-03-04T10:00",
                          notes="Bring a new gasket")
    fragment = await service_client.get(f"/service/cases/{repair['id']}/visits",
                                        headers={"hx-request": "true"})
    assert "Bring a new gasket" in fragment.text and "04 Mar 2030" in fragment.text


async def test_only_users_who_may_edit_are_offered_a_visit(service_rapport):
    async with app_client(service_rapport) as client:
        await make_user("reader@example.test", roles=["read_only"])
        customer = await new_customer()
        case = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Boiler", case_type="maintenance")
        await sign_in(client, "reader@example.test")
        page = await client.get(f"/service/cases/{case['id']}")
        assert page.status_code == 200
        assert f'/service/cases/{case["id"]}/visits"' in page.text
        assert "/visits/new" not in page.text


# --- 2. e-mail outcome and "Send again" ------------------------------------------------------


async def test_failed_reply_shows_the_error_and_can_be_sent_again_once(
        service_client, smtp_sink, monkeypatch):
    from tests.plugins.service.email_helpers import free_port

    rapport = service_client.rapport
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    with monkeypatch.context() as down:
        down.setenv("RAPPORT_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
        case = await cases.open_case(rapport, None, customer_id=customer, subject="Jam")
        sent = await post_form(service_client, f"/service/cases/{case['id']}/messages",
                               {"kind": "reply", "body": "Use the left tray."})
        assert sent.status_code == 303
    assert smtp_sink.messages == []
    ack, reply = await CaseMessage.select().where(CaseMessage.case == case["id"]).where(
        CaseMessage.kind == "reply").order_by(CaseMessage.id).run()
    assert ack["author_user"] is None and ack["delivery"] == "failed"
    assert reply["delivery"] == "failed" and reply["delivery_detail"]

    page = (await service_client.get(f"/service/cases/{case['id']}")).text
    ack_html = re.search(rf'id="message-{ack["id"]}".*?</li>', page, re.S).group(0)
    reply_html = re.search(rf'id="message-{reply["id"]}".*?</li>', page, re.S).group(0)
    assert "Automatic e-mail" in ack_html and "Reply</strong> by" not in ack_html
    assert "E-mail not sent" in ack_html and "send-again" not in ack_html
    assert "Reply</strong> by" in reply_html and "E-mail not sent" in reply_html
    # The transport's error is shown (HTML-escaped as the page escapes everything).
    assert reply["delivery_detail"].split(":")[0] in reply_html
    action = f"/service/cases/{case['id']}/messages/{reply['id']}/send-again"
    assert f'action="{action}"' in reply_html and "Send again" in reply_html

    again = await post_form(service_client, action, {})
    assert again.status_code == 303
    assert again.headers["location"].endswith(f"#message-{reply['id']}")
    assert [m["to"] for m in smtp_sink.messages] == [["ada@example.test"]]
    assert "Use the left tray." in smtp_sink.messages[0]["message"].get_body(
        ("plain",)).get_content()
    page = (await service_client.get(f"/service/cases/{case['id']}")).text
    reply_html = re.search(rf'id="message-{reply["id"]}".*?</li>', page, re.S).group(0)
    assert "E-mail sent" in reply_html and "Send again" not in reply_html

    # A reply that went out is never sent a second time.
    twice = await post_form(service_client, action, {})
    assert twice.status_code == 409 and "not sent again" in twice.text
    assert len(smtp_sink.messages) == 1
    # Nor is an automatic e-mail resent through this route.
    ack_action = f"/service/cases/{case['id']}/messages/{ack['id']}/send-again"
    assert (await post_form(service_client, ack_action, {})).status_code == 404
    assert len(smtp_sink.messages) == 1


async def test_suppressed_and_sent_outcomes_are_explained(service_client):
    rapport = service_client.rapport
    customer = await new_customer("Ada Lovelace")
    case = await cases.open_case(rapport, None, customer_id=customer, subject="Quiet")
    rows = await CaseMessage.insert(
        CaseMessage(case=case["id"], kind="reply", body="Automated hello", delivery="suppressed",
                    delivery_detail="The customer asked not to be contacted."),
        CaseMessage(case=case["id"], kind="reply", body="Agent words", delivery="sent",
                    author_user=service_client.user_id,
                    delivery_detail="accepted by mail.example.test:25"),
    ).returning(CaseMessage.id).run()
    page = (await service_client.get(f"/service/cases/{case['id']}")).text
    suppressed = re.search(rf'id="message-{rows[0]["id"]}".*?</li>', page, re.S).group(0)
    sent = re.search(rf'id="message-{rows[1]["id"]}".*?</li>', page, re.S).group(0)
    assert "Automatic e-mail" in suppressed and "contact policy" in suppressed
    assert "The customer asked not to be contacted." in suppressed
    assert "E-mail sent" in sent and "accepted by mail.example.test:25" in sent
    assert "Send again" not in page
    api = (await service_client.get(f"/api/v1/service/cases/{case['id']}")).json()
    outcome = {m["id"]: (m["delivery"], m["delivery_detail"]) for m in api["messages"]}
    assert outcome[rows[0]["id"]] == ("suppressed", "The customer asked not to be contacted.")


async def test_send_again_needs_edit_rights_on_the_case(service_rapport):
    async with app_client(service_rapport) as client:
        await make_user("reader2@example.test", roles=["read_only"])
        boss = await make_user("boss9@example.test")
        customer = await new_customer()
        case = await cases.open_case(service_rapport, None, customer_id=customer, subject="X")
        rows = await CaseMessage.insert(CaseMessage(
            case=case["id"], kind="reply", body="Hello", delivery="failed", author_user=boss,
            delivery_detail="SMTPConnectError: refused")).returning(CaseMessage.id).run()
        await sign_in(client, "reader2@example.test")
        page = await client.get(f"/service/cases/{case['id']}")
        assert "SMTPConnectError: refused" in page.text and "Send again" not in page.text
        response = await post_form(
            client, f"/service/cases/{case['id']}/messages/{rows[0]['id']}/send-again", {})
        assert response.status_code == 403
        row = await CaseMessage.select(CaseMessage.delivery).where(
            CaseMessage.id == rows[0]["id"]).first().run()
        assert row["delivery"] == "failed"


# --- 3. setup links to the e-mail templates --------------------------------------------------


async def test_service_setup_links_to_the_email_template_editor(service_client):
    page = await service_client.get("/service/admin")
    assert page.status_code == 200
    assert 'href="/service/admin/email-templates"' in page.text
    assert (await service_client.get("/service/admin/email-templates")).status_code == 200


# --- 4. uploads above Litestar's default body limit ------------------------------------------


async def _post_file(client, path: str, values: dict, data: bytes):
    token = await _csrf(client)
    return await client.post(path, data={**values, "_csrf_token": token},
                             files=[("attachments", ("big.pdf", data, "application/pdf"))],
                             headers={"x-csrftoken": token}, follow_redirects=False)


async def test_a_file_over_the_limit_is_refused_naming_the_field_not_with_a_bare_413(
        service_client):
    customer = await new_customer()
    big = b"%PDF-1.4\n" + b"0" * (11 * MB)  # over attachment_max_bytes (10 MB) and Litestar's
    created = await _post_file(service_client, "/service/cases", {
        "customer": str(customer), "subject": "Big scan", "case_type": "service_request",
        "priority": "normal", "channel": "phone"}, big)
    assert created.status_code == 400
    assert 'id="attachments-error"' in created.text
    case = await cases.open_case(service_client.rapport, None, customer_id=customer,
                                 subject="Reply with a file")
    replied = await _post_file(service_client, f"/service/cases/{case['id']}/messages",
                               {"kind": "reply", "body": "See attached"}, big)
    assert replied.status_code == 400 and 'id="attachments-error"' in replied.text
    assert await CaseMessage.count().where((CaseMessage.case == case["id"])
                                           & (CaseMessage.body == "See attached")) == 0


async def test_a_body_over_the_form_bound_gets_a_readable_error(service_client):
    from plugins.service.uploads import body_limit

    limit = body_limit(service_client.rapport.plugin_settings("service"), "form")
    assert limit == 51 * MB  # 5 files of the default 10 MB, and 1 MB for the rest
    customer = await new_customer()
    case = await cases.open_case(service_client.rapport, None, customer_id=customer,
                                 subject="Huge")
    token = await _csrf(service_client)
    # The announced length is refused before any byte is read, so no need to send it all.
    headers = {"x-csrftoken": token, "content-length": str(limit + 1),
               "content-type": "multipart/form-data; boundary=xyz"}
    created = await service_client.post("/service/cases", content=b"--xyz--\r\n",
                                        headers=headers, follow_redirects=False)
    assert created.status_code == 413
    assert 'id="attachments-error"' in created.text and "too large together" in created.text
    replied = await service_client.post(f"/service/cases/{case['id']}/messages",
                                        content=b"--xyz--\r\n", headers=headers,
                                        follow_redirects=False)
    assert replied.status_code == 303
    page = await service_client.get(replied.headers["location"].split("#")[0])
    assert 'id="attachments-error"' in page.text and "too large together" in page.text


async def test_api_refuses_large_files_as_a_problem_naming_attachments(service_client):
    import base64

    from plugins.service.uploads import body_limit

    customer = await new_customer()
    big = base64.b64encode(b"%PDF-1.4\n" + b"0" * (11 * MB)).decode()  # ~15 MB of JSON
    response = await service_client.post("/api/v1/service/cases", json={
        "customer_id": customer, "subject": "Scan",
        "attachments": [{"filename": "scan.pdf", "content_base64": big}]})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["field"] == "attachments"
    case = await cases.open_case(service_client.rapport, None, customer_id=customer,
                                 subject="API reply")
    response = await service_client.post(
        f"/api/v1/service/cases/{case['id']}/messages", content=b"{}",
        headers={"content-type": "application/json",
                 "content-length": str(body_limit(service_client.rapport.plugin_settings(
                     "service"), "json") + 1)})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "attachments"


# --- 5. no "assigned to you" for one's own case ----------------------------------------------


async def test_agent_opening_a_case_is_not_told_it_was_assigned_to_them(service_rapport):
    from core.notifications.tables import Notification
    from plugins.service.notifications import push_messages

    published = []

    async def listen(event):
        published.append(event)

    service_rapport.event_listeners.append(listen)
    async with app_client(service_rapport) as client:
        agent = await make_user("field@example.test", roles=["field_representative"])
        customer = await new_customer("Own Customer", owner=agent)
        await sign_in(client, "field@example.test")
        response = await post_form(client, "/service/cases", {
            "customer": str(customer), "subject": "My own case", "case_type": "maintenance",
            "priority": "normal", "channel": "phone"})
        assert response.status_code == 303, response.text
        case_id = int(response.headers["location"].rsplit("/", 1)[1])
        assert (await cases.get_case(case_id))["owner"] == agent
        [assigned] = [e for e in published if e.name == "service.case.assigned"]
        assert assigned.payload["owner_id"] == agent and assigned.actor_id == agent
        assert await push_messages(service_rapport, assigned) == []
        await jobs.run_pending(service_rapport)  # case events are durable: the worker notifies
        assert await Notification.count().where(Notification.user == agent) == 0

        # Someone else giving them a case does notify them (so the check above can fail).
        boss = await make_user("boss7@example.test")
        other = await cases.open_case(service_rapport, None, customer_id=customer,
                                      subject="From the boss")
        from core.identity.users import load_actor

        await cases.assign(service_rapport, await load_actor(service_rapport, boss),
                           other["id"], owner_id=agent)
        [message] = await push_messages(service_rapport, published[-1])
        assert message.user_id == agent and "assigned to you" in message.title
        # ... and reaches their in-app inbox, where their own case did not.
        await jobs.run_pending(service_rapport)
        assert await Notification.count().where(Notification.user == agent) == 1
