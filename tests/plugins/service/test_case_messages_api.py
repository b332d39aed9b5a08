"""The cases API gives a conversation a page at a time: the case carries its newest 50
messages and a cursor for the earlier ones, ``/messages`` pages on by keyset (newest first,
or oldest first), every message exactly once and in order, with notes for staff, attachments
read in one query a page, within the case's row scope; bad cursors (422) and limits (400)
are problems naming the parameter."""

from __future__ import annotations

import pytest

from plugins.service import attachments as files
from plugins.service import cases
from tests.conftest import app_client, make_user, sign_in
from tests.core.portal.conftest import make_person, portal_sign_in
from tests.plugins.service.cases_helpers import long_case, queries_for
from tests.plugins.service.conftest import new_customer

PAGE = cases.CONVERSATION_PAGE


def problem_field(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["field"]


async def follow(client, url: str) -> tuple[list[dict], int]:
    """Every message a list hands out, following ``next`` until it is null; and the pages."""
    seen, pages = [], 0
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"data", "next"}
        seen += page["data"]
        pages += 1
        base = url.split("after=")[0].rstrip("&?")
        joiner = "&" if "?" in base else "?"
        url = f"{base}{joiner}after={page['next']}" if page["next"] else ""
    return seen, pages


async def test_the_case_carries_its_newest_page_and_a_cursor_for_the_earlier_ones(
        service_client):
    customer = await new_customer("Ada Lovelace")
    case_id, messages = await long_case(customer, 2 * PAGE + 17, agent=service_client.user_id)
    bodies = [m["body"] for m in messages]

    detail = (await service_client.get(f"/api/v1/service/cases/{case_id}")).json()
    assert [m["body"] for m in detail["messages"]] == bodies[-PAGE:]  # oldest of them first
    assert detail["messages_next"] == str(messages[-PAGE]["id"])

    # Earlier pages, newest first, from the case's cursor: nothing repeated, nothing skipped.
    earlier, pages = await follow(
        service_client, f"/api/v1/service/cases/{case_id}/messages?limit=7"
                        f"&after={detail['messages_next']}")
    assert [m["body"] for m in earlier] == bodies[:-PAGE][::-1]
    assert pages == -(-(PAGE + 17) // 7)
    assert [m["body"] for m in earlier][::-1] + [m["body"] for m in detail["messages"]] \
        == bodies
    assert any("SECRET" in m["body"] and m["kind"] == "note" for m in earlier)  # staff API

    # The whole conversation newest first, and oldest first, each message exactly once.
    newest, _ = await follow(service_client, f"/api/v1/service/cases/{case_id}/messages")
    assert [m["body"] for m in newest] == bodies[::-1]
    oldest, pages = await follow(service_client,
                                 f"/api/v1/service/cases/{case_id}/messages?order=oldest")
    assert [m["body"] for m in oldest] == bodies and pages == 3
    assert len({m["id"] for m in oldest}) == len(bodies)

    # A short case is whole in the case itself.
    short_id, short = await long_case(customer, 3, number="CS-S0001")
    detail = (await service_client.get(f"/api/v1/service/cases/{short_id}")).json()
    assert [m["id"] for m in detail["messages"]] == [m["id"] for m in short]
    assert detail["messages_next"] is None


async def test_a_cursor_past_either_end_gives_an_empty_last_page(service_client):
    customer = await new_customer()
    case_id, messages = await long_case(customer, 5)
    url = f"/api/v1/service/cases/{case_id}/messages"
    first, last = messages[0]["id"], messages[-1]["id"]
    # Never the latest page again: a client following cursors must not see a message twice.
    assert (await service_client.get(f"{url}?after={first}")).json() == {"data": [],
                                                                         "next": None}
    assert (await service_client.get(f"{url}?order=oldest&after={last}")).json() == {
        "data": [], "next": None}
    within = (await service_client.get(f"{url}?order=oldest&after={first}&limit=2")).json()
    assert [m["id"] for m in within["data"]] == [m["id"] for m in messages[1:3]]
    assert within["next"] == str(messages[2]["id"])


async def test_bad_cursors_and_limits_are_problems_naming_the_parameter(service_client):
    customer = await new_customer()
    case_id, _ = await long_case(customer, 3)
    url = f"/api/v1/service/cases/{case_id}/messages"
    for cursor in ("nonsense", "-5", "1.5", "12abc", "²", "9" * 19, "0x10"):
        assert problem_field(await service_client.get(url, params={"after": cursor}),
                             422) == "after", cursor
    for limit in ("0", "201", "ten"):
        assert problem_field(await service_client.get(url, params={"limit": limit}),
                             400) == "limit", limit
    assert problem_field(await service_client.get(f"{url}?order=sideways"), 422) == "order"
    assert (await service_client.get(f"{url}?limit=200")).status_code == 200
    missing = await service_client.get("/api/v1/service/cases/999999/messages")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_messages_stay_within_the_case_scope(service_rapport):
    async with app_client(service_rapport) as client:
        agent = await make_user("own@example.test", roles=["field_representative"])
        customer = await new_customer()
        mine, _ = await long_case(customer, PAGE + 3, agent=agent, number="CS-M0001")
        theirs, theirs_messages = await long_case(customer, PAGE + 3, number="CS-T0001")
        await cases.assign(service_rapport, None, mine, owner_id=agent)
        await sign_in(client, "own@example.test")

        assert (await client.get(f"/api/v1/service/cases/{mine}/messages")).status_code == 200
        cursor = theirs_messages[-1]["id"] + 1
        for path in (f"/api/v1/service/cases/{theirs}",
                     f"/api/v1/service/cases/{theirs}/messages",
                     f"/api/v1/service/cases/{theirs}/messages?after={cursor}"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "MSG-" not in response.text
        # A cursor taken from another case only positions: it never brings that case's
        # messages along.
        borrowed = (await client.get(f"/api/v1/service/cases/{mine}/messages"
                                     f"?after={cursor}&limit=200")).json()
        assert {m["id"] for m in borrowed["data"]}.isdisjoint(
            {m["id"] for m in theirs_messages})


async def test_a_portal_customer_never_reads_messages_through_the_staff_api(service_rapport):
    async with app_client(service_rapport) as client:
        ada = await make_person(service_rapport, "Ada", "Lovelace", "ada@example.test")
        case_id, _ = await long_case(ada.customer_id, 10)
        await portal_sign_in(client, "ada@example.test")
        for path in (f"/api/v1/service/cases/{case_id}",
                     f"/api/v1/service/cases/{case_id}/messages"):
            response = await client.get(path)
            assert response.status_code in (401, 403), path
            assert "SECRET" not in response.text and "MSG-" not in response.text


async def test_attachments_come_with_their_messages_in_one_query_a_page(service_client,
                                                                       monkeypatch):
    customer = await new_customer("Ada Lovelace")
    agent = service_client.user_id
    tiny_id, tiny = await long_case(customer, 3, agent=agent, number="CS-T0001")
    long_id, long = await long_case(customer, 4 * PAGE, agent=agent, number="CS-L0002")
    saved = {}
    for case_id, messages in ((tiny_id, tiny), (long_id, long)):
        for m in messages[::7]:
            row = await files.save(service_client.rapport, case_id, m["id"],
                                   cases.NewAttachment(f"{m['id']}.txt", "text/plain", b"x"),
                                   visible_to_customer=m["kind"] != "note")
            saved[m["id"]] = row["id"]

    everything, _ = await follow(service_client,
                                 f"/api/v1/service/cases/{long_id}/messages?limit=200")
    for message in everything:
        expected = [saved[message["id"]]] if message["id"] in saved else []
        assert [a["id"] for a in message["attachments"]] == expected
        for attachment in message["attachments"]:
            assert attachment["url"] == (f"/api/v1/service/cases/{long_id}/attachments/"
                                         f"{attachment['id']}")

    # No query per message, author or file: 3 messages cost what 50 do, on any page.
    tiny_case = await queries_for(monkeypatch, service_client,
                                   f"/api/v1/service/cases/{tiny_id}")
    long_case_ = await queries_for(monkeypatch, service_client,
                                    f"/api/v1/service/cases/{long_id}")
    assert long_case_ == tiny_case
    tiny_list = await queries_for(monkeypatch, service_client,
                                   f"/api/v1/service/cases/{tiny_id}/messages")
    middle = await queries_for(
        monkeypatch, service_client,
        f"/api/v1/service/cases/{long_id}/messages?after={long[2 * PAGE]['id']}")
    assert middle == tiny_list


async def test_the_messages_list_is_in_the_openapi_document(service_client):
    schema = (await service_client.get("/schema/openapi.json")).json()
    path = schema["paths"]["/api/v1/service/cases/{case_id}/messages"]
    assert {"get", "post"} <= set(path)
    names = {p["name"] for p in path["get"]["parameters"]}
    assert {"case_id", "after", "limit", "order"} <= names


@pytest.mark.parametrize("order", ["newest", "oldest"])
async def test_an_empty_conversation_is_an_empty_page(service_client, order):
    customer = await new_customer()
    case = await cases.open_case(service_client.rapport, None, customer_id=customer,
                                 subject="Nothing said yet")
    response = await service_client.get(
        f"/api/v1/service/cases/{case['id']}/messages?order={order}")
    assert response.json() == {"data": [], "next": None}
    assert (await service_client.get(f"/api/v1/service/cases/{case['id']}")).json()[
        "messages_next"] is None
