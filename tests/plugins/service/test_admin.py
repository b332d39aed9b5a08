"""Service setup pages: administrators set up queues and members, routing rules in order, SLA
policies and business calendars; bad input is named field by field; writes are audited;
nobody else gets in."""

from __future__ import annotations

from core.audit import AuditEntry
from tests.conftest import make_user, sign_in
from tests.plugins.service.conftest import post_form
from tests.plugins.service.routing_helpers import agent, queue, rule


async def test_empty_setup_page_explains_what_to_do(service_client):
    page = await service_client.get("/service/admin")
    assert page.status_code == 200
    assert "No queues yet" in page.text
    assert "No routing rules" in page.text
    assert "No calendars" in page.text


async def test_create_queue_with_members_and_availability(service_client):
    from plugins.service.tables import Queue, QueueMember

    ann = await agent("ann@example.test")
    response = await post_form(service_client, "/service/admin/queues", {
        "name": "Front line", "assignment": "round_robin", "manager": str(ann)})
    assert response.status_code == 303
    queue_id = (await Queue.select(Queue.id).where(Queue.name == "Front line").first().run())["id"]
    assert response.headers["location"] == f"/service/admin/queues/{queue_id}"

    added = await post_form(service_client, f"/service/admin/queues/{queue_id}/members",
                            {"user": str(ann)})
    assert added.status_code == 303
    member = await QueueMember.select().where(QueueMember.queue == queue_id).first().run()
    assert member["user"] == ann and member["available"] is True
    twice = await post_form(service_client, f"/service/admin/queues/{queue_id}/members",
                            {"user": str(ann)})
    assert twice.status_code == 400 and "already a member" in twice.text

    away = await post_form(service_client,
                           f"/service/admin/queues/{queue_id}/members/{member['id']}/availability",
                           {})
    assert away.status_code == 303
    assert (await QueueMember.select(QueueMember.available).where(
        QueueMember.id == member["id"]).first().run())["available"] is False
    page = await service_client.get(f"/service/admin/queues/{queue_id}")
    assert "Away" in page.text and "Mark Ann available" in page.text
    assert "<td>0</td>" in page.text  # Ann's open cases
    from plugins.service.tables import Case
    from tests.plugins.service.conftest import new_customer
    from tests.plugins.service.routing_helpers import insert_case

    case = await insert_case(service_client.rapport, await new_customer())
    await Case.update({Case.owner: ann}).where(Case.id == case["id"]).run()
    page = await service_client.get(f"/service/admin/queues/{queue_id}")
    assert "<td>1</td>" in page.text
    assert await AuditEntry.exists().where(
        (AuditEntry.record_type == "service_queue_member") & (AuditEntry.action == "update")).run()
    assert await AuditEntry.exists().where(
        (AuditEntry.record_type == "service_queue") & (AuditEntry.action == "create")).run()


async def test_queue_form_errors_name_the_field(service_client):
    from plugins.service.tables import Queue

    named = await post_form(service_client, "/service/admin/queues",
                            {"name": "Named", "assignment": "named"})
    assert named.status_code == 400
    assert 'id="queue-named_assignee-error"' in named.text
    assert "needs one" in named.text
    assert 'value="Named"' in named.text  # what was typed comes back
    blank = await post_form(service_client, "/service/admin/queues", {"name": " ",
                                                                      "assignment": "none"})
    assert blank.status_code == 400 and 'id="queue-name-error"' in blank.text
    bad_mode = await post_form(service_client, "/service/admin/queues",
                               {"name": "X", "assignment": "lottery"})
    assert bad_mode.status_code == 400 and 'id="queue-assignment-error"' in bad_mode.text
    assert await Queue.count().run() == 0


async def test_queue_cannot_escalate_to_itself_and_names_clash(service_client):
    first = await queue("First", "none")
    await queue("Second", "none")
    itself = await post_form(service_client, f"/service/admin/queues/{first}", {
        "name": "First", "assignment": "none", "escalation_queue": str(first), "active": "on"})
    assert itself.status_code == 400 and "cannot escalate to itself" in itself.text
    clash = await post_form(service_client, f"/service/admin/queues/{first}", {
        "name": "Second", "assignment": "none", "active": "on"})
    assert clash.status_code == 400 and "already has this name" in clash.text


async def test_rules_are_added_at_the_bottom_and_reordered(service_client):
    from plugins.service.tables import RoutingRule

    target = await queue("Support", "none")
    for name in ("Alpha", "Beta", "Gamma"):
        response = await post_form(service_client, "/service/admin/rules",
                                   {"name": name, "queue": str(target)})
        assert response.status_code == 303

    async def order():
        rows = await RoutingRule.select(RoutingRule.name).order_by(RoutingRule.position).run()
        return [r["name"] for r in rows]

    assert await order() == ["Alpha", "Beta", "Gamma"]
    gamma = (await RoutingRule.select(RoutingRule.id).where(
        RoutingRule.name == "Gamma").first().run())["id"]
    await post_form(service_client, f"/service/admin/rules/{gamma}/move", {"direction": "up"})
    assert await order() == ["Alpha", "Gamma", "Beta"]
    await post_form(service_client, f"/service/admin/rules/{gamma}/move", {"direction": "up"})
    await post_form(service_client, f"/service/admin/rules/{gamma}/move", {"direction": "up"})
    assert await order() == ["Gamma", "Alpha", "Beta"]
    page = await service_client.get("/service/admin")
    assert page.text.index("Gamma") < page.text.index("Alpha") < page.text.index("Beta")
    await post_form(service_client, f"/service/admin/rules/{gamma}/delete", {})
    assert await order() == ["Alpha", "Beta"]


async def test_rule_form_checks_its_fields(service_client):
    target = await queue("Support", "none")
    no_queue = await post_form(service_client, "/service/admin/rules", {"name": "x"})
    assert no_queue.status_code == 400 and 'id="rule-queue-error"' in no_queue.text
    bad_type = await post_form(service_client, "/service/admin/rules",
                               {"queue": str(target), "case_type": "gossip"})
    assert bad_type.status_code == 400 and 'id="rule-case_type-error"' in bad_type.text


async def test_sla_policy_per_priority_is_created_then_changed(service_client):
    from plugins.service.tables import SlaPolicy

    values = {"priority": "high", "first_response_minutes": "60",
              "resolution_minutes": "480", "warn_before_minutes": "15"}
    assert (await post_form(service_client, "/service/admin/policies", values)).status_code == 303
    changed = {**values, "first_response_minutes": "30"}
    assert (await post_form(service_client, "/service/admin/policies", changed)).status_code == 303
    rows = await SlaPolicy.select().run()
    assert len(rows) == 1 and rows[0]["first_response_minutes"] == 30
    backwards = await post_form(service_client, "/service/admin/policies",
                                {**values, "resolution_minutes": "10"})
    assert backwards.status_code == 400
    assert 'id="policy-resolution_minutes-error"' in backwards.text
    not_number = await post_form(service_client, "/service/admin/policies",
                                 {**values, "warn_before_minutes": "soon"})
    assert not_number.status_code == 400 and "whole number" in not_number.text


async def test_calendar_with_holidays(service_client):
    from plugins.service.tables import BusinessCalendar, Holiday

    bad_zone = await post_form(service_client, "/service/admin/calendars", {
        "name": "Paris office", "timezone": "Europe/Pariss", "work_days": ["0", "1"],
        "opens_at": "09:00", "closes_at": "17:00"})
    assert bad_zone.status_code == 400
    assert 'id="calendar-timezone-error"' in bad_zone.text
    assert "not a known IANA time zone" in bad_zone.text
    no_days = await post_form(service_client, "/service/admin/calendars", {
        "name": "Paris office", "timezone": "Europe/Paris", "opens_at": "09:00",
        "closes_at": "17:00"})
    assert no_days.status_code == 400 and 'id="calendar-work_days-error"' in no_days.text
    created = await post_form(service_client, "/service/admin/calendars", {
        "name": "Paris office", "timezone": "Europe/Paris", "work_days": ["0", "1", "2"],
        "opens_at": "08:30", "closes_at": "18:00"})
    assert created.status_code == 303
    row = await BusinessCalendar.select().first().run()
    assert row["work_days"] == "0,1,2" and row["opens_at"] == "08:30"
    base = f"/service/admin/calendars/{row['id']}"
    assert (await post_form(service_client, f"{base}/holidays",
                            {"day": "2026-12-25", "name": "Christmas"})).status_code == 303
    again = await post_form(service_client, f"{base}/holidays", {"day": "2026-12-25"})
    assert again.status_code == 400 and "already a holiday" in again.text
    bad_day = await post_form(service_client, f"{base}/holidays", {"day": "25/12/2026"})
    assert bad_day.status_code == 400 and 'id="holiday-day-error"' in bad_day.text
    page = await service_client.get(base)
    assert "2026-12-25" in page.text and "Christmas" in page.text
    assert 'value="08:30"' in page.text
    late = await post_form(service_client, base, {
        "name": "Paris office", "timezone": "Europe/Paris", "work_days": ["0"],
        "opens_at": "18:00", "closes_at": "09:00"})
    assert late.status_code == 400 and 'id="calendar-closes_at-error"' in late.text
    holiday = await Holiday.select().first().run()
    await post_form(service_client, f"{base}/holidays/{holiday['id']}/delete", {})
    assert await Holiday.count().run() == 0


async def test_staff_without_settings_permission_cannot_open_or_change_setup(service_client):
    from plugins.service.tables import Queue

    rapport = service_client.rapport
    from tests.conftest import app_client

    await make_user("agent@example.test", roles=["sales_representative"])
    async with app_client(rapport) as other:
        await sign_in(other, "agent@example.test")
        page = await other.get("/service/admin")
        assert page.status_code == 403
        response = await post_form(other, "/service/admin/queues",
                                   {"name": "Sneaky", "assignment": "none"})
        assert response.status_code == 403
    assert await Queue.count().run() == 0


async def test_overview_lists_queues_rules_and_policies(service_client):
    ann = await agent("ann@example.test")
    support = await queue("Support", "named", named_assignee=ann)
    await rule(support, name="Gold complaints", case_type="complaint", customer_tag="gold",
               set_priority="high")
    page = await service_client.get("/service/admin")
    assert "Support" in page.text and "Named agent: Ann" in page.text
    assert "Gold complaints" in page.text and "tag “gold”" in page.text


async def test_switched_off_rule_stops_routing_and_keeps_its_place(service_client):
    from plugins.service import routing
    from plugins.service.tables import RoutingRule
    from tests.plugins.service.conftest import new_customer

    vip = await queue("VIP", "none")
    general = await queue("General", "none")
    first = await rule(vip, position=10)
    await rule(general, position=20)
    customer = await new_customer()
    case = {"customer": customer, "case_type": "complaint", "priority": "normal",
            "channel": "phone"}
    assert (await routing.route(service_client.rapport, case))["queue"] == vip
    off = await post_form(service_client, f"/service/admin/rules/{first}/active", {})
    assert off.status_code == 303
    assert (await routing.route(service_client.rapport, case))["queue"] == general
    page = await service_client.get("/service/admin")
    assert "Switch on rule 1" in page.text
    await post_form(service_client, f"/service/admin/rules/{first}/active", {"active": "on"})
    assert (await routing.route(service_client.rapport, case))["queue"] == vip
    row = await RoutingRule.select(RoutingRule.position).where(RoutingRule.id == first).first().run()
    assert row["position"] == 10
    assert await AuditEntry.exists().where(AuditEntry.summary == "routing rule off").run()


async def test_policy_form_opens_filled_in_for_a_priority(service_client):
    from tests.plugins.service.routing_helpers import policy

    await policy("urgent", first_response=15, resolution=240, warn=5)
    page = await service_client.get("/service/admin?policy=urgent")
    assert page.status_code == 200
    assert 'id="policy-first_response_minutes" name="first_response_minutes" type="text" ' \
        'value="15"' in page.text
    assert '<option value="urgent" selected>' in page.text
    assert (await service_client.get("/service/admin?policy=bogus")).status_code == 200


async def test_rule_is_changed_in_place(service_client):
    from plugins.service.tables import RoutingRule

    vip = await queue("VIP", "none")
    general = await queue("General", "none")
    rid = await rule(general, position=30, name="Everything")
    page = await service_client.get(f"/service/admin/rules/{rid}")
    assert page.status_code == 200 and 'value="Everything"' in page.text
    bad = await post_form(service_client, f"/service/admin/rules/{rid}",
                          {"name": "Gold", "queue": "", "customer_tag": "gold"})
    assert bad.status_code == 400 and 'id="rule-queue-error"' in bad.text
    assert 'value="gold"' in bad.text
    saved = await post_form(service_client, f"/service/admin/rules/{rid}", {
        "name": "Gold", "queue": str(vip), "customer_tag": "Gold", "set_priority": "high"})
    assert saved.status_code == 303
    row = await RoutingRule.select().where(RoutingRule.id == rid).first().run()
    assert (row["queue"], row["customer_tag"], row["set_priority"], row["position"]) == (
        vip, "gold", "high", 30)
    assert (await service_client.get("/service/admin/rules/999")).status_code == 404
