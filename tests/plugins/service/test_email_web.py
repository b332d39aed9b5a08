"""The inbound e-mail endpoint (shared-secret header, size limit, no CSRF) and the e-mail
template editor (administrators only, validation by rendering, preview)."""

from __future__ import annotations

from plugins.service.tables import Case, EmailTemplate
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.conftest import post_form
from tests.plugins.service.email_helpers import eml

TOKEN = "inbound-secret-0123456789"
URL = "/service/inbound/email"


async def _anonymous_client(make_rapport, **settings):
    rapport = await make_rapport(["service"], {"service": settings})
    return app_client(rapport)


async def test_inbound_endpoint_does_not_exist_without_a_token(make_rapport):
    async with await _anonymous_client(make_rapport) as client:
        response = await client.post(URL, content=eml("plain.eml"),
                                     headers={"content-type": "message/rfc822",
                                              "x-rapport-inbound-token": ""})
        assert response.status_code == 404


async def test_inbound_endpoint_turns_a_raw_message_into_a_case(make_rapport):
    async with await _anonymous_client(make_rapport, inbound_token=TOKEN) as client:
        wrong = await client.post(URL, content=eml("plain.eml"),
                                  headers={"content-type": "message/rfc822",
                                           "x-rapport-inbound-token": "guess"})
        assert wrong.status_code == 403
        missing = await client.post(URL, content=eml("plain.eml"),
                                    headers={"content-type": "message/rfc822"})
        assert missing.status_code == 403
        assert await Case.count().run() == 0
        # No cookie, no CSRF token: a mail server is not a browser.
        created = await client.post(URL, content=eml("plain.eml"),
                                    headers={"content-type": "message/rfc822",
                                             "x-rapport-inbound-token": TOKEN})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "created" and body["case_id"]
        case = await Case.select().where(Case.id == body["case_id"]).first().run()
        assert case["subject"] == "The printer jams on page 2" and case["channel"] == "email"
        again = await client.post(URL, content=eml("plain.eml"),
                                  headers={"content-type": "message/rfc822",
                                           "x-rapport-inbound-token": TOKEN})
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        empty = await client.post(URL, content=b"", headers={"x-rapport-inbound-token": TOKEN})
        assert empty.status_code == 422 and "empty" in empty.json()["detail"]


async def test_inbound_endpoint_refuses_an_oversized_message(make_rapport):
    async with await _anonymous_client(make_rapport, inbound_token=TOKEN,
                                       attachment_max_bytes=1000) as client:
        big = eml("plain.eml") + b"x" * (3 * 1024 * 1024)
        response = await client.post(URL, content=big,
                                     headers={"content-type": "message/rfc822",
                                              "x-rapport-inbound-token": TOKEN})
        assert response.status_code == 413
        assert await Case.count().run() == 0


async def test_administrator_saves_a_template_that_renders(service_client):
    page = await service_client.get("/service/admin/email-templates")
    assert page.status_code == 200 and "Acknowledgement of a new case" in page.text
    saved = await post_form(service_client, "/service/admin/email-templates/acknowledgement", {
        "subject": "Ticket {{ case.number }}", "body": "Dear {{ customer.name }}, thanks."})
    assert saved.status_code == 303
    row = await EmailTemplate.select().where(EmailTemplate.key == "acknowledgement").first().run()
    assert row["subject"] == "Ticket {{ case.number }}"
    page = await service_client.get("/service/admin/email-templates")
    assert "Dear {{ customer.name }}, thanks." in page.text and "Customised" in page.text


async def test_template_that_does_not_render_is_rejected_with_the_error(service_client):
    response = await post_form(service_client, "/service/admin/email-templates/reply", {
        "subject": "Re: {{ case.subject }}", "body": "{{ message.body }} {{ case.nonsense }}"})
    assert response.status_code == 422
    assert "does not render" in response.text and "nonsense" in response.text
    assert 'aria-invalid="true"' in response.text
    broken = await post_form(service_client, "/service/admin/email-templates/reply", {
        "subject": "{% if %}", "body": "x"})
    assert broken.status_code == 422 and "TemplateSyntaxError" in broken.text
    assert await EmailTemplate.count().run() == 0
    unknown = await post_form(service_client, "/service/admin/email-templates/nope",
                              {"subject": "x", "body": "y"})
    assert unknown.status_code == 404


async def test_sandbox_keeps_templates_away_from_python_internals(service_client):
    response = await post_form(service_client, "/service/admin/email-templates/reply", {
        "subject": "x", "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    assert response.status_code == 422 and "SecurityError" in response.text


async def test_preview_renders_sample_data(service_client):
    response = await post_form(service_client,
                               "/service/admin/email-templates/acknowledgement/preview", {
                                   "subject": "Hello {{ customer.first_name }}",
                                   "body": "Your case {{ case.number }}"})
    assert response.status_code == 200
    assert "Hello Ada [CS-000123]" in response.text and "Your case CS-000123" in response.text
    failing = await post_form(service_client,
                              "/service/admin/email-templates/acknowledgement/preview",
                              {"subject": "x", "body": "{{ case.missing }}"})
    assert "cannot be used" in failing.text and "missing" in failing.text


async def test_template_editor_is_for_administrators_only(service_client):
    await make_user("agent@example.test", roles=("read_only",))
    await sign_in(service_client, "agent@example.test")
    assert (await service_client.get("/service/admin/email-templates")).status_code == 403
    response = await post_form(service_client, "/service/admin/email-templates/reply",
                               {"subject": "x", "body": "y"})
    assert response.status_code == 403
