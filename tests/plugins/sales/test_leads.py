"""Leads: capture from every channel, transparent scoring, assignment rules, notification,
conversion, and the scopes that keep representatives to their own leads."""

from __future__ import annotations

import re

from tests.conftest import csrf_headers, make_user, sign_in
from tests.plugins.sales.conftest import post_form


async def add_scoring_rule(client, **values):
    response = await post_form(client, "/sales/rules/scoring", values)
    assert response.status_code == 303, response.text
    return response


async def test_api_lead_is_scored_by_the_administrators_rules_and_says_why(sales_client):
    await add_scoring_rule(sales_client, field="job_title", condition="contains",
                           value="director", points="20")
    await add_scoring_rule(sales_client, field="industry", condition="one_of",
                           value="retail, software", points="15")
    await add_scoring_rule(sales_client, field="email", condition="ends_with",
                           value="@gmail.com", points="-10")
    created = await sales_client.post("/api/v1/sales/leads", json={
        "first_name": "Ada", "last_name": "Lovelace", "company": "Engines Ltd",
        "job_title": "Sales Director", "industry": "Software", "email": "Ada@Engines.example"})
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["score"] == 35 and lead["email"] == "ada@engines.example"
    detail = (await sales_client.get(f"/api/v1/sales/leads/{lead['id']}")).json()
    assert sorted(r["points"] for r in detail["score_reasons"]) == [15, 20]
    page = await sales_client.get(f"/sales/leads/{lead['id']}")
    assert "Score: 35" in page.text and "job title contains &#39;director&#39;" in page.text


async def test_api_refuses_a_lead_without_contact_details_naming_the_field(sales_client):
    response = await sales_client.post("/api/v1/sales/leads", json={"last_name": "Nobody"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "email"


async def test_scoring_rule_form_shows_the_error_next_to_the_field(sales_client):
    response = await post_form(sales_client, "/sales/rules/scoring",
                               {"field": "email", "condition": "contains", "value": "",
                                "points": "5"})
    assert response.status_code == 400
    assert 'id="err-s-value"' in response.text


async def test_csv_import_stores_good_rows_and_reports_bad_rows_by_line(sales_client):
    csv_text = ("first_name,last_name,company,email,region\n"
                "Grace,Hopper,Navy,grace@navy.example,North\n"
                "Bad,Row,,not-an-email,North\n"
                "Alan,Turing,Bletchley,alan@bp.example,South\n"
                ",,,,\n")
    response = await sales_client.post(
        "/sales/leads/import", files={"file": ("leads.csv", csv_text, "text/csv")},
        data={"_csrf_token": sales_client.cookies["csrftoken"]})
    assert response.status_code == 400
    assert "2 leads imported, 2 rows refused" in response.text
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td>", response.text)
    assert rows == [("3", "email"), ("5", "last_name")]
    listing = await sales_client.get("/api/v1/sales/leads")
    assert {i["last_name"] for i in listing.json()["items"]} == {"Hopper", "Turing"}


async def test_round_robin_assignment_takes_team_members_in_turn(sales_client):
    from core.identity.tables import Team

    first = await make_user("rep1@example.test", roles=["sales_representative"], teams=["North"])
    second = await make_user("rep2@example.test", roles=["sales_representative"],
                             teams=["North"])
    team = (await Team.select(Team.id).where(Team.name == "North").first().run())["id"]
    response = await post_form(sales_client, "/sales/rules/assignment", {
        "name": "North team", "method": "round_robin", "team": str(team)})
    assert response.status_code == 303, response.text
    owners = []
    for i in range(3):
        lead = await sales_client.post("/api/v1/sales/leads", json={
            "last_name": f"Lead {i}", "email": f"l{i}@example.test"})
        owners.append(lead.json()["owner"])
    assert owners == [first, second, first]


async def test_territory_rule_only_takes_leads_of_its_region_and_owner_rule_catches_the_rest(
        sales_client):
    from core.identity.tables import Team

    south = await make_user("south@example.test", roles=["sales_representative"],
                            teams=["South"])
    catch_all = await make_user("desk@example.test", roles=["sales_representative"])
    team = (await Team.select(Team.id).where(Team.name == "South").first().run())["id"]
    await post_form(sales_client, "/sales/rules/assignment", {
        "name": "South", "method": "territory", "region": "South", "team": str(team)})
    await post_form(sales_client, "/sales/rules/assignment", {
        "name": "Everything else", "method": "owner", "user": str(catch_all)})
    in_south = await sales_client.post("/api/v1/sales/leads", json={
        "last_name": "A", "email": "a@example.test", "region": "south"})
    elsewhere = await sales_client.post("/api/v1/sales/leads", json={
        "last_name": "B", "email": "b@example.test", "region": "West"})
    assert in_south.json()["owner"] == south
    assert elsewhere.json()["owner"] == catch_all


async def test_web_form_lead_is_scored_assigned_and_the_representative_is_notified(
        sales_client):
    rapport = sales_client.rapport
    published = []

    async def listen(event):
        published.append(event)

    rapport.event_listeners.append(listen)
    rep = await make_user("rep@example.test", roles=["sales_representative"])
    await post_form(sales_client, "/sales/rules/assignment", {
        "name": "All to rep", "method": "owner", "user": str(rep)})
    await add_scoring_rule(sales_client, field="company", condition="not_empty", value="",
                           points="10")
    form = await sales_client.get("/sales/web-to-lead")
    assert "frame-ancestors *" in form.headers["content-security-policy"]
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
    sales_client.cookies.clear()  # a visitor of another site: no session, no CSRF cookie
    response = await sales_client.post("/sales/web-to-lead", data={
        "token": token, "first_name": "Web", "last_name": "Visitor", "company": "Visitors Inc",
        "email": "visitor@example.test", "website_url": ""})
    assert response.status_code == 200 and "Thank you" in response.text
    from plugins.sales.tables import Lead

    lead = await Lead.select().where(Lead.email == "visitor@example.test").first().run()
    assert lead["owner"] == rep and lead["score"] == 10 and lead["source"] == "web form"
    assigned = [e for e in published if e.name == "sales.lead.assigned"]
    assert assigned and assigned[0].payload["owner_id"] == rep
    pushes = await rapport.acollect("push_notifications", rapport=rapport, event=assigned[0])
    assert [(p.user_id, p.url) for p in pushes] == [(rep, f"/sales/leads/{lead['id']}")]
    # In-app: the representative's dashboard widget lists the new lead.
    await sign_in(sales_client, "rep@example.test")
    widget = await sales_client.get("/sales/widgets/my-leads")
    assert "Web Visitor" in widget.text


async def test_web_form_refuses_bots_fast_senders_and_floods(make_rapport):
    from tests.conftest import app_client

    instance = await make_rapport(["sales"], {"sales": {"webform_min_seconds": 60,
                                                        "webform_max_per_hour": 3}})
    async with app_client(instance) as client:
        from plugins.sales.tables import Lead
        from plugins.sales.webform import issue_token

        secret = instance.settings.secret_key
        fresh = issue_token(secret)
        too_fast = await client.post("/sales/web-to-lead", data={
            "token": fresh, "last_name": "Quick", "email": "q@example.test"})
        assert too_fast.status_code == 400 and "press Send again" in too_fast.text
        forged = await client.post("/sales/web-to-lead", data={
            "token": "1.abc", "last_name": "Forged", "email": "f@example.test"})
        assert forged.status_code == 400
        import time

        old_enough = issue_token(secret, now=time.time() - 120)
        bot = await client.post("/sales/web-to-lead", data={
            "token": old_enough, "last_name": "Bot", "email": "bot@example.test",
            "website_url": "http://spam.example"})
        assert bot.status_code == 200  # the bot is thanked and ignored
        assert await Lead.count().run() == 0
        flooded = await client.post("/sales/web-to-lead", data={
            "token": old_enough, "last_name": "Real", "email": "real@example.test"})
        assert flooded.status_code == 429
        assert await Lead.count().run() == 0


async def test_web_form_filled_by_autofill_is_sent_on_the_second_press(make_rapport):
    """A browser's autofill fills the form at once; the person is asked to check and send
    again, and that second press goes through even though the page was reshown just now."""
    import re
    import time
    from unittest import mock

    from tests.conftest import app_client

    instance = await make_rapport(["sales"], {"sales": {"webform_min_seconds": 3}})
    async with app_client(instance) as client:
        from plugins.sales.tables import Lead

        start = float(int(time.time()))
        with mock.patch("time.time", return_value=start):
            page = await client.get("/sales/web-to-lead")
        token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
        fields = {"last_name": "Autofill", "email": "auto@example.test", "token": token}
        with mock.patch("time.time", return_value=start + 1):
            first = await client.post("/sales/web-to-lead", data=fields)
        assert first.status_code == 400 and "press Send again" in first.text
        assert 'value="Autofill"' in first.text  # nothing typed is lost
        again = re.search(r'name="token" value="([^"]+)"', first.text).group(1)
        with mock.patch("time.time", return_value=start + 3):  # 2 s after the reshown page
            second = await client.post("/sales/web-to-lead", data={**fields, "token": again})
        assert second.status_code == 200
        assert await Lead.count().where(Lead.last_name == "Autofill").run() == 1


async def test_conversion_creates_account_contact_and_opportunity_keeping_the_history(
        sales_client):
    from core.customers.tables import Customer
    from plugins.sales.tables import Lead, LeadActivity, Opportunity

    lead = (await sales_client.post("/api/v1/sales/leads", json={
        "first_name": "Barbara", "last_name": "Liskov", "company": "Substitution Ltd",
        "email": "barbara@subst.example", "phone": "+4420000000"})).json()
    logged = await post_form(sales_client, f"/sales/leads/{lead['id']}/activities",
                             {"channel": "call", "subject": "First call", "notes": "Keen"})
    assert logged.status_code == 303
    response = await sales_client.post(f"/api/v1/sales/leads/{lead['id']}/convert",
                                       json={"amount": "12000.50", "currency": "EUR"})
    assert response.status_code == 201, response.text
    result = response.json()
    account = await Customer.select().where(Customer.id == result["account_id"]).first().run()
    contact = await Customer.select().where(Customer.id == result["contact_id"]).first().run()
    deal = await Opportunity.select().where(
        Opportunity.id == result["opportunity_id"]).first().run()
    assert account["kind"] == "account" and account["name"] == "Substitution Ltd"
    assert contact["kind"] == "contact" and contact["account"] == account["id"]
    assert contact["primary_email"] == "barbara@subst.example"
    assert str(deal["amount_amount"]).startswith("12000.5") and deal["lead"] == lead["id"]
    stored = await Lead.select().where(Lead.id == lead["id"]).first().run()
    assert stored["status"] == "converted" and stored["converted_contact"] == contact["id"]
    # The lead's history joins the contact's timeline and stays on the lead page.
    from core.interactions.tables import Interaction

    copied = await Interaction.select().where(Interaction.customer == contact["id"]).run()
    assert [(i["subject"], i["plugin"], i["plugin_record"]) for i in copied] == [
        ("First call", "sales", f"lead:{lead['id']}")]
    activity = await LeadActivity.select().where(LeadActivity.lead == lead["id"]).first().run()
    assert activity["interaction_id"] == copied[0]["id"]
    page = await sales_client.get(f"/sales/leads/{lead['id']}")
    assert "First call" in page.text and f"/customers/{contact['id']}" in page.text
    again = await sales_client.post(f"/api/v1/sales/leads/{lead['id']}/convert", json={})
    assert again.status_code == 409


async def test_representative_sees_own_leads_only_and_others_answer_404(sales_client):
    rep = await make_user("rep@example.test", roles=["field_representative"])
    other = await make_user("other@example.test", roles=["field_representative"])
    mine = (await sales_client.post("/api/v1/sales/leads", json={
        "last_name": "Mine", "email": "m@example.test", "owner": rep})).json()
    theirs = (await sales_client.post("/api/v1/sales/leads", json={
        "last_name": "Theirs", "email": "t@example.test", "owner": other})).json()
    await sign_in(sales_client, "rep@example.test")
    listing = (await sales_client.get("/api/v1/sales/leads")).json()
    assert [i["id"] for i in listing["items"]] == [mine["id"]]
    assert (await sales_client.get(f"/sales/leads/{theirs['id']}")).status_code == 404
    assert (await sales_client.get(f"/api/v1/sales/leads/{theirs['id']}")).status_code == 404
    convert = await sales_client.post(f"/sales/leads/{theirs['id']}/convert",
                                      data={"_csrf_token": sales_client.cookies["csrftoken"]},
                                      headers=await csrf_headers(sales_client))
    assert convert.status_code == 404
    # A representative may not hand leads to others.
    assign = await post_form(sales_client, f"/sales/leads/{mine['id']}/assign",
                             {"owner": str(other)})
    assert assign.status_code == 403
