"""E-mail campaigns end to end through a local SMTP server: the template refuses unknown
fields and is sanitised, Send refuses an empty segment or a missing unsubscribe link, the
job mails each recipient once after the contact-policy check (exclusions counted per
reason), one-click unsubscribe works at once, clicks redirect only to the campaign's own
links, opens are counted, and every response is a touch point."""

from __future__ import annotations

import re

from core import jobs
from core.customers.tables import ConsentRecord, Customer
from core.interactions.policy import check_contact
from core.interactions.tables import Interaction
from plugins.campaigns.tables import Campaign, Message
from tests.plugins.campaigns.conftest import new_customer

GOOD = """<p>Hello {{ first_name }},</p><script>alert(1)</script>
<p><a href="https://example.com/spring?x=1&amp;y=2" onclick="steal()">Spring range</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>"""


async def segment(client, **rules) -> int:
    data = {"name": "Everyone with e-mail", "match": "all", "_action": "save",
            "g0_match": "all", **rules}
    response = await client.post("/campaigns/segments", data=data)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].split("/")[-1].split("?")[0])


async def campaign(client, segment_id: int, body: str = GOOD, subject="Hi {{ first_name }}"):
    created = await client.post("/campaigns", data={"name": "Spring", "segment": segment_id})
    assert created.status_code == 303
    campaign_id = int(created.headers["location"].split("/")[-1])
    saved = await client.post(f"/campaigns/{campaign_id}", data={
        "name": "Spring", "segment": segment_id, "subject": subject, "body_html": body})
    return campaign_id, saved


async def audience():
    ada = await new_customer("Ada Lovelace")
    bob = await new_customer("Bob Byron", opted_out_channels="email")
    cy = await new_customer("Cy Consent")
    await ConsentRecord.insert(ConsentRecord(customer=cy, purpose="marketing", channel="",
                                             granted=False, source="phone call")).run()
    di = await new_customer("Di Texter", preferred_channel="sms")
    fay = await new_customer("Fay Nomail", email="")
    gus = await new_customer("Gus Private", do_not_contact=True)
    return ada, bob, cy, di, fay, gus


async def test_a_campaign_reaches_only_those_the_policy_allows_once_each(
        campaigns_client, smtp_sink):
    client = campaigns_client
    rapport = client.rapport
    ada, bob, cy, di, fay, gus = await audience()
    segment_id = await segment(client)

    # An unknown personalisation field is refused when saving, naming the field.
    campaign_id, unknown = await campaign(client, segment_id,
                                          body=GOOD.replace("first_name", "frist_name"))
    assert unknown.status_code == 422
    assert re.search(r'id="f-body_html-error">“frist_name” is not a personalisation field',
                     unknown.text)
    # Without an unsubscribe link it saves, but Send is refused with the reason.
    _, saved = await campaign(client, segment_id, body="<p>Hello {{ first_name }}</p>")
    no_link_id = int(str(saved.headers["location"]).split("/")[-1].split("?")[0])
    refused = await client.post(f"/campaigns/{no_link_id}/send")
    assert refused.status_code == 422 and "has no unsubscribe link" in refused.text

    saved = await client.post(f"/campaigns/{campaign_id}", data={
        "name": "Spring", "segment": segment_id, "subject": "Hi {{ first_name }}",
        "body_html": GOOD})
    assert saved.status_code == 303
    stored = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    assert "<script" not in stored["body_html"] and "onclick" not in stored["body_html"]
    page = await client.get(f"/campaigns/{campaign_id}")
    assert "Send to 6 customers" in page.text and "Hello Ada," in page.text

    sent = await client.post(f"/campaigns/{campaign_id}/send")
    assert sent.status_code == 303
    again = await client.post(f"/campaigns/{campaign_id}/send")
    assert again.status_code == 422 and "already sent" in again.text

    await jobs.run_pending(rapport)
    assert await Message.count().where(Message.campaign == campaign_id).run() == 6
    assert [m["to"] for m in smtp_sink.messages] == [["ada@example.test"]]
    mail = smtp_sink.messages[0]["message"]
    assert mail["Subject"] == "Hi Ada"
    unsubscribe = str(mail["List-Unsubscribe"]).strip().strip("<>")
    assert unsubscribe.startswith("http://testserver.local/campaigns/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert "<script" not in html and "Hello Ada," in text and unsubscribe in text
    assert "example.com/spring" not in html  # the link goes through the signed redirect

    # Running the job again mails nobody twice.
    await jobs.enqueue(rapport, "campaigns.send", {"campaign_id": campaign_id})
    await jobs.run_pending(rapport)
    assert len(smtp_sink.messages) == 1

    report = await client.get(f"/campaigns/{campaign_id}")
    for reason in ("Opted out of e-mail", "Withdrew consent to marketing",
                   "Prefers another channel", "No e-mail address", "Do not contact"):
        assert reason in report.text, reason
    states = {r["customer"]: (r["state"], r["reason"]) for r in
              await Message.select().where(Message.campaign == campaign_id).run()}
    assert states == {ada: ("sent", ""), bob: ("suppressed", "opted_out"),
                      cy: ("suppressed", "no_consent"), di: ("suppressed", "preferred_channel"),
                      fay: ("suppressed", "no_email"), gus: ("suppressed", "do_not_contact")}
    touch = await Interaction.select().where((Interaction.customer == ada)
                                             & (Interaction.plugin == "campaigns")).run()
    assert [(t["direction"], t["channel"]) for t in touch] == [("outbound", "email")]

    # Clicks: the signed redirect goes to the campaign's own link, nowhere else.
    link = re.search(r'href="(http://testserver.local/campaigns/r/[^"]+)"', html).group(1)
    path = link.removeprefix("http://testserver.local")
    click = await client.get(path)
    assert click.status_code == 302
    assert click.headers["location"] == "https://example.com/spring?x=1&y=2"
    token = path.split("/")[3]
    message_id = token.split(".")[0]
    forged = f"/campaigns/r/{int(message_id) + 1}.{token.split('.')[1]}/0"
    assert (await client.get(forged)).status_code == 404
    assert (await client.get(path[:-1] + "7")).status_code == 404
    pixel = await client.get(f"/campaigns/o/{token}")
    assert pixel.headers["content-type"] == "image/gif"
    row = await Message.select().where(Message.id == int(message_id)).first().run()
    assert row["clicks"] == 1 and row["opened_at"] and row["clicked_at"]
    outcomes = await Interaction.select(Interaction.outcome).where(
        (Interaction.customer == ada) & (Interaction.direction == "inbound")).run()
    assert sorted(o["outcome"] for o in outcomes) == ["clicked"]  # the click was the open

    # One-click unsubscribe (RFC 8058): a POST with no cookie and no CSRF token.
    upath = unsubscribe.removeprefix("http://testserver.local")
    ask = await client.get(upath)
    assert ask.status_code == 200 and "Unsubscribe from our e-mails?" in ask.text
    assert (await check_contact(rapport, ada, "email", purpose="marketing")).allowed
    import httpx

    transport = httpx.ASGITransport(app=client._transport.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as bare:
        done = await bare.post(upath, content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    decision = await check_contact(rapport, ada, "email", purpose="marketing")
    assert decision.rule == "opted_out"
    ada_row = await Customer.select().where(Customer.id == ada).first().run()
    assert ada_row["opted_out_channels"] == "email"
    from core.jobs_tables import OutboxEvent  # announced durably, with the opt-out

    [consent] = await OutboxEvent.select(OutboxEvent.payload, OutboxEvent.key).where(
        OutboxEvent.name == "core.customer.consent_changed").run()
    assert consent["key"] == f"customer:{ada}"
    assert '"opted_out_channels": ["email"]' in consent["payload"]
    report = await client.get(f"/campaigns/{campaign_id}")
    assert re.search(r"<strong>1</strong> unsubscribed", report.text)


async def test_sending_is_refused_for_an_empty_segment_and_resumes_without_duplicates(
        campaigns_client, smtp_sink):
    client = campaigns_client
    rapport = client.rapport
    nobody = await segment(client, g0_c0_criterion="core.tag", g0_c0_op="has",
                           g0_c0_value="nobody-has-this")
    empty_id, _ = await campaign(client, nobody)
    refused = await client.post(f"/campaigns/{empty_id}/send")
    assert refused.status_code == 422 and "has no member you may reach" in refused.text
    assert await Message.count().run() == 0

    people = [await new_customer(f"Person{i} Test") for i in range(4)]
    everyone = await segment(client)
    campaign_id, _ = await campaign(client, everyone)
    assert (await client.post(f"/campaigns/{campaign_id}/send")).status_code == 303
    # The job wrote the first page of recipients, then its worker died after claiming the
    # first message: on resume, the rest are written and that one is not mailed again.
    from plugins.campaigns import sending
    from plugins.campaigns.tables import Campaign as CampaignTable

    await sending.materialise(rapport, campaign_id)
    await Message.delete().where(Message.customer.is_in(people[2:])).run()
    await CampaignTable.update({CampaignTable.recipients_ready: False}).where(
        CampaignTable.id == campaign_id).run()
    first = await Message.select().where(Message.customer == people[0]).first().run()
    await Message.update({Message.state: "sending"}).where(Message.id == first["id"]).run()
    await jobs.run_pending(rapport)
    assert sorted(m["to"][0] for m in smtp_sink.messages) == [
        f"person{i}@example.test" for i in (1, 2, 3)]
    states = await Message.select(Message.state, Message.detail).where(
        Message.id == first["id"]).first().run()
    assert states["state"] == "failed" and "not sent again" in states["detail"]
    done = await Campaign.select(Campaign.state).where(Campaign.id == campaign_id).first().run()
    assert done["state"] == "sent"


async def test_a_control_group_is_never_mailed_and_the_report_shows_the_lift(
        campaigns_client, smtp_sink):
    from datetime import UTC, datetime

    client = campaigns_client
    rapport = client.rapport
    people = [await new_customer(f"Member{i} Test") for i in range(20)]
    await new_customer("Opted Out", opted_out_channels="email")
    everyone = await segment(client)
    campaign_id, _ = await campaign(client, everyone)
    bad = await client.post(f"/campaigns/{campaign_id}", data={
        "name": "Spring", "segment": everyone, "subject": "Hi", "body_html": GOOD,
        "holdout_percent": "80"})
    assert bad.status_code == 422 and "between 0 (no control group) and 50 percent" in bad.text
    await client.post(f"/campaigns/{campaign_id}", data={
        "name": "Spring", "segment": everyone, "subject": "Hi", "body_html": GOOD,
        "holdout_percent": "50"})
    assert (await client.post(f"/campaigns/{campaign_id}/send")).status_code == 303
    await jobs.run_pending(rapport)
    rows = await Message.select(Message.customer, Message.email, Message.state).where(
        Message.campaign == campaign_id).run()
    held = [r for r in rows if r["state"] == "holdout"]
    sent = [r for r in rows if r["state"] == "sent"]
    assert held and sent and len(held) + len(sent) == 20  # the opted-out one is suppressed
    mailed = {m["to"][0] for m in smtp_sink.messages}
    assert mailed == {r["email"] for r in sent} and not mailed & {r["email"] for r in held}

    # One control-group customer calls us: the control group's response rate is theirs.
    await Interaction.insert(Interaction(
        customer=held[0]["customer"], channel="call", direction="inbound",
        occurred_at=datetime.now(UTC), created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC))).run()
    page = await client.get(f"/campaigns/{campaign_id}")
    assert "Against the control group" in page.text and "Lift: -" in page.text
    assert people


async def test_an_ab_test_splits_the_recipients_and_compares_the_variants(
        campaigns_client, smtp_sink):
    client = campaigns_client
    rapport = client.rapport
    for i in range(16):
        await new_customer(f"Reader{i} Test")
    everyone = await segment(client)
    campaign_id, _ = await campaign(client, everyone)
    form = {"name": "Spring", "segment": everyone, "subject": "Version A", "body_html": GOOD,
            "subject_b": "Version B for {{ first_name }}",
            "body_html_b": "<p>B, {{ first_name }}</p>"}
    assert (await client.post(f"/campaigns/{campaign_id}", data=form)).status_code == 303
    page = await client.get(f"/campaigns/{campaign_id}")
    assert "Preview of variant B" in page.text and "Version B for Ada" in page.text
    refused = await client.post(f"/campaigns/{campaign_id}/send")
    assert refused.status_code == 422 and "Variant B has no unsubscribe link" in refused.text
    form["body_html_b"] += '<p><a href="{{ unsubscribe_url }}">Stop</a></p>'
    assert (await client.post(f"/campaigns/{campaign_id}", data=form)).status_code == 303
    assert (await client.post(f"/campaigns/{campaign_id}/send")).status_code == 303
    await jobs.run_pending(rapport)
    got = {m["to"][0]: str(m["message"]["Subject"]) for m in smtp_sink.messages}
    assert len(got) == 16
    variants = {r["email"]: r["variant"] for r in await Message.select(
        Message.email, Message.variant).where(Message.campaign == campaign_id).run()}
    for email, subject in got.items():
        assert subject.startswith(f"Version {variants[email]}"), (email, subject)
    assert set(variants.values()) == {"A", "B"}
    report = await client.get(f"/campaigns/{campaign_id}")
    assert "A/B test" in report.text


async def test_a_campaign_sent_later_waits_can_be_cancelled_and_then_goes_out(
        campaigns_client, smtp_sink):
    from datetime import UTC, datetime, timedelta

    from core.plugin import Job
    from plugins.campaigns import sending

    client = campaigns_client
    rapport = client.rapport
    await new_customer("Ada Lovelace")
    everyone = await segment(client)
    campaign_id, _ = await campaign(client, everyone)
    past = await client.post(f"/campaigns/{campaign_id}/send",
                             data={"send_at": "2020-01-01T09:00"})
    assert past.status_code == 422 and 'id="f-send_at-error">is in the past<' in past.text
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    scheduled = await client.post(f"/campaigns/{campaign_id}/send", data={"send_at": later})
    assert scheduled.status_code == 303
    page = await client.get(scheduled.headers["location"])
    assert "This campaign will be sent on" in page.text and "Cancel sending" in page.text
    await jobs.run_pending(rapport)
    assert smtp_sink.messages == []  # not due yet

    assert (await client.post(f"/campaigns/{campaign_id}/unschedule")).status_code == 303
    row = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    assert row["state"] == "draft" and row["scheduled_for"] is None

    scheduled = await client.post(f"/campaigns/{campaign_id}/send", data={"send_at": later})
    assert scheduled.status_code == 303
    # Two days later: the job runs.
    await Campaign.update({Campaign.scheduled_for: datetime.now(UTC)}).where(
        Campaign.id == campaign_id).run()
    await sending.run_send_job(rapport, Job(1, "campaigns.send", {"campaign_id": campaign_id}))
    assert [m["to"] for m in smtp_sink.messages] == [["ada@example.test"]]
    row = await Campaign.select().where(Campaign.id == campaign_id).first().run()
    assert row["state"] == "sent" and row["send_started_at"] is not None
