"""The interactions list's bulk actions: open follow-ups are marked done or given to someone
else together, within what the user may edit, each change audited and announced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.audit import AuditEntry
from core.identity.users import load_actor
from core.interactions.service import record_interaction
from core.interactions.tables import Interaction
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.interactions.conftest import add_customer

HTML = {"accept": "text/html"}
DUE = datetime(2027, 1, 10, 9, tzinfo=UTC)


async def _followups(rapport, customer, assignee, n, subject="Call back"):
    return [(await record_interaction(
        rapport, None, customer_id=customer, channel="call", subject=f"{subject} {i}",
        occurred_at=DUE - timedelta(days=3), followup_due=DUE + timedelta(hours=i),
        followup_assignee=assignee))[0]["id"] for i in range(n)]


async def _bulk(client, **form):
    return await client.post("/interactions/bulk", headers=await csrf_headers(client),
                             data={"back": "/interactions?channel=call", **form},
                             follow_redirects=False)


async def test_a_manager_gives_follow_ups_to_a_colleague_and_marks_others_done(admin_client):
    rapport = admin_client.rapport
    rep = await make_user("rep@example.test", roles=["sales_representative"])
    customer = await add_customer()
    given = await _followups(rapport, customer, admin_client.user_id, 3)
    page = await admin_client.get("/interactions", headers=HTML)
    assert f'name="ids" value="{given[0]}" form="bulk-followups"' in page.text
    response = await _bulk(admin_client, action="assign_followups", assignee=str(rep),
                           ids=[str(i) for i in given])
    assert response.status_code == 303
    assert response.headers["location"] == "/interactions?channel=call&changed=3"
    rows = await Interaction.select(Interaction.followup_assignee).where(
        Interaction.id.is_in(given)).run()
    assert {r["followup_assignee"] for r in rows} == {rep}
    audited = await AuditEntry.count().where(
        (AuditEntry.record_type == "core_interaction")
        & (AuditEntry.summary == "bulk: follow-up given to another")).run()
    assert audited == 3
    done = await _bulk(admin_client, action="complete_followups", ids=[str(given[0])])
    assert done.headers["location"].endswith("changed=1")
    assert (await Interaction.select(Interaction.followup_done).where(
        Interaction.id == given[0]).first().run())["followup_done"] is True
    shown = await admin_client.get(done.headers["location"], headers=HTML)
    assert "1 follow-up changed." in shown.text


async def test_bad_bulk_requests_say_what_to_fix_and_change_nothing(admin_client):
    rapport = admin_client.rapport
    customer = await add_customer()
    ids = await _followups(rapport, customer, admin_client.user_id, 2)
    for form, said in (({"action": "complete_followups"}, "ids: select at least one"),
                       ({"action": "assign_followups", "ids": [str(ids[0])]},
                        "assignee: choose who is to follow up"),
                       ({"action": "assign_followups", "assignee": "987654",
                         "ids": [str(ids[0])]}, "assignee: "),
                       ({"action": "complete_followups", "ids": ["x"]}, "ids: ")):
        refused = await _bulk(admin_client, **form)
        assert refused.status_code == 400 and "Nothing was changed" in refused.text
        assert said in refused.text, (form, refused.text)
        assert 'href="/interactions?channel=call"' in refused.text  # back, filters kept
    assert await Interaction.count().where(Interaction.followup_done == True).run() == 0  # noqa: E712


async def test_a_representative_changes_only_what_they_may(client):
    rapport = client.rapport
    boss = await load_actor(rapport, await make_user("boss@example.test"))
    rep = await make_user("rep@example.test", roles=["sales_representative"])
    mine = await add_customer("Mine", owner=rep)
    theirs = await add_customer("Theirs", owner=boss.id)
    my_ids = await _followups(rapport, mine, rep, 1)
    other_ids = await _followups(rapport, theirs, boss.id, 1)
    await sign_in(client, "rep@example.test")
    response = await _bulk(client, action="complete_followups",
                           ids=[str(my_ids[0]), str(other_ids[0])])
    assert response.headers["location"].endswith("changed=1")
    states = {r["id"]: r["followup_done"] for r in await Interaction.select(
        Interaction.id, Interaction.followup_done).run()}
    assert states == {my_ids[0]: True, other_ids[0]: False}
