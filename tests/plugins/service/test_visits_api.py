"""The visits REST API: schedule, list, reschedule, change notes and cancel a case's visits,
a representative's visits by keyset; permissions, case scopes (404), errors as problem+json
naming the field, and the paths in the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.visits_helpers import new_case, new_customer

VISITS = "/api/v1/service/visits"


def assert_problem(response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


async def login(client, email: str) -> None:
    await sign_in(client, email)
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]


async def _setup():
    """A field representative who owns a customer's open maintenance case."""
    field = await make_user("fei@example.test", roles=("field_representative",),
                            name="Fei Field")
    customer = await new_customer("Mrs Boiler", owner=field)
    case = await new_case(customer, subject="Boiler makes a noise", owner=field)
    return field, customer, case


async def test_schedule_reschedule_and_cancel_a_visit(service_client):
    from core.interactions.tables import Interaction
    from plugins.service.tables import CaseEvent

    field, _, case = await _setup()
    case_visits = f"/api/v1/service/cases/{case['id']}/visits"
    created = await service_client.post(case_visits, json={
        "assignee": field, "starts_at": "2031-05-06T09:30:00Z",
        "ends_at": "2031-05-06T11:00:00Z", "notes": "Bring a spare valve"})
    assert created.status_code == 201, created.text
    visit = created.json()
    assert created.headers["location"] == visit["url"]
    assert visit["status"] == "scheduled" and visit["assignee_name"] == "Fei Field"
    planned = await Interaction.select().where(
        Interaction.id == visit["interaction_id"]).first().run()
    assert planned["user"] == field and planned["channel"] == "visit"
    assert planned["occurred_at"] == datetime(2031, 5, 6, 9, 30, tzinfo=UTC)

    listed = (await service_client.get(case_visits)).json()["data"]
    assert [(v["id"], v["notes"], v["reported"]) for v in listed] == [
        (visit["id"], "Bring a spare valve", False)]

    moved = await service_client.patch(visit["url"], json={
        "starts_at": "2031-05-07T14:00:00+02:00", "ends_at": None})
    assert moved.status_code == 200, moved.text
    assert moved.json()["notes"] == "Bring a spare valve"  # kept
    planned = await Interaction.select().where(
        Interaction.id == visit["interaction_id"]).first().run()
    assert planned["occurred_at"] == datetime(2031, 5, 7, 12, 0, tzinfo=UTC)
    noted = await service_client.patch(visit["url"], json={"notes": "Gate code 1234"})
    assert noted.json()["notes"] == "Gate code 1234"
    assert noted.json()["starts_at"].startswith("2031-05-07T12:00")

    cancelled = await service_client.post(f"{visit['url']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert not await Interaction.exists().where(
        Interaction.id == visit["interaction_id"]).run()
    assert await CaseEvent.count().where((CaseEvent.case == case["id"])
                                         & (CaseEvent.kind == "visit")).run() == 4
    assert_problem(await service_client.post(f"{visit['url']}/cancel"), 422, "status")
    assert_problem(await service_client.patch(visit["url"], json={"notes": "x"}), 422,
                   "status")


async def test_a_representatives_visits_page_by_keyset_in_time_order(service_client):
    from plugins.service import visits

    field, customer, case = await _setup()
    other = await new_case(customer, subject="Second boiler", owner=field)
    starts = ["2031-05-06T09:00", "2031-05-06T09:00", "2031-05-08T10:00", "2031-05-07T10:00",
              "2031-06-20T10:00"]
    ids = [(await visits.schedule(service_client.rapport, None,
                                  (case if n % 2 else other)["id"], assignee=field,
                                  starts_at=at))["id"] for n, at in enumerate(starts)]
    seen, url = [], f"{VISITS}?assignee={field}&from=2031-05-01&to=2031-06-01&limit=2"
    while url:
        page = (await service_client.get(url)).json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        url = (f"{VISITS}?assignee={field}&from=2031-05-01&to=2031-06-01&limit=2"
               f"&after={page['next']}" if page["next"] else "")
    # Time order, ties by id; the June visit is outside the range.
    assert [v["id"] for v in seen] == [ids[0], ids[1], ids[3], ids[2]]
    assert seen[0]["case_number"] == other["number"]
    assert seen[0]["customer_name"] == "Mrs Boiler"
    await visits.cancel(service_client.rapport, None, ids[1])
    scheduled = (await service_client.get(
        f"{VISITS}?assignee={field}&from=2031-05-01&to=2031-06-01&status=scheduled")).json()
    assert [v["id"] for v in scheduled["data"]] == [ids[0], ids[3], ids[2]]

    # A date alone is midnight: an early visit belongs to its day's range.
    early = await visits.schedule(service_client.rapport, None, case["id"], assignee=field,
                                  starts_at="2031-05-06T07:00")
    day = (await service_client.get(
        f"{VISITS}?assignee={field}&from=2031-05-06&to=2031-05-07")).json()
    assert [v["id"] for v in day["data"]] == [early["id"], ids[0], ids[1]]
    await visits.cancel(service_client.rapport, None, early["id"])

    # The representative's own list (no assignee: the caller) shows the same visits.
    await login(service_client, "fei@example.test")
    own = (await service_client.get(f"{VISITS}?from=2031-05-01&to=2031-06-01")).json()
    assert [v["id"] for v in own["data"]] == [early["id"], ids[0], ids[1], ids[3], ids[2]]


async def test_errors_are_problems_naming_the_field(service_client):
    from plugins.service.tables import Visit

    field, _, case = await _setup()
    url = f"/api/v1/service/cases/{case['id']}/visits"
    missing = await service_client.post(url, json={"notes": "x"})
    assert_problem(missing, 422, "assignee")
    assert {e["field"] for e in missing.json()["errors"]} == {"assignee", "starts_at"}
    assert_problem(await service_client.post(url, json={
        "assignee": field, "starts_at": "tomorrow-ish"}), 422, "starts_at")
    assert_problem(await service_client.post(url, json={
        "assignee": field, "starts_at": "2031-05-06T10:00",
        "ends_at": "2031-05-06T09:00"}), 422, "ends_at")
    assert_problem(await service_client.post(url, json={
        "assignee": "fei", "starts_at": "2031-05-06T10:00"}), 422, "assignee")
    reader = await make_user("ro@example.test", roles=("read_only",))
    assert_problem(await service_client.post(url, json={
        "assignee": reader, "starts_at": "2031-05-06T10:00"}), 422, "assignee")
    assert_problem(await service_client.post(url, json={
        "assignee": field, "starts_at": "2031-05-06T10:00", "colour": "red"}), 422, "colour")
    assert not await Visit.exists().run()  # nothing half-written

    created = (await service_client.post(url, json={
        "assignee": field, "starts_at": "2031-05-06T10:00"})).json()
    assert_problem(await service_client.patch(created["url"], json={
        "ends_at": "2031-05-08T10:00"}), 422, "ends_at")
    assert (await Visit.select(Visit.ends_at).first().run())["ends_at"] is None
    assert_problem(await service_client.get(f"{VISITS}?from=someday"), 422, "from")
    assert_problem(await service_client.get(
        f"{VISITS}?from=2031-05-06&to=2031-05-01"), 422, "to")
    assert_problem(await service_client.get(
        f"{VISITS}?from=2031-01-01&to=2033-01-01"), 422, "to")
    assert_problem(await service_client.get(f"{VISITS}?status=later"), 422, "status")
    assert_problem(await service_client.get(f"{VISITS}?after=nonsense"), 422, "after")
    assert_problem(await service_client.get(f"{VISITS}?limit=1000"), 400, "limit")
    gone = await service_client.patch(f"{VISITS}/999999", json={"notes": "x"})
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")


async def test_readers_may_look_but_not_schedule(service_rapport):
    from plugins.service import visits
    from plugins.service.tables import Visit

    async with app_client(service_rapport) as client:
        field, _, case = await _setup()
        visit = await visits.schedule(service_rapport, None, case["id"], assignee=field,
                                      starts_at="2031-05-06T10:00")
        await make_user("ro@example.test", roles=("read_only",))
        await login(client, "ro@example.test")
        url = f"/api/v1/service/cases/{case['id']}/visits"
        assert [v["id"] for v in (await client.get(url)).json()["data"]] == [visit["id"]]
        for response in (
                await client.post(url, json={"assignee": field,
                                             "starts_at": "2031-05-07T10:00"}),
                await client.patch(f"{VISITS}/{visit['id']}", json={"notes": "x"}),
                await client.post(f"{VISITS}/{visit['id']}/cancel")):
            assert response.status_code == 403, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        assert await Visit.count().run() == 1
        assert (await Visit.select().first().run())["status"] == "scheduled"


async def test_cases_outside_the_callers_scope_answer_404(service_rapport):
    from plugins.service import visits

    async with app_client(service_rapport) as client:
        field, customer, mine = await _setup()
        colleague = await make_user("gus@example.test", roles=("field_representative",))
        theirs = await new_case(customer, subject="Someone else's", owner=colleague)
        visit = await visits.schedule(service_rapport, None, theirs["id"], assignee=field,
                                      starts_at="2031-05-06T10:00")
        own = await visits.schedule(service_rapport, None, mine["id"], assignee=field,
                                    starts_at="2031-05-06T12:00")
        await login(client, "fei@example.test")
        url = f"/api/v1/service/cases/{theirs['id']}/visits"
        for response in (
                await client.get(url),
                await client.post(url, json={"assignee": field,
                                             "starts_at": "2031-05-07T10:00"}),
                await client.patch(f"{VISITS}/{visit['id']}", json={"notes": "x"}),
                await client.post(f"{VISITS}/{visit['id']}/cancel")):
            assert response.status_code == 404, response.text
        # Even a visit assigned to them is not listed when its case is out of their reach.
        listed = (await client.get(f"{VISITS}?from=2031-05-01&to=2031-06-01")).json()
        assert [v["id"] for v in listed["data"]] == [own["id"]]
        moved = await client.patch(f"{VISITS}/{own['id']}", json={"notes": "Ring twice"})
        assert moved.status_code == 200 and moved.json()["notes"] == "Ring twice"


async def test_paths_are_in_the_openapi_document(service_client):
    paths = (await service_client.get("/schema/openapi.json")).json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/service/cases/{case_id}/visits"])
    assert "patch" in paths["/api/v1/service/visits/{visit_id}"]
    assert "post" in paths["/api/v1/service/visits/{visit_id}/cancel"]
    listing = paths[VISITS]["get"]
    assert listing["summary"] == "List a representative's visits"
    assert {"assignee", "from", "to", "after", "limit"} <= {
        p["name"] for p in listing["parameters"]}


async def test_a_case_seen_but_not_changeable_refuses_changes_with_403(service_rapport):
    """A sales representative sees their team's cases but changes only their own."""
    from core.identity.tables import Team
    from plugins.service import visits

    async with app_client(service_rapport) as client:
        field, customer, _ = await _setup()
        await make_user("sam@example.test", roles=("sales_representative",), teams=("North",))
        team = await Team.select(Team.id).where(Team.name == "North").first().run()
        case = await new_case(customer, subject="Team case", team=team["id"])
        visit = await visits.schedule(service_rapport, None, case["id"], assignee=field,
                                      starts_at="2031-05-06T10:00")
        await login(client, "sam@example.test")
        url = f"/api/v1/service/cases/{case['id']}/visits"
        assert [v["id"] for v in (await client.get(url)).json()["data"]] == [visit["id"]]
        for response in (
                await client.post(url, json={"assignee": field,
                                             "starts_at": "2031-05-07T10:00"}),
                await client.patch(f"{VISITS}/{visit['id']}", json={"notes": "x"}),
                await client.post(f"{VISITS}/{visit['id']}/cancel")):
            assert response.status_code == 403, response.text
