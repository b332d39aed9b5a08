"""An account's 360° view gathers its contacts' interactions with its own, pages through them
by keyset in a bounded number of queries, and its key figures refresh after logging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core.interactions.service import record_interaction
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}


async def _account_with_contacts(rapport, contacts: int = 3, each: int = 4):
    account = await add_customer("Acme Ltd", kind="account")
    people = [await add_customer(f"Person {n}", account=account) for n in range(contacts)]
    outsider = await add_customer("Not At Acme")
    start = datetime.now(UTC) - timedelta(days=20)
    hour = 0
    for i in range(each):
        await record_interaction(rapport, None, customer_id=account, channel="email",
                                 subject=f"Account mail {i}",
                                 occurred_at=start + timedelta(hours=hour))
        hour += 1
        for n, person in enumerate(people):
            await record_interaction(rapport, None, customer_id=person, channel="call",
                                     subject=f"Call {n}-{i}",
                                     occurred_at=start + timedelta(hours=hour))
            hour += 1
    await record_interaction(rapport, None, customer_id=outsider, channel="call",
                             subject="Elsewhere", occurred_at=start + timedelta(hours=hour))
    return account, people


def _figures(html: str) -> str:
    return html.split('id="c360-figures"')[1].split("</dl>")[0]


async def test_account_timeline_shows_its_contacts_interactions_with_its_own(admin_client):
    account, people = await _account_with_contacts(admin_client.rapport, contacts=3, each=4)
    page = await admin_client.get(f"/customers/{account}", headers=HTML)
    assert page.status_code == 200
    assert "Account mail 3" in page.text and "Call 2-3" in page.text
    assert "Elsewhere" not in page.text
    # Each row says which contact it was with.
    assert f'<a href="/customers/{people[2]}">Person 2</a>' in page.text
    assert "Interactions, last 90 days</dt><dd>16</dd>" in _figures(page.text)

    # Keyset paging reaches every one of the 16, newest first, none twice.
    seen, url = [], f"/customers/{account}/timeline"
    html = (await admin_client.get(url, headers={"hx-request": "true"})).text
    while True:
        seen += re.findall(r'<a href="/interactions/\d+">([^<]+)</a>', html)
        if "after=" not in html:
            break
        cursor = html.split("after=")[1].split('"')[0].split("&")[0]
        html = (await admin_client.get(f"{url}?after={cursor}",
                                       headers={"hx-request": "true"})).text
    subjects = [s for s in seen if s.startswith(("Account mail", "Call"))]
    assert len(subjects) == 16 and len(set(subjects)) == 16


async def test_a_contacts_own_view_stays_their_own(admin_client):
    account, people = await _account_with_contacts(admin_client.rapport, contacts=2, each=2)
    page = await admin_client.get(f"/customers/{people[0]}", headers=HTML)
    assert "Call 0-1" in page.text and "Call 1-1" not in page.text
    assert "Account mail" not in page.text


async def test_account_timeline_costs_the_same_queries_for_many_contacts(admin_client,
                                                                        monkeypatch):
    from core.customers.tables import Customer

    few, _ = await _account_with_contacts(admin_client.rapport, contacts=2, each=1)
    many = await add_customer("Big Corp", kind="account")
    for n in range(30):
        person = await add_customer(f"Big {n}", account=many)
        await record_interaction(admin_client.rapport, None, customer_id=person,
                                 channel="call", subject=f"Big call {n}")

    engine_class = type(Customer._meta.db)
    run = engine_class.run_querystring

    async def count(path: str) -> int:
        counted = []

        async def counting(engine, querystring, *args, **kwargs):
            counted.append(str(querystring))
            return await run(engine, querystring, *args, **kwargs)

        await admin_client.get(path, headers=HTML)
        with monkeypatch.context() as patch:
            patch.setattr(engine_class, "run_querystring", counting)
            response = await admin_client.get(path, headers=HTML)
        assert response.status_code == 200
        return len(counted)

    assert await count(f"/customers/{many}") == await count(f"/customers/{few}")
    assert await count(f"/customers/{many}/timeline") == await count(f"/customers/{few}/timeline")


async def test_key_figures_refresh_after_logging_from_the_page(admin_client):
    account, people = await _account_with_contacts(admin_client.rapport, contacts=1, each=1)
    page = await admin_client.get(f"/customers/{account}", headers=HTML)
    # The figures reload on the event the log form sends, and on live changes.
    figures_box = page.text.split('id="c360-figures"')[1].split(">")[0]
    assert f'hx-get="/customers/{account}/figures"' in figures_box
    assert "interaction-logged from:body" in figures_box
    assert "Interactions, last 90 days</dt><dd>2</dd>" in _figures(page.text)

    logged = await admin_client.post("/interactions/new", headers={
        **await csrf_headers(admin_client), "hx-request": "true"}, data={
        "customer": str(people[0]), "channel": "call", "direction": "outbound",
        "subject": "Follow-up call"})
    assert logged.status_code == 201 and logged.headers["hx-trigger"] == "interaction-logged"
    fresh = await admin_client.get(f"/customers/{account}/figures",
                                   headers={"hx-request": "true"})
    assert "Interactions, last 90 days</dt><dd>3</dd>" in fresh.text
    assert datetime.now(UTC).strftime("%d %b %Y") in fresh.text.split("Last outbound")[1]


async def test_account_view_hides_contacts_interactions_the_reader_may_not_see(client):
    rep = await make_user("rep@example.test", roles=["field_representative"])
    account = await add_customer("Mine Ltd", kind="account", owner=rep)
    mine = await add_customer("My Contact", account=account, owner=rep)
    theirs = await add_customer("Their Contact", account=account)
    await record_interaction(client.rapport, None, customer_id=mine, channel="call",
                             subject="Visible call")
    await record_interaction(client.rapport, None, customer_id=theirs, channel="call",
                             subject="Hidden call")
    await sign_in(client, "rep@example.test")
    page = await client.get(f"/customers/{account}", headers=HTML)
    assert "Visible call" in page.text and "Hidden call" not in page.text


async def test_a_contacts_new_interaction_reaches_the_open_account_page_live(admin_client):
    import json

    from tests.core.live.test_streams import OpenStream

    account = await add_customer("Acme Ltd", kind="account")
    person = await add_customer("Ada Acme", account=account)
    app = admin_client.rapport.asgi
    async with OpenStream(app, f"/live/customers/{account}", dict(admin_client.cookies)) as s:
        assert (await s.next_event())[0] == "ready"
        row, _ = await record_interaction(admin_client.rapport, None, customer_id=person,
                                          channel="call", subject="Called Ada")
        event, data = await s.next_event()
        assert event == "change" and json.loads(data)["interaction_id"] == row["id"]
