"""The case service: opening, the status workflow, reopen on reply, notes kept internal,
attachments checked by size and sniffed type, ratings, and events after commit."""

from __future__ import annotations

import pytest

from tests.conftest import app_client
from tests.plugins.service.cases_helpers import EXE, PNG, portal_actor, staff_actor, zip_bytes
from tests.plugins.service.conftest import new_customer


@pytest.fixture
async def env(make_rapport):
    """The app's database (lifespan running) with an agent, and events recorded."""
    rapport = await make_rapport(["service"], {"service": {"attachment_max_bytes": 2000}})
    async with app_client(rapport):
        published = []
        original = rapport.publish

        async def spy(name, payload=None, actor_id=None, **kwargs):
            published.append((name, dict(payload or {})))
            return await original(name, payload, actor_id=actor_id, **kwargs)

        rapport.publish = spy
        rapport.published = published
        rapport.agent = await staff_actor(rapport, "agent@example.test")
        yield rapport


async def test_open_case_numbers_it_records_the_timeline_and_announces_it(env):
    from core.interactions.tables import Interaction
    from plugins.service import cases
    from plugins.service.tables import CaseEvent, CaseMessage

    customer = await new_customer("Grace Hopper")
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="Printer jams",
                                 description="It jams on every page.", priority="high")
    assert case["number"] == f"CS-{case['id']:06d}"
    assert case["status"] == "new" and case["is_open"] and case["priority_rank"] == 1
    assert case["created_by"] == env.agent.id
    opening = await CaseMessage.select().where(CaseMessage.case == case["id"]).run()
    assert [(m["kind"], m["body"]) for m in opening] == [("inbound", "It jams on every page.")]
    entry = await Interaction.select().where(Interaction.id == case["interaction_id"]).first().run()
    assert entry["customer"] == customer and entry["plugin"] == "service"
    assert entry["plugin_record"] == str(case["id"]) and entry["channel"] == "call"
    assert entry["user"] == env.agent.id and entry["visible_in_portal"]
    assert await CaseEvent.count().where(CaseEvent.case == case["id"]).run() == 1
    assert ("service.case.created", {
        "case_id": case["id"], "number": case["number"], "customer_id": customer,
        "owner_id": None, "queue_id": None, "priority": "high",
        "case_type": "service_request", "channel": "phone"}) in env.published


@pytest.mark.parametrize("field, values", [
    ("subject", {"subject": "  "}),
    ("case_type", {"case_type": "gossip"}),
    ("priority", {"priority": "whenever"}),
    ("channel", {"channel": "pigeon"}),
    ("customer_id", {"customer_id": 999999}),
])
async def test_open_case_refuses_bad_input_naming_the_field(env, field, values):
    from plugins.service import cases
    from plugins.service.tables import Case

    customer = await new_customer()
    arguments = {"customer_id": customer, "subject": "Help", **values}
    with pytest.raises(cases.CaseError) as caught:
        await cases.open_case(env, env.agent, **arguments)
    assert caught.value.field == field
    assert await Case.count().run() == 0


async def test_reply_waits_on_the_customer_whose_message_reopens_it(env):
    from plugins.service import cases
    from plugins.service.tables import CaseEvent

    customer = await new_customer()
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="No hot water")
    reply = await cases.add_message(env, env.agent, case["id"], kind="reply",
                                    body="Is the boiler on?")
    assert reply["case"] == case["id"]
    after = await cases.get_case(case["id"])
    assert after["status"] == "waiting" and after["first_responded_at"] is not None
    assert after["waiting_since"] is not None
    await cases.add_message(env, None, case["id"], kind="inbound", body="Yes it is.")
    assert (await cases.get_case(case["id"]))["status"] == "open"

    await cases.change_status(env, env.agent, case["id"], "resolved")
    resolved = await cases.get_case(case["id"])
    assert not resolved["is_open"] and resolved["resolved_at"] is not None
    await cases.change_status(env, env.agent, case["id"], "closed")
    await cases.add_message(env, None, case["id"], kind="inbound", body="It broke again!")
    reopened = await cases.get_case(case["id"])
    assert reopened["status"] == "open" and reopened["is_open"]
    assert reopened["reopened_count"] == 1 and reopened["closed_at"] is None
    kinds = [e["kind"] for e in await CaseEvent.select().where(
        CaseEvent.case == case["id"]).order_by(CaseEvent.id).run()]
    assert kinds.count("reopened") == 1
    assert ("service.case.customer_replied", True) in [
        (name, payload.get("reopened")) for name, payload in env.published]
    # A second reply does not move the first response time.
    first = reopened["first_responded_at"]
    await cases.add_message(env, env.agent, case["id"], kind="reply", body="On my way.")
    assert (await cases.get_case(case["id"]))["first_responded_at"] == first


async def test_workflow_refuses_impossible_moves(env):
    from plugins.service import cases

    customer = await new_customer()
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="Hello")
    await cases.change_status(env, env.agent, case["id"], "closed")
    with pytest.raises(cases.CaseError) as caught:
        await cases.change_status(env, env.agent, case["id"], "waiting")
    assert caught.value.field == "status"
    with pytest.raises(cases.CaseError):
        await cases.change_status(env, env.agent, case["id"], "new")
    with pytest.raises(cases.CaseError):
        await cases.change_status(env, env.agent, case["id"], "pending")


async def test_internal_notes_never_reach_the_customer(env):
    from core.interactions.tables import Interaction
    from plugins.service import cases
    from plugins.service.attachments import NewAttachment

    customer = await new_customer()
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="Refund")
    await cases.add_message(env, env.agent, case["id"], kind="note",
                            body="Customer is known for abuse",
                            attachments=[NewAttachment("secret.png", "image/png", PNG)])
    await cases.add_message(env, env.agent, case["id"], kind="reply", body="Refund is on its way")
    customer_view = await cases.conversation(case["id"], include_notes=False)
    assert [m["body"] for m in customer_view] == ["Refund is on its way"]
    assert all(not m["attachments"] for m in customer_view)
    staff_view = await cases.conversation(case["id"], include_notes=True)
    assert [m["kind"] for m in staff_view] == ["note", "reply"]
    assert staff_view[0]["attachments"][0]["visible_to_customer"] is False
    timeline = await Interaction.select(Interaction.notes).where(
        Interaction.customer == customer).run()
    assert all("abuse" not in row["notes"] for row in timeline)
    assert any("Refund is on its way" in row["notes"] for row in timeline)
    assert "service.case.replied" in [name for name, _ in env.published]


async def test_attachments_are_sniffed_stored_outside_the_database_and_checked(env):
    import hashlib

    from plugins.service import attachments, cases
    from plugins.service.attachments import NewAttachment
    from plugins.service.tables import Case, CaseAttachment

    customer = await new_customer()
    case = await cases.open_case(
        env, portal_actor(customer), customer_id=customer, subject="Broken screen",
        channel="portal", description="See photo",
        attachments=[NewAttachment("../../etc/photo.png", "text/plain", PNG),
                     NewAttachment("list.csv", "application/octet-stream", b"a,b\n1,2\n")])
    rows = await CaseAttachment.select().where(CaseAttachment.case == case["id"]).order_by(
        CaseAttachment.id).run()
    assert [(r["filename"], r["content_type"]) for r in rows] == [
        ("photo.png", "image/png"), ("list.csv", "text/csv")]
    assert rows[0]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert rows[0]["uploaded_by_customer"] == customer
    stored = attachments.path_of(env, rows[0])
    assert stored is not None and stored.read_bytes() == PNG
    assert stored.is_relative_to(env.settings.data_dir / "service" / "attachments")

    # A program claiming to be a picture, a file over the limit, an empty file: refused, and
    # nothing of the case is written.
    for upload, words in [(NewAttachment("cat.png", "image/png", EXE), "not accepted"),
                          (NewAttachment("big.png", "image/png", PNG + b"\0" * 3000), "larger"),
                          (NewAttachment("empty.txt", "text/plain", b""), "empty")]:
        with pytest.raises(cases.CaseError) as caught:
            await cases.open_case(env, env.agent, customer_id=customer, subject="x",
                                  attachments=[upload])
        assert caught.value.field == "attachments" and words in caught.value.message
        with pytest.raises(cases.CaseError):
            await cases.add_message(env, env.agent, case["id"], kind="reply", body="x",
                                    attachments=[upload])
    assert await Case.count().run() == 1
    assert await CaseAttachment.count().run() == 2
    # A zip is accepted (in the default list).
    message = await cases.add_message(env, env.agent, case["id"], kind="reply", body="Manual",
                                      attachments=[NewAttachment("m.zip", "", zip_bytes())])
    assert message["attachments"][0]["content_type"] == "application/zip"


async def test_failed_write_leaves_no_file_behind(env, monkeypatch):
    from plugins.service import cases
    from plugins.service.attachments import NewAttachment

    customer = await new_customer()
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="x")

    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(cases, "_timeline", broken)
    with pytest.raises(RuntimeError):
        await cases.add_message(env, env.agent, case["id"], kind="reply", body="Photo",
                                attachments=[NewAttachment("p.png", "image/png", PNG)])
    folder = env.settings.data_dir / "service" / "attachments"
    assert not [p for p in folder.rglob("*") if p.is_file()]
    assert len(await cases.conversation(case["id"], include_notes=True)) == 0


async def test_assign_and_priority_write_events_and_announce(env):
    from plugins.service import cases
    from plugins.service.tables import CaseEvent, Queue

    other = await staff_actor(env, "other@example.test")
    queue = (await Queue.insert(Queue(name="Returns")).returning(Queue.id).run())[0]["id"]
    customer = await new_customer()
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="Return it")
    assigned = await cases.assign(env, env.agent, case["id"], owner_id=other.id, queue_id=queue)
    assert assigned["owner"] == other.id and assigned["queue"] == queue
    changed = await cases.set_priority(env, env.agent, case["id"], "urgent")
    assert changed["priority_rank"] == 0
    events = {(e["kind"], e["new_value"]) for e in await CaseEvent.select().where(
        CaseEvent.case == case["id"]).run()}
    assert {("assigned", str(other.id)), ("queued", str(queue)), ("priority", "urgent")} <= events
    assert ("service.case.assigned", other.id) in [
        (name, payload.get("owner_id")) for name, payload in env.published]
    with pytest.raises(cases.CaseError) as caught:
        await cases.assign(env, env.agent, case["id"], owner_id=999999)
    assert caught.value.field == "owner_id"
    with pytest.raises(cases.CaseError) as caught:
        await cases.assign(env, env.agent, case["id"], queue_id=999999)
    assert caught.value.field == "queue_id"


async def test_rating_only_by_the_customer_of_a_resolved_case(env):
    from core.interactions.tables import Interaction
    from plugins.service import cases

    customer = await new_customer()
    stranger = await new_customer("Someone Else")
    case = await cases.open_case(env, env.agent, customer_id=customer, subject="Leak")
    with pytest.raises(cases.CaseError) as caught:
        await cases.rate(env, case["id"], customer_id=customer, score=5)
    assert caught.value.field == "score"
    await cases.change_status(env, env.agent, case["id"], "resolved")
    with pytest.raises(cases.CaseError):
        await cases.rate(env, case["id"], customer_id=stranger, score=5)
    with pytest.raises(cases.CaseError):
        await cases.rate(env, case["id"], customer_id=customer, score=6)
    rated = await cases.rate(env, case["id"], customer_id=customer, score=4, comment="Quick")
    assert rated["satisfaction"] == 4 and rated["rated_at"] is not None
    entry = await Interaction.select().where(
        (Interaction.customer == customer) & (Interaction.purpose == "satisfaction")).first().run()
    assert entry is not None and entry["plugin_record"] == str(case["id"])
    with pytest.raises(cases.CaseError):
        await cases.rate(env, case["id"], customer_id=customer, score=1)
    assert ("service.case.rated", 4) in [(n, p.get("score")) for n, p in env.published]
