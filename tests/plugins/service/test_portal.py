"""The service portal: help pages, deflection, requests that become cases, isolation between
customers, replies that reopen, and a rating recorded once."""

from __future__ import annotations

from core.permissions import Actor
from plugins.service import cases, kb
from plugins.service.tables import Article, ArticleFeedback, Case, CaseAttachment
from tests.conftest import csrf_headers

AGENT = Actor(kind="staff", id=None, name="agent",
              grants={"service.article.view": "all", "service.article.edit": "all"})


async def form(client, path: str, values: dict, files=None):
    token = await csrf_headers(client)
    return await client.post(path, data={**values, "_csrf_token": token["x-csrftoken"]},
                             files=files, headers=token, follow_redirects=False)


async def public_article(title: str, **values) -> dict:
    return await kb.create_article(AGENT, {"title": title, "audience": "public",
                                           "published": True, **values})


async def test_a_portal_request_becomes_a_case_only_its_customer_sees(portal):
    rapport = portal.rapport
    ada, bob = portal.ada.customer_id, portal.bob.customer_id
    response = await form(portal, "/portal/service/requests", {
        "case_type": "service_request", "subject": "Dishwasher leaks",
        "description": "Water on the floor after every wash.", "product": "DW-300"},
        files=[("attachments", ("photo-notes.txt", b"the leak is at the back", "text/plain"))])
    assert response.status_code == 303, response.text
    case_id = int(response.headers["location"].split("/")[-1].split("?")[0])
    case = await Case.select().where(Case.id == case_id).first().run()
    assert (case["customer"], case["channel"], case["subject"]) == (ada, "portal",
                                                                     "Dishwasher leaks")
    assert await CaseAttachment.count().where(CaseAttachment.case == case_id).run() == 1
    # The agent answers and writes an internal note.
    await cases.add_message(rapport, None, case_id, kind="note",
                            body="Customer sounds annoyed; SECRET-NOTE")
    await cases.add_message(rapport, None, case_id, kind="reply",
                            body="Please check the inlet hose.")
    page = await portal.get(f"/portal/service/requests/{case_id}")
    assert page.status_code == 200
    assert "Please check the inlet hose." in page.text and "Water on the floor" in page.text
    assert "SECRET-NOTE" not in page.text
    attachment = await CaseAttachment.select().where(CaseAttachment.case == case_id).first().run()
    download = await portal.get(f"/portal/service/requests/{case_id}/files/{attachment['id']}")
    assert download.status_code == 200 and download.content == b"the leak is at the back"
    assert "Dishwasher leaks" in (await portal.get("/portal/service/requests")).text
    assert "Dishwasher leaks" in (await portal.get("/portal/service/requests/card")).text
    assert "Dishwasher leaks" in (await portal.get("/portal/service/requests/panel")).text

    # Bob's case: Ada can neither see it nor act on it, and it is in none of her lists.
    other = await cases.open_case(rapport, None, customer_id=bob, subject="Bob's BOILER",
                                  description="Boiler is cold.", channel="phone")
    bob_file = await cases.add_message(
        rapport, None, other["id"], kind="inbound", body="photo", author_customer_id=bob,
        attachments=[cases.NewAttachment("bob.txt", "text/plain", b"bob's file")])
    bob_attachment = await CaseAttachment.select().where(
        CaseAttachment.message == bob_file["id"]).first().run()
    await cases.change_status(rapport, None, other["id"], "resolved")
    for path in (f"/portal/service/requests/{other['id']}",
                 f"/portal/service/requests/{other['id']}/files/{bob_attachment['id']}",
                 f"/portal/service/requests/{case_id}/files/{bob_attachment['id']}"):
        assert (await portal.get(path)).status_code == 404, path
    reply = await form(portal, f"/portal/service/requests/{other['id']}/reply", {"body": "hi"})
    rate = await form(portal, f"/portal/service/requests/{other['id']}/rate", {"score": "1"})
    assert reply.status_code == 404 and rate.status_code == 404
    for path in ("/portal/service/requests", "/portal/service/requests/card",
                 "/portal/service/requests/panel"):
        assert "BOILER" not in (await portal.get(path)).text
    untouched = await Case.select().where(Case.id == other["id"]).first().run()
    assert untouched["status"] == "resolved" and untouched["satisfaction"] is None
    # A portal customer reaches no staff page of the plugin.
    for path in ("/service/kb", f"/service/kb/suggest?case={case_id}"):
        assert (await portal.get(path)).status_code in (401, 403)


async def test_requests_are_validated_with_the_field_named(portal):
    response = await form(portal, "/portal/service/requests", {
        "case_type": "service_request", "subject": "", "description": "Something broke"})
    assert response.status_code == 400 and "Subject is required" in response.text
    response = await form(portal, "/portal/service/requests", {
        "case_type": "service_request", "subject": "Broken", "description": "x"},
        files=[("attachments", ("run.exe", b"MZ\x90\x00binary", "text/plain"))])
    assert response.status_code == 400 and "not accepted" in response.text
    big = b"x" * (10 * 1024 * 1024 + 1)  # one byte over the default attachment_max_bytes
    response = await form(portal, "/portal/service/requests", {
        "case_type": "service_request", "subject": "Broken", "description": "x"},
        files=[("attachments", ("log.txt", big, "text/plain"))])
    assert response.status_code == 400 and "log.txt" in response.text
    assert await Case.count().run() == 0


async def test_typing_suggests_public_articles_and_deflection_opens_no_case(portal):
    answer = await public_article("Resetting your password", keywords="password, login",
                                  body="Use the 'Forgot password' link on the sign-in page.")
    await kb.create_article(AGENT, {"title": "Password reset: INTERNAL tool", "published": True,
                                    "audience": "internal", "keywords": "password"})
    fragment = await portal.get("/portal/service/requests/suggest", params={
        "subject": "I forgot my password", "description": ""})
    assert fragment.status_code == 200
    assert "Resetting your password" in fragment.text and "INTERNAL" not in fragment.text
    assert "This answered my question" in fragment.text
    deflected = await form(portal, "/portal/service/requests/deflect", {
        "article": str(answer["id"]), "subject": "I forgot my password", "description": ""})
    assert deflected.status_code == 200 and "No request was sent" in deflected.text
    assert await Case.count().run() == 0
    rows = await ArticleFeedback.select().where(ArticleFeedback.article == answer["id"]).run()
    assert [(r["deflected"], r["helpful"], r["customer"]) for r in rows] == [
        (True, True, portal.ada.customer_id)]
    assert "I forgot my password" in rows[0]["comment"]
    from core.interactions.tables import Interaction

    touch = await Interaction.select(Interaction.channel, Interaction.subject).where(
        Interaction.customer == portal.ada.customer_id).run()
    assert touch == [{"channel": "portal",
                      "subject": "Found an answer in the help: Resetting your password"}]
    assert (await Article.select(Article.helpful_yes).where(
        Article.id == answer["id"]).first().run())["helpful_yes"] == 1
    internal = await Article.select(Article.id).where(Article.audience == "internal").first().run()
    refused = await form(portal, "/portal/service/requests/deflect",
                         {"article": str(internal["id"])})
    assert refused.status_code == 404


async def test_help_pages_show_public_articles_only_with_feedback(portal):
    category = await kb.create_category(AGENT, {"name": "Dishwashers"})
    manual = await public_article("DW-300 user manual", kind="manual", category=category["id"],
                                  product="DW-300", body="Chapter one.\n\nChapter two.")
    hidden = await kb.create_category(AGENT, {"name": "SECRET escalations"})
    internal = await kb.create_article(AGENT, {"title": "DW-300 known SECRET defects",
                                               "audience": "internal", "published": True,
                                               "category": hidden["id"]})
    draft = await kb.create_article(AGENT, {"title": "DW-400 DRAFT manual",
                                            "audience": "public", "kind": "manual"})
    index = await portal.get("/portal/service/help?kind=manual")
    assert "DW-300 user manual" in index.text and "Dishwashers" in index.text
    assert "SECRET" not in index.text and "DRAFT" not in index.text
    found = await portal.get("/portal/service/help?q=DW-300")
    assert "DW-300 user manual" in found.text and "SECRET" not in found.text
    assert (await portal.get(f"/portal/service/help/{internal['slug']}")).status_code == 404
    assert (await portal.get(f"/portal/service/help/{draft['slug']}")).status_code == 404
    page = await portal.get(f"/portal/service/help/{manual['slug']}")
    assert page.status_code == 200 and "Chapter two." in page.text
    voted = await form(portal, f"/portal/service/help/{manual['slug']}/feedback",
                       {"helpful": "no", "comment": "Missing the filter"})
    assert voted.status_code == 303
    row = await Article.select().where(Article.id == manual["id"]).first().run()
    assert (row["helpful_yes"], row["helpful_no"]) == (0, 1)
    staff_view = [c["comment"] for c in await kb.recent_comments(manual["id"])]
    assert staff_view == ["Missing the filter"]
    assert (await form(portal, f"/portal/service/help/{internal['slug']}/feedback",
                       {"helpful": "yes"})).status_code == 404
    home = await portal.get("/portal/")
    assert "/portal/service/requests/card" in home.text and "/portal/service/help" in home.text


async def test_a_reply_reopens_and_a_rating_is_recorded_once(portal):
    from core.interactions.tables import Interaction

    rapport = portal.rapport
    case = await cases.open_case(rapport, None, customer_id=portal.ada.customer_id,
                                 subject="Oven light", description="The light is out.",
                                 channel="phone")
    early = await form(portal, f"/portal/service/requests/{case['id']}/rate", {"score": "5"})
    assert early.status_code == 400 and "resolved" in early.text
    await cases.change_status(rapport, None, case["id"], "resolved")
    empty = await form(portal, f"/portal/service/requests/{case['id']}/reply", {"body": " "})
    assert empty.status_code == 400 and "write a message or attach a file" in empty.text.lower()
    reply = await form(portal, f"/portal/service/requests/{case['id']}/reply",
                       {"body": "It went out again."},
                       files=[("attachments", ("bulb.txt", b"40 W bulb", "text/plain"))])
    assert reply.status_code == 303
    assert "bulb.txt" in (await portal.get(f"/portal/service/requests/{case['id']}")).text
    row = await Case.select().where(Case.id == case["id"]).first().run()
    assert row["status"] not in ("resolved", "closed") and row["reopened_count"] == 1
    await cases.change_status(rapport, None, case["id"], "resolved")
    wrong = await form(portal, f"/portal/service/requests/{case['id']}/rate", {"score": "7"})
    assert wrong.status_code == 400 and "Rating must be from 1 to 5." in wrong.text
    rated = await form(portal, f"/portal/service/requests/{case['id']}/rate",
                       {"score": "4", "comment": "Quick and kind"})
    assert rated.status_code == 303
    again = await form(portal, f"/portal/service/requests/{case['id']}/rate", {"score": "1"})
    assert again.status_code == 409
    row = await Case.select().where(Case.id == case["id"]).first().run()
    assert (row["satisfaction"], row["satisfaction_comment"]) == (4, "Quick and kind")
    ratings = await Interaction.select().where(
        (Interaction.customer == portal.ada.customer_id)
        & (Interaction.purpose == "satisfaction")).run()
    assert len(ratings) == 1 and "4/5" in ratings[0]["subject"]
    page = await portal.get(f"/portal/service/requests/{case['id']}")
    assert "4/5" in page.text and "How well did we help?" not in page.text
