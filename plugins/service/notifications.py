"""Push (and, through core, in-app) notifications for service events.

* ``service.case.assigned``: to the agent the case was given to.
* ``service.case.sla_warning``: to the case's owner before a deadline (to the queue's
  manager while nobody owns it).
* ``service.case.sla_breached``: to the owner and the queue's manager.
* ``service.case.customer_replied``: to the case's owner.

The topic of each message is the event name, so users switch each kind on or off in their
notification preferences. Nobody is notified of their own action.
"""

from __future__ import annotations

from typing import Any

from core.identity.tables import User
from core.plugin import Event, PushMessage
from plugins.service.tables import Case

TARGET_LABELS = {"first_response": "first response", "resolution": "resolution"}


async def _case_facts(payload: dict[str, Any]) -> dict[str, Any]:
    """Number and subject for the message text (one query when the payload lacks them)."""
    facts = {"number": payload.get("number") or "", "subject": payload.get("subject") or ""}
    if (not facts["number"] or not facts["subject"]) and payload.get("case_id"):
        row = await Case.select(Case.number, Case.subject).where(
            Case.id == payload["case_id"]).first().run()
        if row:
            facts = {"number": facts["number"] or row["number"],
                     "subject": facts["subject"] or row["subject"]}
    return facts


async def _active_users(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = await User.select(User.id).where(
        User.id.is_in(ids) & (User.is_active == True)).run()  # noqa: E712
    return {r["id"] for r in rows}


async def push_messages(rapport, event: Event) -> list[PushMessage] | None:
    payload = event.payload
    name = event.name
    if name == "service.case.assigned":
        recipients = [payload.get("owner_id")]
    elif name == "service.case.sla_warning":
        # The owner; for a case nobody owns yet, the queue's manager (sent as manager_id).
        recipients = [payload.get("owner_id") or payload.get("manager_id")]
    elif name == "service.case.customer_replied":
        recipients = [payload.get("owner_id")]
    elif name == "service.case.sla_breached":
        recipients = [payload.get("owner_id"), payload.get("manager_id")]
    else:
        return None
    wanted = []
    for user_id in recipients:
        if user_id is not None and user_id != event.actor_id and user_id not in wanted:
            wanted.append(user_id)
    wanted = [u for u in wanted if u in await _active_users(wanted)]
    if not wanted:
        return []
    facts = await _case_facts(payload)
    number, subject = facts["number"], facts["subject"]
    url = f"/service/cases/{payload.get('case_id')}"
    target = TARGET_LABELS.get(payload.get("target", ""), "SLA")
    if name == "service.case.assigned":
        title, body, urgency = f"{number} assigned to you", subject, "normal"
    elif name == "service.case.sla_warning":
        title = f"{number}: {target} due soon"
        body, urgency = subject, "high"
    elif name == "service.case.customer_replied":
        reopened = " (reopened)" if payload.get("reopened") else ""
        title, body, urgency = f"{number}: the customer replied{reopened}", subject, "normal"
    else:
        escalated = ", escalated" if payload.get("escalated") else ""
        title = f"{number}: {target} target missed{escalated}"
        body, urgency = subject, "high"
    return [PushMessage(user_id=user_id, topic=name, title=title, body=body, url=url,
                        urgency=urgency) for user_id in wanted]
