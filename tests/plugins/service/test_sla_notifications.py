"""Push messages for service events: who gets which, and who does not."""

from __future__ import annotations

from core.plugin import Event
from tests.conftest import connected
from tests.plugins.service.routing_helpers import agent


async def test_each_event_reaches_the_right_people(service_rapport):
    from plugins.service.notifications import push_messages

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        boss = await agent("boss3@example.test")
        base = {"case_id": 7, "number": "CS-000007", "subject": "Broken kettle"}

        async def recipients(name, **payload):
            messages = await push_messages(service_rapport, Event(name, {**base, **payload}))
            assert all(m.topic == name and m.url == "/service/cases/7" for m in messages)
            return [m.user_id for m in messages], messages

        assert (await recipients("service.case.assigned", owner_id=ann))[0] == [ann]
        users, [warning] = await recipients("service.case.sla_warning", owner_id=ann,
                                            target="resolution")
        assert users == [ann] and warning.title == "CS-000007: resolution due soon"
        assert warning.urgency == "high" and warning.body == "Broken kettle"
        users, messages = await recipients("service.case.sla_breached", owner_id=ann,
                                           manager_id=boss, target="first_response",
                                           escalated=True)
        assert users == [ann, boss]
        assert messages[0].title == "CS-000007: first response target missed, escalated"
        users, [reply] = await recipients("service.case.customer_replied", owner_id=ann,
                                          reopened=True)
        assert users == [ann] and "reopened" in reply.title
        # Unassigned cases and other events notify nobody.
        assert (await recipients("service.case.customer_replied", owner_id=None))[0] == []
        assert await push_messages(service_rapport, Event("service.case.created", base)) is None


async def test_nobody_is_notified_of_their_own_action_or_when_deactivated(service_rapport):
    from core.identity.tables import User
    from plugins.service.notifications import push_messages

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        gone = await agent("gone@example.test")
        await User.update({User.is_active: False}).where(User.id == gone).run()
        payload = {"case_id": 1, "number": "CS-000001", "subject": "x", "owner_id": ann}
        assert await push_messages(service_rapport, Event(
            "service.case.assigned", payload, actor_id=ann)) == []
        assert await push_messages(service_rapport, Event(
            "service.case.assigned", {**payload, "owner_id": gone})) == []


async def test_missing_subject_is_read_from_the_case(service_rapport):
    from plugins.service.notifications import push_messages
    from tests.plugins.service.conftest import new_customer
    from tests.plugins.service.routing_helpers import insert_case

    async with connected(service_rapport):
        ann = await agent("ann@example.test")
        case = await insert_case(service_rapport, await new_customer(), subject="Leaking tap")
        [message] = await push_messages(service_rapport, Event(
            "service.case.assigned", {"case_id": case["id"], "owner_id": ann}))
        assert message.body == "Leaking tap" and case["number"] in message.title
