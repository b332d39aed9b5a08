"""Staff pages for cases: the new-case form, the case page and its forms, row scopes in lists,
pages and downloads, keyset pagination of queue views, and the 360° panel."""

from __future__ import annotations

import re

from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.cases_helpers import EXE, PNG
from tests.plugins.service.conftest import new_customer, post_form


async def post_files(client, path: str, values: dict, files: list[tuple[str, bytes, str]]):
    """A multipart form post with files, as a browser sends it."""
    token = client.cookies.get("csrftoken") or (await client.get("/login")) and \
        client.cookies["csrftoken"]
    return await client.post(
        path, data={**values, "_csrf_token": token},
        files=[("attachments", (name, data, kind)) for name, data, kind in files],
        headers={"x-csrftoken": token}, follow_redirects=False)


async def test_new_case_form_opens_a_case_and_the_page_shows_the_conversation(service_client):
    customer = await new_customer("Grace Hopper")
    form = await service_client.get(f"/service/cases/new?customer={customer}")
    assert form.status_code == 200 and "Grace Hopper" in form.text
    response = await post_files(service_client, "/service/cases", {
        "customer": str(customer), "subject": "Printer <jams>", "description": "Every page",
        "case_type": "complaint", "priority": "high", "channel": "phone"},
        [("jam.png", PNG, "image/png")])
    assert response.status_code == 303, response.text
    case_url = response.headers["location"]
    case_id = int(case_url.rsplit("/", 1)[1])

    reply = await post_form(service_client, f"{case_url}/messages",
                            {"kind": "reply", "body": "We are on it"})
    assert reply.status_code == 303
    note = await post_form(service_client, f"{case_url}/messages",
                           {"kind": "note", "body": "Second time this month"})
    assert note.status_code == 303
    page = await service_client.get(case_url)
    assert page.status_code == 200
    assert "Printer &lt;jams&gt;" in page.text  # autoescaped
    assert re.search(r'case-message-note".*?Internal note.*?Second time this month', page.text,
                     re.S)
    assert re.search(r'case-message-reply".*?We are on it', page.text, re.S)
    assert "Waiting on customer" in page.text  # the reply moved the case to waiting
    download = re.search(rf'href="(/service/cases/{case_id}/attachments/\d+)"', page.text)
    file = await service_client.get(download.group(1))
    assert file.status_code == 200 and file.content == PNG
    assert file.headers["content-type"] == "image/png"
    assert file.headers["content-disposition"].startswith("attachment")


async def test_forms_show_errors_next_to_the_field(service_client):
    customer = await new_customer()
    response = await post_form(service_client, "/service/cases", {
        "customer": str(customer), "subject": "", "priority": "normal",
        "case_type": "service_request", "channel": "phone"})
    assert response.status_code == 400
    assert 'id="subject-error"' in response.text and 'aria-invalid="true"' in response.text
    missing = await post_form(service_client, "/service/cases", {"subject": "Hello"})
    assert missing.status_code == 400 and 'id="customer-error"' in missing.text

    created = await post_form(service_client, "/service/cases", {
        "customer": str(customer), "subject": "Hi", "priority": "normal",
        "case_type": "service_request", "channel": "phone"})
    url = created.headers["location"]
    refused = await post_files(service_client, f"{url}/messages",
                               {"kind": "reply", "body": "See file"},
                               [("invoice.pdf", EXE, "application/pdf")])
    assert refused.status_code == 400
    assert 'id="attachments-error"' in refused.text and "not accepted" in refused.text
    assert (await post_form(service_client, f"{url}/status", {"status": "closed"})
            ).status_code == 303
    bad_move = await post_form(service_client, f"{url}/status", {"status": "waiting"})
    assert bad_move.status_code == 400 and 'id="status-error"' in bad_move.text


async def test_agent_with_own_scope_sees_only_their_cases(service_rapport):
    from plugins.service import cases
    from plugins.service.attachments import NewAttachment

    async with app_client(service_rapport) as client:
        mine = await make_user("me@example.test", roles=["field_representative"])
        other = await make_user("other@example.test", roles=["field_representative"])
        customer = await new_customer()
        own = await cases.open_case(service_rapport, None, customer_id=customer,
                                    subject="Mine to fix")
        theirs = await cases.open_case(
            service_rapport, None, customer_id=customer, subject="Not for me",
            description="photo", attachments=[NewAttachment("p.png", "image/png", PNG)])
        await cases.assign(service_rapport, None, own["id"], owner_id=mine)
        await cases.assign(service_rapport, None, theirs["id"], owner_id=other)
        from plugins.service.tables import CaseAttachment

        attachment = await CaseAttachment.select().where(
            CaseAttachment.case == theirs["id"]).first().run()

        await sign_in(client, "me@example.test")
        listing = await client.get("/service/cases?view=open")
        assert "Mine to fix" in listing.text and "Not for me" not in listing.text
        everything = await client.get("/service/cases?view=all")
        assert "Not for me" not in everything.text
        assert (await client.get(f"/service/cases/{own['id']}")).status_code == 200
        assert (await client.get(f"/service/cases/{theirs['id']}")).status_code == 404
        download = await client.get(
            f"/service/cases/{theirs['id']}/attachments/{attachment['id']}")
        assert download.status_code == 404
        # Not even through a case the agent may see.
        sideways = await client.get(
            f"/service/cases/{own['id']}/attachments/{attachment['id']}")
        assert sideways.status_code == 404
        refused = await post_form(client, f"/service/cases/{theirs['id']}/messages",
                                  {"kind": "reply", "body": "hello"})
        assert refused.status_code == 404


async def test_queue_view_pages_by_priority_then_age_without_repeats(service_client):
    from plugins.service.tables import PRIORITY_RANK, Case

    customer = await new_customer()
    priorities = ["low", "urgent", "normal", "high"]
    await Case.insert(*[
        Case(number=f"CS-T{i:04d}", subject=f"Case {i}", customer=customer,
             priority=priorities[i % 4], priority_rank=PRIORITY_RANK[priorities[i % 4]])
        for i in range(120)]).run()
    seen: list[str] = []
    url = "/service/cases?view=open"
    pages = 0
    while url:
        page = await service_client.get(url)
        assert page.status_code == 200
        seen += re.findall(r">(CS-T\d{4})</a>", page.text)
        found = re.search(r'href="(/service/cases\?[^"]*after=[^"]+)"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
    assert pages == 3 and len(seen) == 120 and len(set(seen)) == 120
    ranks = [PRIORITY_RANK[priorities[int(n[4:]) % 4]] for n in seen]
    assert ranks == sorted(ranks)  # urgent first, then high, normal, low
    urgent = [int(n[4:]) for n in seen if priorities[int(n[4:]) % 4] == "urgent"]
    assert urgent == sorted(urgent)  # oldest first within a priority
    filtered = await service_client.get("/service/cases?view=open&priority=urgent")
    assert set(re.findall(r">(CS-T\d{4})</a>", filtered.text)) == {
        f"CS-T{i:04d}" for i in range(120) if i % 4 == 1}


async def test_customer_panel_shows_open_cases_and_average_satisfaction(service_client):
    from plugins.service import cases

    rapport = service_client.rapport
    customer = await new_customer("Rated Customer")
    empty = await service_client.get(f"/service/panels/customer/{customer}/cases")
    assert "No open cases" in empty.text and "not rated yet" in empty.text
    for score in (5, 4):
        case = await cases.open_case(rapport, None, customer_id=customer, subject="Done")
        await cases.change_status(rapport, None, case["id"], "resolved")
        await cases.rate(rapport, case["id"], customer_id=customer, score=score)
    await cases.open_case(rapport, None, customer_id=customer, subject="Still broken")
    panel = await service_client.get(f"/service/panels/customer/{customer}/cases")
    assert panel.status_code == 200
    assert "Still broken" in panel.text and "Done" not in panel.text
    assert "<strong>4.5</strong> / 5" in panel.text and "2 ratings" in panel.text
    assert (await service_client.get("/service/panels/customer/999999/cases")).status_code \
        == 404


async def test_assign_form_gives_the_case_to_an_agent(service_client):
    from plugins.service import cases

    agent = await make_user("agent@example.test", roles=["service_agent"])
    customer = await new_customer()
    case = await cases.open_case(service_client.rapport, None, customer_id=customer,
                                 subject="Who takes it?")
    response = await post_form(service_client, f"/service/cases/{case['id']}/assign",
                               {"owner": str(agent), "queue": ""})
    assert response.status_code == 303
    assert (await cases.get_case(case["id"]))["owner"] == agent
    mine = await service_client.get("/service/cases?view=unassigned")
    assert "Who takes it?" not in mine.text
    bad = await post_form(service_client, f"/service/cases/{case['id']}/assign",
                          {"owner": "999999"})
    assert bad.status_code == 400 and 'id="owner-error"' in bad.text


async def test_search_finds_cases_by_number_and_subject_within_scope(service_rapport):
    from plugins.service import cases
    from plugins.service.search import cases as search_cases

    async with app_client(service_rapport):
        from tests.plugins.service.cases_helpers import staff_actor

        agent = await staff_actor(service_rapport, "own@example.test",
                                  roles=["field_representative"])
        boss = await staff_actor(service_rapport, "boss2@example.test")
        customer = await new_customer("Searchable Customer")
        mine = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Dishwasher leaks")
        other = await cases.open_case(service_rapport, None, customer_id=customer,
                                      subject="Dishwasher noisy")
        await cases.assign(service_rapport, None, mine["id"], owner_id=agent.id)

        by_number = await search_cases(service_rapport, boss, f"cs-{other['id']}", 10)
        assert [r.url for r in by_number] == [f"/service/cases/{other['id']}"]
        assert (await search_cases(service_rapport, boss, other["number"], 10))[0].title \
            == f"{other['number']} Dishwasher noisy"
        assert len(await search_cases(service_rapport, boss, "dishwasher", 10)) == 2
        visible = await search_cases(service_rapport, agent, "dishwasher", 10)
        assert [r.url for r in visible] == [f"/service/cases/{mine['id']}"]
        assert await search_cases(service_rapport, agent, other["number"], 10) == []


async def test_queue_changes_are_announced_on_the_live_channel(service_client):
    """The live queue stream hears case events (ids only), so open queue views refresh."""
    import asyncio
    import json

    from core.live import live_plugin
    from plugins.service import cases
    from plugins.service.cases_web import live_channel

    rapport = service_client.rapport
    channels = live_plugin(rapport)
    customer = await new_customer()
    async with channels.start_subscription([live_channel(rapport)]) as subscriber:
        case = await cases.open_case(rapport, None, customer_id=customer, subject="Secret text")
        received = []

        async def first_event():
            async for raw in subscriber.iter_events():
                received.append(json.loads(raw))
                if len(received) == 1:
                    return

        await asyncio.wait_for(first_event(), 10)
    assert received[0] == {"event": "service.case.created", "case_id": case["id"]}
    page = await service_client.get("/service/cases")
    assert 'data-live="/service/live/cases"' in page.text
    # The refresh the page asks for returns just the rows.
    partial = await service_client.get("/service/cases?view=open",
                                       headers={"hx-request": "true",
                                                "hx-target": "case-results"})
    assert "Secret text" in partial.text and "<nav" not in partial.text


async def test_live_stream_needs_the_view_permission(service_rapport):
    async with app_client(service_rapport) as client:
        await make_user("nobody@example.test", roles=[])
        await sign_in(client, "nobody@example.test")
        assert (await client.get("/service/live/cases")).status_code == 403
        assert (await client.get("/service/cases")).status_code == 403


async def test_live_stream_tells_an_agent_only_about_cases_in_their_scope(service_client):
    import asyncio
    import json
    from types import SimpleNamespace

    from core.live import live_plugin
    from core.live import stream as live_stream
    from plugins.service import cases
    from plugins.service.cases_web import _visible_to_reader, live_channel
    from tests.plugins.service.cases_helpers import staff_actor

    rapport = service_client.rapport
    agent = await staff_actor(rapport, "own@example.test", roles=["field_representative"])
    customer = await new_customer()
    mine = await cases.open_case(rapport, None, customer_id=customer, subject="Mine")
    other = await cases.open_case(rapport, None, customer_id=customer, subject="Other")
    await cases.assign(rapport, None, mine["id"], owner_id=agent.id)
    request = SimpleNamespace(scope={"user": agent},
                              app=SimpleNamespace(state=SimpleNamespace(rapport=rapport)))
    stream = live_stream(request, live_plugin(rapport), live_channel(rapport), check_each=False,
                         visible=_visible_to_reader)
    try:
        ready = await asyncio.wait_for(stream.__anext__(), 10)
        assert ready.event == "ready"
        waiting = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)
        await cases.change_status(rapport, None, other["id"], "open")
        await cases.change_status(rapport, None, mine["id"], "open")
        heard = [json.loads((await asyncio.wait_for(waiting, 10)).data)]
        # (Announcements published just before subscribing may still arrive first.)
        while heard[-1]["event"] != "service.case.status_changed":
            heard.append(json.loads((await asyncio.wait_for(stream.__anext__(), 10)).data))
        assert {m["case_id"] for m in heard} == {mine["id"]}
    finally:
        await stream.aclose()


async def test_agent_takes_down_a_customers_phone_message_which_reopens_the_case(
        service_client):
    from plugins.service import cases

    rapport = service_client.rapport
    customer = await new_customer("Caller")
    case = await cases.open_case(rapport, None, customer_id=customer, subject="Fridge warm")
    await cases.change_status(rapport, None, case["id"], "resolved")
    response = await post_form(service_client, f"/service/cases/{case['id']}/messages",
                               {"kind": "inbound", "channel": "phone",
                                "body": "Called: it is warm again"})
    assert response.status_code == 303
    after = await cases.get_case(case["id"])
    assert after["status"] == "open" and after["reopened_count"] == 1
    messages = await cases.conversation(case["id"], include_notes=True)
    said = messages[-1]
    assert (said["kind"], said["channel"], said["author_customer"], said["author_user"]) == (
        "inbound", "phone", customer, service_client.user_id)
    page = await service_client.get(f"/service/cases/{case['id']}")
    assert "taken down by" in page.text


async def test_case_history_reads_as_names_and_labels(service_client):
    from plugins.service import cases
    from plugins.service.tables import Queue

    rapport = service_client.rapport
    agent = await make_user("helen@example.test", name="Helen Agent", roles=["service_agent"])
    queue = (await Queue.insert(Queue(name="Repairs desk")).returning(Queue.id).run())[0]["id"]
    case = await cases.open_case(rapport, None, customer_id=await new_customer(), subject="x")
    await cases.assign(rapport, None, case["id"], owner_id=agent, queue_id=queue)
    await cases.change_status(rapport, None, case["id"], "waiting")
    page = (await service_client.get(f"/service/cases/{case['id']}")).text
    history = page[page.index("<h2>History</h2>"):]
    assert "Owner: — → Helen Agent" in history and "Queue: — → Repairs desk" in history
    assert "Status: New → Waiting on customer" in history


async def test_an_agent_with_own_scope_keeps_the_case_they_open(service_rapport):
    from plugins.service import cases

    async with app_client(service_rapport) as client:
        agent = await make_user("field@example.test", roles=["field_representative"])
        customer = await new_customer(owner=agent)  # a customer the agent may see
        await sign_in(client, "field@example.test")
        response = await post_form(client, "/service/cases", {
            "customer": str(customer), "subject": "Taken on a visit", "priority": "normal",
            "case_type": "maintenance", "channel": "visit"})
        assert response.status_code == 303, response.text
        page = await client.get(response.headers["location"])
        assert page.status_code == 200 and "Taken on a visit" in page.text
        case_id = int(response.headers["location"].rsplit("/", 1)[1])
        assert (await cases.get_case(case_id))["owner"] == agent


async def test_pages_leave_out_fields_hidden_from_the_users_role(service_rapport):
    from core.identity.tables import FieldRule, Role
    from plugins.service import cases

    async with app_client(service_rapport) as client:
        agent = await make_user("agent@example.test", roles=["service_agent"])
        role = await Role.select(Role.id).where(Role.key == "service_agent").first().run()
        await FieldRule.insert(FieldRule(role=role["id"], record_type="service_case",
                                         field="satisfaction_comment")).run()
        customer = await new_customer()
        case = await cases.open_case(service_rapport, None, customer_id=customer,
                                     subject="Rude agent?")
        await cases.assign(service_rapport, None, case["id"], owner_id=agent)
        await cases.change_status(service_rapport, None, case["id"], "resolved")
        await cases.rate(service_rapport, case["id"], customer_id=customer, score=1,
                         comment="HIDDEN-COMMENT")
        await sign_in(client, "agent@example.test")
        page = await client.get(f"/service/cases/{case['id']}")
        assert page.status_code == 200 and "1 / 5" in page.text
        assert "HIDDEN-COMMENT" not in page.text


async def test_panel_links_to_the_customers_queue_when_there_are_many(service_client):
    from plugins.service.tables import Case

    customer = await new_customer("Busy Customer")
    someone_else = await new_customer("Quiet Customer")
    await Case.insert(*[Case(number=f"CS-P{i:04d}", subject=f"Busy {i}", customer=customer)
                        for i in range(12)],
                      Case(number="CS-Q0001", subject="Quiet one", customer=someone_else)).run()
    panel = await service_client.get(f"/service/panels/customer/{customer}/cases")
    assert panel.text.count("Busy ") == 10
    link = f"/service/cases?view=open&amp;customer={customer}"
    assert link in panel.text
    queue = await service_client.get(link.replace("&amp;", "&"))
    assert queue.text.count(">CS-P") == 12 and "Quiet one" not in queue.text
