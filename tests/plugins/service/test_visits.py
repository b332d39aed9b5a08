"""Repair visits: scheduled from a case for a field representative, they appear in the field
app's agenda like any visit, move and vanish with the case's visit, and the report written in
the field app (notes, photos, signature) shows on the case."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime

from core.identity.users import load_actor
from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.conftest import post_form
from tests.plugins.service.visits_helpers import new_case, new_customer

DAY = date(2031, 5, 6)
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


async def _setup(client):
    """A field representative who owns a customer with an open maintenance case."""
    field = await make_user("fei@example.test", roles=("field_representative",), name="Fei Field")
    customer = await new_customer("Mrs Boiler", owner=field)
    case = await new_case(customer, subject="Boiler makes a noise")
    return field, customer, case


async def _agenda(client, user_id, day=DAY):
    from pwa.field import agenda

    actor = await load_actor(client.rapport, user_id)
    return await agenda(client.rapport, actor, day)


async def test_scheduling_puts_the_visit_in_the_field_agenda_and_on_the_case(service_client):
    from core.audit import AuditEntry
    from core.interactions.tables import Interaction
    from plugins.service.tables import CaseEvent, Visit

    field, customer, case = await _setup(service_client)
    response = await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(field), "starts_at": "2031-05-06T09:30", "ends_at": "2031-05-06T11:00",
        "notes": "Bring a spare valve"})
    assert response.status_code == 303, response.text
    visit = await Visit.select().where(Visit.case == case["id"]).first().run()
    assert visit["assignee"] == field and visit["status"] == "scheduled"
    planned = await Interaction.select().where(Interaction.id == visit["interaction_id"]
                                               ).first().run()
    assert planned["channel"] == "visit" and planned["user"] == field
    assert planned["plugin"] == "service" and planned["plugin_record"] == str(case["id"])
    assert planned["occurred_at"] == datetime(2031, 5, 6, 9, 30, tzinfo=UTC)
    assert planned["duration_seconds"] == 90 * 60
    assert await CaseEvent.exists().where((CaseEvent.case == case["id"])
                                          & (CaseEvent.kind == "visit")).run()
    assert await AuditEntry.exists().where((AuditEntry.record_type == "service_visit")
                                           & (AuditEntry.record_id == str(visit["id"]))).run()

    items = await _agenda(service_client, field)
    visits = [i for i in items if i.kind == "visit"]
    assert len(visits) == 1 and visits[0].customer_id == customer
    assert case["number"] in visits[0].detail

    fragment = await service_client.get(f"/service/cases/{case['id']}/visits")
    assert fragment.status_code == 200
    assert "Fei Field" in fragment.text and "Bring a spare valve" in fragment.text
    assert "No report from the field app yet" in fragment.text


async def test_form_errors_name_each_field(service_client):
    from plugins.service.tables import Visit

    _, _, case = await _setup(service_client)
    viewer = await make_user("val@example.test", roles=("read_only",))
    page = await service_client.get(f"/service/cases/{case['id']}/visits/new")
    assert page.status_code == 200 and "Fei Field" in page.text
    assert "val@example.test" not in page.text  # cannot be sent: not in the list

    response = await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": "", "starts_at": "2031-05-06T09:30", "ends_at": "2031-05-06T08:00"})
    assert response.status_code == 400
    assert "Field representative is required" in response.text
    assert "End must be after the start" in response.text
    response = await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(viewer), "starts_at": "tomorrow"})
    assert response.status_code == 400
    assert "cannot be sent on visits" in response.text
    assert "Start is not a date and time" in response.text
    assert await Visit.count().run() == 0


async def test_reschedule_and_cancel_keep_the_agenda_in_step(service_client):
    from core.interactions.tables import Interaction
    from plugins.service.tables import Visit

    field, _, case = await _setup(service_client)
    await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(field), "starts_at": "2031-05-06T09:30"})
    visit = await Visit.select().where(Visit.case == case["id"]).first().run()

    response = await post_form(service_client, f"/service/visits/{visit['id']}", {
        "assignee": str(field), "starts_at": "2031-05-07T14:00", "notes": "Afternoon"})
    assert response.status_code == 303, response.text
    assert [i for i in await _agenda(service_client, field) if i.kind == "visit"] == []
    moved = [i for i in await _agenda(service_client, field, date(2031, 5, 7))
             if i.kind == "visit"]
    assert len(moved) == 1 and moved[0].starts_at == datetime(2031, 5, 7, 14, tzinfo=UTC)

    response = await post_form(service_client, f"/service/visits/{visit['id']}/cancel", {})
    assert response.status_code == 303
    assert [i for i in await _agenda(service_client, field, date(2031, 5, 7))
            if i.kind == "visit"] == []
    assert not await Interaction.exists().where(Interaction.id == visit["interaction_id"]).run()
    after = await Visit.select().where(Visit.id == visit["id"]).first().run()
    assert after["status"] == "cancelled"
    again = await post_form(service_client, f"/service/visits/{visit['id']}/cancel", {})
    assert again.status_code == 409


async def test_the_field_report_with_photo_and_signature_shows_on_the_case(service_client):
    from pwa import sync

    field, customer, case = await _setup(service_client)
    await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(field), "starts_at": "2031-05-06T09:30"})
    actor = await load_actor(service_client.rapport, field)
    answer = await sync.handle(service_client.rapport, actor, {
        "client_id": str(uuid.uuid4()), "kind": "interaction", "customer_id": customer,
        "channel": "visit", "occurred_at": "2031-05-06T10:15:00Z",
        "notes": "Replaced the valve, boiler quiet now", "outcome": "Done",
        "photos": [PNG_URL], "signature": PNG_URL,
        "check_in": {"lat": 48.85, "lng": 2.35, "at": "2031-05-06T09:35:00Z"}})
    assert answer["status"] == "created"
    from plugins.service.tables import CaseEvent, Visit

    visit = await Visit.select().where(Visit.case == case["id"]).first().run()
    assert visit["status"] == "done"
    assert await CaseEvent.exists().where((CaseEvent.case == case["id"])
                                          & (CaseEvent.new_value == "reported")).run()

    fragment = await service_client.get(f"/service/cases/{case['id']}/visits")
    assert "Replaced the valve, boiler quiet now" in fragment.text
    assert "Checked in at 09:35" in fragment.text
    from pwa.tables import FieldAttachment

    files = await FieldAttachment.select().order_by(FieldAttachment.id).run()
    assert len(files) == 2
    for file in files:
        assert f'src="/field/attachments/{file["id"]}"' in fragment.text
        image = await service_client.get(f"/field/attachments/{file['id']}")
        assert image.status_code == 200 and image.content == PNG
    assert 'alt="Customer signature"' in fragment.text


async def test_due_cases_join_the_agenda_once_and_only_for_their_owner(service_client):
    field, customer, case = await _setup(service_client)
    from plugins.service.tables import Case

    due = datetime(2031, 5, 6, 15, tzinfo=UTC)
    other = await new_case(customer, subject="Radiator cold", owner=field, resolution_due=due)
    await Case.update({Case.owner: field, Case.resolution_due: due}).where(
        Case.id == case["id"]).run()
    await new_case(customer, subject="Someone else's", resolution_due=due)
    await new_case(customer, subject="Closed already", owner=field, resolution_due=due,
                   status="closed")
    await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(field), "starts_at": "2031-05-06T09:30"})

    items = await _agenda(service_client, field)
    cases = [i for i in items if i.kind == "case"]
    assert [i.url for i in cases] == [f"/service/cases/{other['id']}"]  # not the visited one
    assert len([i for i in items if i.kind == "visit"]) == 1


async def test_routes_need_the_case_in_reach(service_client):
    field, customer, case = await _setup(service_client)
    stranger_case = await new_case(await new_customer("Not Fei's"), subject="Elsewhere")
    async with app_client(service_client.rapport) as client:
        await sign_in(client, "fei@example.test")
        # Fei's own scope covers cases Fei owns: this one is not.
        assert (await client.get(f"/service/cases/{stranger_case['id']}/visits")
                ).status_code == 404
        response = await post_form(client, f"/service/cases/{stranger_case['id']}/visits", {
            "assignee": str(field), "starts_at": "2031-05-06T09:30"})
        assert response.status_code == 404
    await make_user("ro@example.test", roles=("read_only",))
    async with app_client(service_client.rapport) as client:
        await sign_in(client, "ro@example.test")
        assert (await client.get(f"/service/cases/{case['id']}/visits")).status_code == 200
        response = await post_form(client, f"/service/cases/{case['id']}/visits", {
            "assignee": str(field), "starts_at": "2031-05-06T09:30"})
        assert response.status_code == 403


async def test_a_report_days_later_or_by_someone_else_leaves_the_visit_scheduled(service_client):
    from plugins.service.tables import Visit
    from pwa import sync

    field, customer, case = await _setup(service_client)
    other = await make_user("oli@example.test", roles=("administrator",), name="Oli Other")
    await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(field), "starts_at": "2031-05-06T09:30"})
    for user_id, when in ((field, "2031-05-09T10:00:00Z"), (other, "2031-05-06T10:00:00Z")):
        actor = await load_actor(service_client.rapport, user_id)
        answer = await sync.handle(service_client.rapport, actor, {
            "client_id": str(uuid.uuid4()), "kind": "interaction", "customer_id": customer,
            "channel": "visit", "occurred_at": when, "notes": "Unrelated visit"})
        assert answer["status"] == "created"
    visit = await Visit.select().where(Visit.case == case["id"]).first().run()
    assert visit["status"] == "scheduled"
    fragment = await service_client.get(f"/service/cases/{case['id']}/visits")
    assert "Unrelated visit" not in fragment.text


async def test_visits_list_is_a_page_without_htmx_and_offers_visits_for_repairs_only(
        service_client):
    _field, customer, repair = await _setup(service_client)
    question = await new_case(customer, subject="Invoice copy", case_type="information_request")

    # htmx swaps the bare list into the case page; the no-JavaScript link opens a whole page.
    fragment = await service_client.get(f"/service/cases/{repair['id']}/visits",
                                        headers={"hx-request": "true"})
    page = await service_client.get(f"/service/cases/{repair['id']}/visits")
    assert "<html" not in fragment.text and "<html" in page.text
    assert "Boiler makes a noise" in page.text
    assert "Schedule a visit" in fragment.text

    other = await service_client.get(f"/service/cases/{question['id']}/visits",
                                     headers={"hx-request": "true"})
    assert other.status_code == 200
    assert "Schedule a visit" not in other.text


async def test_a_dispatcher_in_berlin_schedules_in_berlin_time(service_client):
    from core.identity.tables import User
    from plugins.service.tables import Visit

    await User.update({User.time_zone: "Europe/Berlin"}).where(
        User.id == service_client.user_id).run()
    field, _customer, case = await _setup(service_client)
    form = await service_client.get(f"/service/cases/{case['id']}/visits/new")
    assert "Starts (Europe/Berlin time)" in form.text and "UTC" not in form.text
    response = await post_form(service_client, f"/service/cases/{case['id']}/visits", {
        "assignee": str(field), "starts_at": "2031-01-14T09:00", "notes": ""})
    assert response.status_code == 303, response.text
    visit = await Visit.select().where(Visit.case == case["id"]).first().run()
    assert visit["starts_at"].astimezone(UTC) == datetime(2031, 1, 14, 8, 0, tzinfo=UTC)
    fragment = await service_client.get(f"/service/cases/{case['id']}/visits")
    assert "Tue 14 Jan 2031, 09:00" in fragment.text
    edit = await service_client.get(f"/service/visits/{visit['id']}/edit")
    assert 'value="2031-01-14T09:00"' in edit.text
