"""A long case is shown a page at a time: the newest messages first, "Show earlier messages"
for the rest (htmx list items, or the page again at a ``before=`` cursor without
JavaScript), each message exactly once and in order. Notes, files and "Send again" work on
every page; a page costs the same number of queries however long the case is; and a portal
customer pages through their own request the same way without ever seeing a note."""

from __future__ import annotations

import re

from plugins.service import attachments as files
from plugins.service import cases
from plugins.service.tables import CaseMessage
from tests.plugins.service import email_helpers
from tests.plugins.service.cases_helpers import long_case, queries_for
from tests.plugins.service.conftest import new_customer, post_form

smtp_sink = email_helpers.smtp_sink

PAGE = cases.CONVERSATION_PAGE
HTMX = {"hx-request": "true"}


def shown(html: str) -> list[str]:
    return re.findall(r"MSG-\d{4}", html)


def earlier_link(html: str) -> tuple[str, str] | None:
    """The "Show earlier messages" control: (its htmx fragment URL, its plain link)."""
    found = re.search(r'<a[^>]*href="([^"]*before=\d+[^"]*)"[^>]*hx-get="([^"]+)"[^>]*>'
                      r"Show earlier messages</a>", html)
    return (found.group(2), found.group(1).split("#")[0]) if found else None


# --- staff ------------------------------------------------------------------------------------


async def test_a_long_case_shows_its_newest_page_then_earlier_ones_through_htmx(service_client):
    customer = await new_customer("Ada Lovelace")
    case_id, messages = await long_case(customer, 2 * PAGE + 17, agent=service_client.user_id)
    bodies = [m["body"][:8] for m in messages]

    page = await service_client.get(f"/service/cases/{case_id}")
    assert page.status_code == 200
    assert shown(page.text) == bodies[-PAGE:]  # the newest 50, oldest of them first
    fragment_url, _ = earlier_link(page.text)
    assert 'hx-target="closest li"' in page.text and 'hx-swap="outerHTML"' in page.text
    assert "Show newer messages" not in page.text  # this is the latest page

    seen = shown(page.text)
    loads = 0
    while fragment_url:
        fragment = await service_client.get(fragment_url, headers=HTMX)
        assert fragment.status_code == 200
        assert "<html" not in fragment.text and fragment.text.lstrip().startswith("<li")
        # What htmx puts in place of the button: the earlier page above what was shown.
        seen = shown(fragment.text) + seen
        link = earlier_link(fragment.text)
        fragment_url = link[0] if link else ""
        loads += 1
    assert loads == 2
    assert seen == bodies  # every message once, in order, notes included for staff
    assert len(set(seen)) == len(bodies)


async def test_without_javascript_the_earlier_link_opens_the_page_at_that_cursor(
        service_client):
    customer = await new_customer("Ada Lovelace")
    case_id, messages = await long_case(customer, 2 * PAGE + 17, agent=service_client.user_id)
    bodies = [m["body"][:8] for m in messages]

    url = f"/service/cases/{case_id}"
    pages: list[list[str]] = []
    while url:
        page = await service_client.get(url)
        assert page.status_code == 200
        pages.insert(0, shown(page.text))
        if len(pages) > 1:
            assert "Show newer messages" in page.text and "Go to the latest messages" in page.text
        link = earlier_link(page.text)
        url = link[1] if link else ""
    assert [len(p) for p in pages] == [17, PAGE, PAGE]
    assert [b for p in pages for b in p] == bodies

    # The earliest page leads forward again, page by page, to the latest.
    oldest = await service_client.get(f"/service/cases/{case_id}?before={messages[17]['id']}")
    assert shown(oldest.text) == bodies[:17]
    newer = re.search(r'href="([^"]*after=\d+)[^"]*">Show newer messages', oldest.text).group(1)
    following = await service_client.get(newer.replace("&amp;", "&"))
    assert shown(following.text) == bodies[17:17 + PAGE]

    # The fragment route opened without htmx sends the browser to the page at the cursor.
    fragment = await service_client.get(
        f"/service/cases/{case_id}/conversation?before={messages[17]['id']}",
        follow_redirects=False)
    assert fragment.status_code == 303
    assert fragment.headers["location"] == (
        f"/service/cases/{case_id}?before={messages[17]['id']}#conversation-title")
    # A cursor before the first message, or a malformed one, shows the latest page.
    for cursor in (str(messages[0]["id"]), "abc"):
        latest = await service_client.get(f"/service/cases/{case_id}?before={cursor}")
        assert latest.status_code == 200 and shown(latest.text) == bodies[-PAGE:]


async def test_a_hand_made_cursor_shows_the_latest_page_never_an_error(service_client, portal):
    """Digits too many for a 64-bit id, or digits that are not ASCII, never reach the
    database (they were 500s: SQLite cannot bind an integer that large)."""
    customer = await new_customer("Ada Lovelace")
    case_id, messages = await long_case(customer, PAGE + 5, agent=service_client.user_id)
    bodies = [m["body"][:8] for m in messages]
    own_id, own = await long_case(portal.ada.customer_id, PAGE + 5, number="CS-A0001")
    visible = [m["body"] for m in own if m["kind"] != "note"]
    for cursor in ("9" * 30, "%C2%B2", "-3", "1e9", "%20" + str(messages[3]["id"])):
        for query in (f"before={cursor}", f"after={cursor}"):
            page = await service_client.get(f"/service/cases/{case_id}?{query}")
            assert page.status_code == 200, query
            assert shown(page.text) == bodies[-PAGE:], query
            request = await portal.get(f"/portal/service/requests/{own_id}?{query}")
            assert request.status_code == 200, query
            assert shown(request.text) == visible[-PAGE:], query
        fragment = await service_client.get(
            f"/service/cases/{case_id}/conversation?before={cursor}", headers=HTMX)
        assert fragment.status_code == 200 and shown(fragment.text) == bodies[-PAGE:]
        fragment = await portal.get(
            f"/portal/service/requests/{own_id}/conversation?before={cursor}", headers=HTMX)
        assert fragment.status_code == 200 and shown(fragment.text) == visible[-PAGE:]
        listed = await service_client.get(f"/service/cases?view=all&after=1-{cursor}")
        assert listed.status_code == 200, cursor
        api = await service_client.get(f"/api/v1/service/cases?view=all&after=1-{cursor}")
        assert api.status_code == 422 and api.json()["field"] == "after", cursor


async def test_earlier_pages_keep_notes_files_and_send_again(service_client, smtp_sink):
    rapport = service_client.rapport
    customer = await new_customer("Ada Lovelace", email="ada@example.test")
    agent = service_client.user_id
    case_id, messages = await long_case(customer, 2 * PAGE, agent=agent)
    old_note, old_reply = messages[4], messages[5]
    assert (old_note["kind"], old_reply["kind"]) == ("note", "reply")
    await CaseMessage.update({CaseMessage.delivery: "failed",
                              CaseMessage.delivery_detail: "Connection refused"}).where(
        CaseMessage.id == old_reply["id"]).run()
    note_file = await files.save(rapport, case_id, old_note["id"],
                                 cases.NewAttachment("inside.txt", "text/plain", b"staff only"),
                                 user_id=agent, visible_to_customer=False)

    latest = (await service_client.get(f"/service/cases/{case_id}")).text
    assert "MSG-0004" not in latest
    fragment = (await service_client.get(earlier_link(latest)[0], headers=HTMX)).text
    note_html = re.search(rf'<li class="case-message case-message-note" '
                          rf'id="message-{old_note["id"]}".*?</li>\s*</ul>\s*</li>', fragment,
                          re.S).group(0)
    assert "Internal note" in note_html
    assert "not visible to the customer" in note_html
    download = re.search(r'href="([^"]+/attachments/\d+)"', note_html).group(1)
    assert download.endswith(f"/attachments/{note_file['id']}")
    assert (await service_client.get(download)).content == b"staff only"
    reply_html = re.search(rf'id="message-{old_reply["id"]}".*?</li>', fragment, re.S).group(0)
    assert "E-mail not sent" in reply_html and "Connection refused" in reply_html
    action = f"/service/cases/{case_id}/messages/{old_reply['id']}/send-again"
    assert f'action="{action}"' in reply_html and "Send again" in reply_html
    assert 'name="_csrf_token"' in reply_html

    # Sending it again comes back to the page holding that reply, not the latest one.
    again = await post_form(service_client, action, {})
    assert again.status_code == 303
    location = again.headers["location"]
    assert location == (f"/service/cases/{case_id}?before={old_reply['id'] + 1}"
                        f"#message-{old_reply['id']}")
    assert [m["to"] for m in smtp_sink.messages] == [["ada@example.test"]]
    back = (await service_client.get(location.split("#")[0])).text
    assert shown(back)[-1] == "MSG-0005"
    reply_html = re.search(rf'id="message-{old_reply["id"]}".*?</li>', back, re.S).group(0)
    assert "E-mail sent" in reply_html and "Send again" not in reply_html
    # Sending it a second time is refused, with the error shown next to that reply.
    twice = await post_form(service_client, action, {})
    assert twice.status_code == 409
    assert re.search(rf'id="message-{old_reply["id"]}".*?not sent again', twice.text, re.S)


async def test_a_page_costs_the_same_queries_however_long_the_case(service_client, monkeypatch):
    customer = await new_customer("Ada Lovelace")
    agent = service_client.user_id
    tiny_id, tiny = await long_case(customer, 3, agent=agent, number="CS-T0001")
    short_id, short = await long_case(customer, PAGE + 5, agent=agent, number="CS-S0001")
    long_id, long = await long_case(customer, 4 * PAGE, agent=agent, number="CS-L0002")
    for case_id, messages in ((tiny_id, tiny), (short_id, short), (long_id, long)):
        for m in messages[::7]:
            await files.save(service_client.rapport, case_id, m["id"],
                             cases.NewAttachment(f"{m['id']}.txt", "text/plain", b"x"),
                             visible_to_customer=m["kind"] != "note")

    # No query per message, author, file or e-mail outcome: 3 messages cost what 50 do.
    tiny_page = await queries_for(monkeypatch, service_client, f"/service/cases/{tiny_id}")
    long_page = await queries_for(monkeypatch, service_client, f"/service/cases/{long_id}")
    assert long_page == tiny_page
    short_earlier = await queries_for(  # the 5 messages before the newest 50
        monkeypatch, service_client,
        f"/service/cases/{short_id}/conversation?before={short[5]['id']}", HTMX)
    long_earlier = await queries_for(  # 50 messages from the middle of 200
        monkeypatch, service_client,
        f"/service/cases/{long_id}/conversation?before={long[2 * PAGE]['id']}", HTMX)
    assert long_earlier == short_earlier
    assert long_earlier < 12


# --- portal -----------------------------------------------------------------------------------


async def test_a_customer_pages_through_their_request_and_never_sees_a_note(portal):
    rapport = portal.rapport
    ada = portal.ada.customer_id
    case_id, messages = await long_case(ada, 3 * PAGE)
    visible = [m["body"] for m in messages if m["kind"] != "note"]
    assert len(visible) > 2 * PAGE
    note = next(m for m in messages if m["kind"] == "note")
    await files.save(rapport, case_id, note["id"],
                     cases.NewAttachment("internal.txt", "text/plain", b"staff only"),
                     visible_to_customer=False)
    shared = next(m for m in messages[:PAGE] if m["kind"] == "reply")
    shared_file = await files.save(rapport, case_id, shared["id"],
                                   cases.NewAttachment("manual.txt", "text/plain", b"manual"))

    page = await portal.get(f"/portal/service/requests/{case_id}")
    assert page.status_code == 200
    assert shown(page.text) == visible[-PAGE:]  # the newest 50 the customer may see
    assert 'id="latest"' in page.text

    # Through htmx, page by page back to the start.
    seen, fragment_url = shown(page.text), earlier_link(page.text)[0]
    assert fragment_url.startswith(f"/portal/service/requests/{case_id}/conversation?before=")
    while fragment_url:
        fragment = await portal.get(fragment_url, headers=HTMX)
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert "SECRET" not in fragment.text and "internal.txt" not in fragment.text
        seen = shown(fragment.text) + seen
        link = earlier_link(fragment.text)
        fragment_url = link[0] if link else ""
    assert seen == visible
    assert "manual.txt" in (await portal.get(
        f"/portal/service/requests/{case_id}?before={shared['id'] + 1}")).text
    assert (await portal.get(f"/portal/service/requests/{case_id}/files/{shared_file['id']}")
            ).content == b"manual"

    # Without JavaScript, the same pages as whole pages.
    url, pages = f"/portal/service/requests/{case_id}", []
    while url:
        response = await portal.get(url)
        assert response.status_code == 200 and "SECRET" not in response.text
        pages.insert(0, shown(response.text))
        if len(pages) > 1:
            assert "Show newer messages" in response.text
        link = earlier_link(response.text)
        url = link[1] if link else ""
    assert [b for p in pages for b in p] == visible
    assert all(len(p) <= PAGE for p in pages)
    # A cursor that is a note's id hides nothing and shows no note either.
    around_note = await portal.get(f"/portal/service/requests/{case_id}?after={note['id']}")
    assert around_note.status_code == 200 and "SECRET" not in around_note.text
    fragment = await portal.get(f"/portal/service/requests/{case_id}/conversation"
                                f"?before={note['id'] + 1}", headers=HTMX)
    assert "SECRET" not in fragment.text


async def test_a_customer_cannot_page_through_another_customers_request(portal):
    bob_case, _ = await long_case(portal.bob.customer_id, PAGE + 10, number="CS-B0001")
    first = (await CaseMessage.select(CaseMessage.id).where(CaseMessage.case == bob_case)
             .order_by(CaseMessage.id).first().run())["id"]
    for path in (f"/portal/service/requests/{bob_case}?before={first + 20}",
                 f"/portal/service/requests/{bob_case}/conversation?before={first + 20}"):
        assert (await portal.get(path, headers=HTMX)).status_code == 404, path
        assert (await portal.get(path)).status_code == 404, path
    # Nor do the staff fragments answer a portal customer.
    staff = await portal.get(f"/service/cases/{bob_case}/conversation?before={first + 20}",
                             headers=HTMX)
    assert staff.status_code in (401, 403)


async def test_ids_too_large_for_the_database_are_refused_not_500s(service_client):
    """The other lists and filters of the plugin read hand-made numbers the same careful way:
    an API cursor is 422 naming ``after``, a page filter is ignored."""
    huge = "9" * 30
    for url in (f"/api/v1/service/articles?after={huge}",
                f"/api/v1/service/visits?after=1-{huge}",
                f"/api/v1/service/visits?after={huge}-1"):
        response = await service_client.get(url)
        assert response.status_code == 422 and response.json()["field"] == "after", url
    for url in (f"/service/cases?customer={huge}", f"/service/cases?queue={huge}",
                f"/service/kb?category={huge}", f"/service/kb?after={huge}"):
        assert (await service_client.get(url)).status_code == 200, url
