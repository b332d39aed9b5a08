"""Dashboard widgets: backlog, SLA attainment and satisfaction trend, each counting only the
cases the user may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import app_client, make_user, sign_in
from tests.plugins.service.conftest import new_customer
from tests.plugins.service.routing_helpers import insert_case, policy, queue, rule


async def _case(rapport, customer, **values):
    from plugins.service.tables import Case

    extra = {k: values.pop(k) for k in list(values) if k not in (
        "priority", "case_type", "channel", "now")}
    row = await insert_case(rapport, customer, **values)
    if extra:
        await Case.update({getattr(Case, k): v for k, v in extra.items()}).where(
            Case.id == row["id"]).run()
    return row


async def test_empty_widgets_say_so(service_client):
    for path, text in (("/service/widgets/backlog", "No open cases"),
                       ("/service/widgets/sla", "No cases with an SLA"),
                       ("/service/widgets/csat", "No satisfaction ratings")):
        response = await service_client.get(path)
        assert response.status_code == 200 and text in response.text, path


async def test_backlog_counts_open_cases_by_priority_and_queue(service_client):
    rapport = service_client.rapport
    support = await queue("Support desk", "none")
    await rule(support, channel="phone")
    customer = await new_customer()
    for priority in ("urgent", "urgent", "low"):
        await _case(rapport, customer, priority=priority)
    await _case(rapport, customer, channel="email")  # no rule: no queue
    await _case(rapport, customer, is_open=False, status="closed")
    page = await service_client.get("/service/widgets/backlog")
    text = " ".join(page.text.split())
    assert "<strong>4</strong> open cases" in text
    assert "<th scope=\"row\">urgent</th><td>2</td>" in text
    assert "<th scope=\"row\">Support desk</th><td>3</td>" in text
    assert "<th scope=\"row\">No queue</th><td>1</td>" in text
    assert "4 unassigned" in text


async def test_sla_attainment_share_of_cases_within_target(service_client):
    rapport = service_client.rapport
    await policy("normal", first_response=60, resolution=600)
    customer = await new_customer()
    now = datetime.now(UTC)
    opened = now - timedelta(days=2)
    # Answered in time, late, and not yet; resolved in time and late.
    await _case(rapport, customer, now=opened, first_responded_at=opened + timedelta(minutes=5),
                resolved_at=opened + timedelta(hours=1), is_open=False, status="resolved")
    await _case(rapport, customer, now=opened, first_responded_at=opened + timedelta(hours=3),
                first_response_breached=True, resolved_at=opened + timedelta(days=1),
                resolution_breached=True, is_open=False, status="resolved")
    await _case(rapport, customer, now=opened, first_response_breached=True)
    # Opened long ago: outside the 30 days.
    await _case(rapport, customer, now=now - timedelta(days=40),
                first_responded_at=now - timedelta(days=39), first_response_breached=True)
    page = await service_client.get("/service/widgets/sla")
    text = " ".join(page.text.split())
    assert "<strong>50%</strong> <span class=\"muted\">(1 of 2 answered)" in text
    assert "<strong>50%</strong> <span class=\"muted\">(1 of 2 resolved)" in text
    assert "1 open case past a deadline" in text


async def test_csat_trend_by_week(service_client):
    rapport = service_client.rapport
    customer = await new_customer()
    now = datetime.now(UTC)
    for score, weeks_ago in ((5, 0), (3, 0), (2, 3), (1, 20)):
        rated = now - timedelta(weeks=weeks_ago)
        await _case(rapport, customer, now=rated - timedelta(days=1), satisfaction=score,
                    rated_at=rated, is_open=False, status="closed")
    page = await service_client.get("/service/widgets/csat")
    text = " ".join(page.text.split())
    assert "Average <strong>3.33</strong> / 5 from 3 ratings over 12 weeks" in text
    assert "<td>4.0</td><td>2</td>" in text
    assert "<td>2.0</td><td>1</td>" in text
    assert "<rect" in text


async def test_widgets_count_only_cases_the_user_may_see(service_client):
    from plugins.service.tables import Case

    rapport = service_client.rapport
    own = await make_user("rep@example.test", roles=["field_representative"])
    customer = await new_customer()
    mine = await _case(rapport, customer, priority="high")
    await Case.update({Case.owner: own, Case.satisfaction: 4,
                       Case.rated_at: datetime.now(UTC)}).where(Case.id == mine["id"]).run()
    for _ in range(3):
        other = await _case(rapport, customer, priority="urgent")
        await Case.update({Case.satisfaction: 1, Case.rated_at: datetime.now(UTC)}).where(
            Case.id == other["id"]).run()
    async with app_client(rapport) as client:
        await sign_in(client, "rep@example.test")
        backlog = " ".join((await client.get("/service/widgets/backlog")).text.split())
        assert "<strong>1</strong> open case" in backlog
        assert "<th scope=\"row\">urgent</th><td>0</td>" in backlog
        csat = " ".join((await client.get("/service/widgets/csat")).text.split())
        assert "Average <strong>4.0</strong> / 5 from 1 rating" in csat
    admin = " ".join((await service_client.get("/service/widgets/backlog")).text.split())
    assert "<strong>4</strong> open cases" in admin


async def test_widgets_need_the_case_permission(service_client):
    await make_user("nobody@example.test", roles=[])
    async with app_client(service_client.rapport) as client:
        await sign_in(client, "nobody@example.test")
        for path in ("/service/widgets/backlog", "/service/widgets/sla",
                     "/service/widgets/csat"):
            assert (await client.get(path)).status_code == 403
