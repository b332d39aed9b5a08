"""Writing an e-mail to a customer from the 360° page: templates, the contact policy, who may,
and the truth about where the message went (mail server or outbox)."""

from __future__ import annotations

from core.audit import AuditEntry
from core.customers.tables import CustomerEmail
from core.identity.tables import Team
from core.interactions.tables import EmailTemplate, Interaction
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.interactions.conftest import add_customer
from tests.plugins.service.email_helpers import smtp_down, smtp_sink  # noqa: F401 (fixtures)


async def _ada(**values) -> int:
    customer = await add_customer(first_name="Ada", last_name="Lovelace",
                                  primary_email="ada@example.test", **values)
    await CustomerEmail.insert(CustomerEmail(customer=customer, email="ada@work.example")).run()
    return customer


async def _send(client, customer: int, **data):
    form = {"to": "ada@example.test", "subject": "Your renewal", "body": "Hello Ada,\n\nsee you."}
    form.update(data)
    return await client.post(f"/customers/{customer}/email", data=form,
                             headers=await csrf_headers(client), follow_redirects=False)


async def test_email_is_sent_through_the_mail_server_and_logged(admin_client,
                                                                smtp_sink):  # noqa: F811
    customer = await _ada()
    page = (await admin_client.get(f"/customers/{customer}")).text
    assert f'href="/customers/{customer}/email"' in page
    form = (await admin_client.get(f"/customers/{customer}/email")).text
    assert "ada@example.test" in form and "ada@work.example" in form and ">Send<" in form

    answer = await _send(admin_client, customer, to="ada@work.example")
    assert answer.status_code == 303
    done = (await admin_client.get(answer.headers["location"])).text
    assert "E-mail sent." in done and "outbox" not in done
    [message] = smtp_sink.messages
    assert message["to"] == ["ada@work.example"]
    assert message["message"]["Subject"] == "Your renewal"
    assert "see you." in message["message"].get_content()
    row = await Interaction.select().first().run()
    assert (row["channel"], row["direction"], row["subject"], row["customer"]) == (
        "email", "outbound", "Your renewal", customer)
    assert row["notes"] == "Hello Ada,\n\nsee you." and row["user"] == admin_client.user_id
    assert await AuditEntry.exists().where((AuditEntry.action == "email")
                                           & (AuditEntry.record_id == str(row["id"]))).run()
    timeline = (await admin_client.get(f"/customers/{customer}/timeline")).text
    assert "Your renewal" in timeline


async def test_without_a_mail_server_the_page_says_it_went_to_the_outbox(admin_client,
                                                                         monkeypatch):
    monkeypatch.delenv("RAPPORT_SMTP_URL", raising=False)
    customer = await _ada()
    form = (await admin_client.get(f"/customers/{customer}/email")).text
    assert "Save to the outbox" in form and "no mail server is set up" in form.lower()
    answer = await _send(admin_client, customer)
    done = (await admin_client.get(answer.headers["location"])).text
    assert "E-mail sent." not in done and "saved in the outbox folder" in done
    assert list((admin_client.rapport.settings.data_dir / "outbox").glob("*.eml"))
    row = await Interaction.select(Interaction.channel, Interaction.outcome).first().run()
    assert row == {"channel": "email", "outcome": "saved to the outbox"}


async def test_contact_policy_refuses_and_nothing_is_sent_or_logged(admin_client,
                                                                   smtp_sink):  # noqa: F811
    opted_out = await _ada(opted_out_channels="email")
    answer = await _send(admin_client, opted_out)
    assert answer.status_code == 400
    assert 'id="to-error"' in answer.text
    assert "Not sent: Ada Lovelace opted out of being contacted by email." in answer.text
    do_not_contact = await add_customer("Grace Hopper", primary_email="grace@example.test",
                                        do_not_contact=True)
    answer = await _send(admin_client, do_not_contact, to="grace@example.test")
    assert answer.status_code == 400 and "asked not to be contacted at all" in answer.text
    # The form says so before anyone writes anything, and the button is off.
    form = (await admin_client.get(f"/customers/{do_not_contact}/email")).text
    assert "asked not to be contacted at all" in form and "disabled" in form
    # An address that is not the customer's, and empty fields, are named beside the field.
    fine = await add_customer("Mary Somerville", primary_email="mary@example.test")
    answer = await _send(admin_client, fine, to="someone@else.test", subject="", body=" ")
    assert answer.status_code == 400
    for field in ("to", "subject", "body"):
        assert f'id="{field}-error"' in answer.text
    assert smtp_sink.messages == [] and await Interaction.count().run() == 0


async def test_only_staff_who_may_record_interactions_with_the_customer_may_email(
        client, smtp_sink):  # noqa: F811
    owner = await make_user("rep@example.test", roles=["sales_representative"], teams=["North"])
    await make_user("viewer@example.test", roles=["read_only"])
    mine = await _ada(owner=owner)
    colleague = await make_user("colleague@example.test", roles=["sales_representative"],
                                teams=["North"])
    north = (await Team.select(Team.id).where(Team.name == "North").first().run())["id"]
    theirs = await add_customer("Grace Hopper", primary_email="grace@example.test",
                                owner=colleague, team=north)

    await sign_in(client, "viewer@example.test")
    assert f"/customers/{mine}/email" not in (await client.get(f"/customers/{mine}")).text
    assert (await client.get(f"/customers/{mine}/email")).status_code == 403
    assert (await _send(client, mine)).status_code == 403

    client.cookies.clear()
    await sign_in(client, "rep@example.test")
    assert (await client.get(f"/customers/{mine}/email")).status_code == 200
    # A colleague's customer the rep sees (team) but may not record interactions with (own).
    page = await client.get(f"/customers/{theirs}")
    assert page.status_code == 200 and f"/customers/{theirs}/email" not in page.text
    answer = await _send(client, theirs, to="grace@example.test")
    assert answer.status_code == 403
    assert (await _send(client, mine)).status_code == 303
    assert [m["to"] for m in smtp_sink.messages] == [["ada@example.test"]]
    # Templates are administrators' business.
    assert (await client.get("/admin/email-templates")).status_code == 403


async def test_templates_are_checked_at_save_and_filled_in_for_the_customer(admin_client):
    headers = await csrf_headers(admin_client)
    answer = await admin_client.post("/admin/email-templates/new", headers=headers, data={
        "name": "Renewal", "subject": "Renewal for {{ account_name }}",
        "body": "Dear {{ firstname }},\n{% if %}"}, follow_redirects=False)
    assert answer.status_code == 400
    assert 'id="body-error"' in answer.text and "cannot be read as a template" in answer.text
    answer = await admin_client.post("/admin/email-templates/new", headers=headers, data={
        "name": "Renewal", "subject": "Renewal", "body": "Dear {{ firstname }},"},
        follow_redirects=False)
    assert answer.status_code == 400
    assert "{{ firstname }}, which is not a field" in answer.text
    # The sandbox: reaching into Python objects is refused too.
    answer = await admin_client.post("/admin/email-templates/new", headers=headers, data={
        "name": "Sneaky", "subject": "Hi", "body": "{{ name.__class__.__mro__ }}"},
        follow_redirects=False)
    assert answer.status_code == 400 and 'id="body-error"' in answer.text
    assert await EmailTemplate.count().run() == 0

    answer = await admin_client.post("/admin/email-templates/new", headers=headers, data={
        "name": "Renewal", "subject": "Your renewal, {{ first_name }}",
        "body": "Dear {{ first_name }} {{ last_name }},\n\nregards,\n{{ sender_name }}"},
        follow_redirects=False)
    assert answer.status_code == 303
    listing = (await admin_client.get(answer.headers["location"])).text
    assert "Template saved." in listing and "Renewal" in listing
    template = await EmailTemplate.select().first().run()
    duplicate = await admin_client.post("/admin/email-templates/new", headers=headers, data={
        "name": "Renewal", "subject": "x", "body": "y"}, follow_redirects=False)
    assert duplicate.status_code == 400 and "already has this name" in duplicate.text

    customer = await _ada()
    form = (await admin_client.get(f"/customers/{customer}/email?template={template['id']}"))
    assert "Your renewal, Ada" in form.text
    assert "Dear Ada Lovelace,\n\nregards,\nAdmin" in form.text

    answer = await admin_client.post(f"/admin/email-templates/{template['id']}/delete",
                                     headers=headers, follow_redirects=False)
    assert answer.status_code == 303 and await EmailTemplate.count().run() == 0
    assert await AuditEntry.count().where(AuditEntry.record_type == "core_email_template"
                                          ).run() == 2


async def test_a_mail_server_that_cannot_be_reached_leaves_nothing_logged(admin_client,
                                                                          smtp_down):  # noqa: F811
    customer = await _ada()
    answer = await _send(admin_client, customer)
    assert answer.status_code == 400 and 'id="to-error"' in answer.text
    assert "nothing was sent or logged" in answer.text
    assert await Interaction.count().run() == 0
    assert not await AuditEntry.exists().where(AuditEntry.action == "email").run()
