"""The case service: the one way cases are opened, answered, moved and rated.

Web pages, the API, inbound e-mail, the portal and demo data all call these functions, so
every write is validated the same way, happens in one transaction (case, message,
attachments, events, timeline entry, audit), and is announced only after it committed.

Row scopes are the caller's business: these functions trust the ``case_id`` they are given
(pages and the API find the case through :func:`visible_case` first).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import audit, db, records, references
from core.customers.tables import Customer
from core.interactions.service import InteractionError, record_interaction
from core.interactions.tables import Interaction
from core.permissions import Actor, scoped
from plugins.service import attachments as files
from plugins.service.attachments import NewAttachment
from plugins.service.tables import (
    CASE_TYPES,
    CHANNELS,
    MESSAGE_KINDS,
    OPEN_STATUSES,
    PRIORITIES,
    PRIORITY_RANK,
    STATUSES,
    Case,
    CaseAttachment,
    CaseEvent,
    CaseMessage,
    Queue,
)

if TYPE_CHECKING:
    from core.app import Rapport

log = logging.getLogger("rapport.service.cases")

__all__ = ["UNCHANGED", "CaseError", "NewAttachment", "add_message", "assign", "change_status",
           "get_case", "open_case", "rate", "set_priority", "visible_case"]

UNCHANGED: Any = object()
SUBJECT_MAX = 300
BODY_MAX = 50_000
COMMENT_MAX = 2000
# Where a status may go. Nothing returns to "new"; a resolved or closed case reopens to open.
TRANSITIONS = {
    "new": ("open", "waiting", "resolved", "closed"),
    "open": ("waiting", "resolved", "closed"),
    "waiting": ("open", "resolved", "closed"),
    "resolved": ("open", "closed"),
    "closed": ("open",),
}
# A case's channel of origin as a timeline channel (core calls the phone "call").
TIMELINE_CHANNEL = {"phone": "call", "email": "email", "portal": "portal", "chat": "chat",
                    "web": "web", "visit": "visit"}
LABELS = {
    "case_type": {"service_request": "Service request", "complaint": "Complaint",
                  "product_return": "Product return",
                  "information_request": "Information request",
                  "maintenance": "Maintenance / repair"},
    "priority": {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"},
    "status": {"new": "New", "open": "Open", "waiting": "Waiting on customer",
               "resolved": "Resolved", "closed": "Closed"},
    "channel": {"portal": "Portal", "email": "E-mail", "phone": "Phone", "chat": "Chat",
                "web": "Web form", "visit": "Visit"},
}


class CaseError(ValueError):
    """Bad input for a case. ``field`` is the form/API field name, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def case_number(case_id: int) -> str:
    return f"CS-{case_id:06d}"


def _choice(field: str, value: Any, allowed: Sequence[str]) -> str:
    text = str(value or "").strip().lower()
    if text not in allowed:
        raise CaseError(field, f"must be one of {', '.join(allowed)}")
    return text


def _text(field: str, value: Any, limit: int, *, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise CaseError(field, "is required")
    if len(text) > limit:
        raise CaseError(field, f"is too long (at most {limit} characters)")
    return text


def _staff_id(actor: Actor | None) -> int | None:
    return actor.id if actor is not None and actor.kind == "staff" else None


async def get_case(case_id: int) -> dict[str, Any] | None:
    return await Case.select().where(Case.id == case_id).first().run()


async def visible_case(rapport: Rapport, actor: Actor, case_id: int,
                       permission: str = "service.case.view") -> dict[str, Any] | None:
    """The case if ``actor`` may reach it with ``permission`` (else None: answer 404)."""
    query = scoped(Case.select().where(Case.id == case_id), rapport, actor, permission, Case)
    return await query.first().run()


async def publish_case_event(rapport: Rapport, name: str, payload: dict[str, Any], *,
                             actor_id: int | None = None) -> None:
    """Announce a case event. Case events are durable (docs/events.md): call this inside the
    transaction of the change, so the event exists if and only if the change commits, and
    reaches each subscriber in order per case. Once the change commits, this process also
    refreshes open queue views and mails the customer (acknowledgement, reply, resolved)."""
    event = await rapport.publish(name, payload, actor_id=actor_id,
                                  key=f"case:{payload['case_id']}")

    async def announce() -> None:
        from plugins.service import cases_web, email_out

        try:
            await cases_web.on_event(rapport, event)  # live queue views
            await email_out.on_event(rapport, event)
        except Exception:  # the change is committed; its mail must not fail the request
            log.exception("handling %s after its commit failed", name)

    if not db.after_commit(Case._meta.db, announce):
        await announce()


async def _publish(rapport: Rapport, name: str, payload: dict[str, Any],
                   actor: Actor | None) -> None:
    await publish_case_event(rapport, name, payload, actor_id=_staff_id(actor))


async def _event(case_id: int, kind: str, old: Any, new: Any, actor: Actor | None) -> None:
    await CaseEvent.insert(CaseEvent(
        case=case_id, kind=kind, old_value="" if old is None else str(old)[:200],
        new_value="" if new is None else str(new)[:200], user=_staff_id(actor),
        at=datetime.now(UTC))).run()


async def _timeline(rapport: Rapport, actor: Actor | None, case: dict[str, Any], *,
                    channel: str, direction: str, subject: str, notes: str, client_id: str,
                    purpose: str = "service", ip: str = "") -> int:
    """Record a customer-visible step of the case in the customer's unified timeline.

    Recorded as a trusted plugin write (the agent handling a case may not be allowed to see
    the customer record itself), then attributed to the agent."""
    try:
        row, _created = await record_interaction(
            rapport, None, customer_id=case["customer"],
            channel=TIMELINE_CHANNEL.get(channel, "web"), direction=direction,
            subject=subject[:300], notes=notes[:20000], purpose=purpose,
            plugin="service", plugin_record=str(case["id"]), client_id=client_id,
            visible_in_portal=True, ip=ip)
    except InteractionError as exc:
        raise CaseError("customer_id" if exc.field == "customer_id" else exc.field,
                        exc.message) from None
    user_id = _staff_id(actor)
    if user_id is not None and row["user"] != user_id:
        await records.update(actor, Interaction, row["id"], {"user": user_id}, ip=ip)
    return row["id"]


def _status_fields(case: dict[str, Any], new: str, now: datetime) -> dict[str, Any]:
    """The columns that follow a status: is_open, resolved/closed times, the waiting clock."""
    old = case["status"]
    changes: dict[str, Any] = {"status": new, "is_open": new in OPEN_STATUSES,
                               "updated_at": now}
    if new == "resolved":
        changes["resolved_at"] = now
    elif new == "closed":
        changes["closed_at"] = now
        if case.get("resolved_at") is None:
            changes["resolved_at"] = now
    elif new in OPEN_STATUSES and old in ("resolved", "closed"):
        changes.update(resolved_at=None, closed_at=None)
    if new == "waiting" and old != "waiting":
        changes["waiting_since"] = now
    elif old == "waiting" and new != "waiting":
        changes["waiting_since"] = None
    return changes


async def _move_status(rapport: Rapport, actor: Actor | None, case: dict[str, Any], new: str,
                       now: datetime, *, reopen: bool = False) -> dict[str, Any]:
    """Changes for a status move, with the SLA clock's say (called inside a transaction)."""
    from plugins.service import sla

    changes = _status_fields(case, new, now)
    # The SLA sees the case as it was (waiting_since intact), and has the last word.
    changes.update(await sla.on_status_change(rapport, dict(case), case["status"], new, now)
                   or {})
    if reopen:
        changes["reopened_count"] = (case.get("reopened_count") or 0) + 1
        await _event(case["id"], "reopened", case["status"], new, actor)
    await _event(case["id"], "status", case["status"], new, actor)
    return changes


async def _check_attachments(rapport: Rapport, uploads: Sequence[NewAttachment]) -> None:
    for upload in uploads:
        files.check(rapport, upload)


async def _save_attachments(rapport: Rapport, case_id: int, message_id: int | None,
                            uploads: Sequence[NewAttachment], saved: list[dict[str, Any]], *,
                            user_id: int | None, customer_id: int | None,
                            visible: bool) -> None:
    for upload in uploads:
        saved.append(await files.save(rapport, case_id, message_id, upload, user_id=user_id,
                                      customer_id=customer_id, visible_to_customer=visible))


# --- opening ---------------------------------------------------------------------------------


async def open_case(rapport: Rapport, actor: Actor | None, *, customer_id: int, subject: str,
                    description: str = "", case_type: str = "service_request",
                    priority: str = "normal", channel: str = "phone", product: str = "",
                    product_ref: str = "", message_id: str = "", author_email: str = "",
                    from_customer: bool = False, attachments: Sequence[NewAttachment] = (),
                    ip: str = "", default_owner_id: int | None = None) -> dict[str, Any]:
    """Open a case for a customer; return the case row (after routing and SLA).

    ``default_owner_id`` owns the case when routing gives it to nobody (staff pages pass the
    agent who took it, so an agent who sees only their own cases keeps sight of it)."""
    from plugins.service import routing, sla

    subject = _text("subject", subject, SUBJECT_MAX, required=True)
    description = _text("description", description, BODY_MAX)
    case_type = _choice("case_type", case_type, CASE_TYPES)
    priority = _choice("priority", priority, PRIORITIES)
    channel = _choice("channel", channel, CHANNELS)
    product = _text("product", product, 300)
    product_ref = _text("product_ref", product_ref, 100)
    message_id = _text("message_id", message_id, 300)
    author_email = _text("author_email", author_email, 254)
    try:
        customer_id = int(customer_id)
    except (TypeError, ValueError):
        raise CaseError("customer_id", "choose a customer") from None
    if not await Customer.exists().where(Customer.id == customer_id).run():
        raise CaseError("customer_id", "no such customer")
    if actor is not None and actor.kind == "portal" and actor.customer_id != customer_id:
        raise CaseError("customer_id", "no such customer")
    await _check_attachments(rapport, attachments)
    from_customer = from_customer or (actor is not None and actor.kind == "portal")

    now = datetime.now(UTC)
    user_id = _staff_id(actor)
    saved: list[dict[str, Any]] = []
    try:
        async with Case._meta.db.transaction():
            inserted = await Case.insert(Case(
                # A unique placeholder until the id is known; replaced just below.
                number=f"tmp-{uuid.uuid4().hex[:16]}", subject=subject, description=description,
                case_type=case_type, priority=priority, priority_rank=PRIORITY_RANK[priority],
                status="new", is_open=True, channel=channel, customer=customer_id,
                product=product, product_ref=product_ref, created_by=user_id,
                thread_id=message_id, created_at=now, updated_at=now,
            )).returning(Case.id).run()
            case_id = inserted[0]["id"]
            number = case_number(case_id)
            await Case.update({Case.number: number}).where(Case.id == case_id).run()
            case = await get_case(case_id)

            changes: dict[str, Any] = {}
            routed = await routing.route(rapport, dict(case)) or {}
            for key in ("queue", "owner", "team", "priority", "priority_rank"):
                if key in routed:
                    changes[key] = routed[key]
            if "priority" in changes:
                changes["priority"] = _choice("priority", changes["priority"], PRIORITIES)
                changes["priority_rank"] = PRIORITY_RANK[changes["priority"]]
            if not changes.get("owner") and default_owner_id is not None:
                changes["owner"] = default_owner_id
            case.update(changes)
            targets = await sla.targets(rapport, dict(case), now) or {}
            for key in ("sla_policy", "first_response_due", "resolution_due"):
                if key in targets:
                    changes[key] = targets[key]
            case.update(changes)

            opening = None
            if description or attachments or message_id:
                rows = await CaseMessage.insert(CaseMessage(
                    # The customer's words; author_user is the agent who took them down.
                    case=case_id, kind="inbound", body=description, channel=channel,
                    author_user=None if from_customer else user_id,
                    author_customer=customer_id,
                    author_email=author_email, message_id=message_id, created_at=now,
                )).returning(*CaseMessage._meta.columns).run()
                opening = rows[0]
                await _save_attachments(
                    rapport, case_id, opening["id"], attachments, saved,
                    user_id=None if from_customer else user_id,
                    customer_id=customer_id if from_customer else None, visible=True)

            await _event(case_id, "status", "", "new", actor)
            if case.get("queue"):
                await _event(case_id, "queued", "", case["queue"], actor)
            if case.get("owner"):
                await _event(case_id, "assigned", "", case["owner"], actor)
            if case["priority"] != priority:
                await _event(case_id, "priority", priority, case["priority"], actor)

            interaction_id = await _timeline(
                rapport, actor, case, channel=channel, direction="inbound",
                subject=f"{number} opened: {subject}", notes=description,
                client_id=f"service-case-{case_id}", ip=ip)
            changes["interaction_id"] = interaction_id
            if changes:
                await Case.update({getattr(Case, k): v for k, v in changes.items()}).where(
                    Case.id == case_id).run()
            if opening is not None:
                await CaseMessage.update({CaseMessage.interaction_id: interaction_id}).where(
                    CaseMessage.id == opening["id"]).run()
            case = await get_case(case_id)
            await audit.record(actor, "create", Case._meta.tablename, case_id,
                               audit.diff(None, case), summary=f"{number}: {subject}"[:300],
                               ip=ip)
            await _publish(rapport, "service.case.created", {
                "case_id": case_id, "number": number, "customer_id": customer_id,
                "owner_id": case["owner"], "queue_id": case["queue"],
                "priority": case["priority"], "case_type": case_type, "channel": channel},
                actor)
            if case["owner"] is not None:
                await _publish(rapport, "service.case.assigned", {
                    "case_id": case_id, "number": number, "owner_id": case["owner"],
                    "queue_id": case["queue"], "previous_owner_id": None, "subject": subject},
                    actor)
    except BaseException:
        files.remove_files(rapport, saved)
        raise
    return case


# --- the conversation ------------------------------------------------------------------------


async def add_message(rapport: Rapport, actor: Actor | None, case_id: int, *, kind: str,
                      body: str, channel: str = "", author_customer_id: int | None = None,
                      author_email: str = "", message_id: str = "", in_reply_to: str = "",
                      attachments: Sequence[NewAttachment] = (), ip: str = "",
                      status: str | None = None) -> dict[str, Any]:
    """Add a reply, an internal note or a customer's message; return the message row.

    A reply moves the case to ``waiting`` (or to ``status`` when given, e.g. "resolved"); a
    customer's message reopens a resolved or closed case and ends waiting.
    """
    kind = _choice("kind", kind, MESSAGE_KINDS)
    body = _text("body", body, BODY_MAX)
    if not body and not attachments:
        raise CaseError("body", "write a message or attach a file")
    if channel:
        channel = _choice("channel", channel, CHANNELS)
    message_id = _text("message_id", message_id, 300)
    in_reply_to = _text("in_reply_to", in_reply_to, 300)
    author_email = _text("author_email", author_email, 254)
    if status is not None:
        status = _choice("status", status, STATUSES)
    case = await get_case(case_id)
    if case is None:
        raise CaseError("case", "no such case")
    if kind == "inbound":
        if actor is not None and actor.kind == "portal":
            author_customer_id = actor.customer_id
        author_customer_id = author_customer_id or case["customer"]
    elif actor is not None and actor.kind == "portal":
        raise CaseError("kind", "customers can only write messages")
    await _check_attachments(rapport, attachments)
    if kind == "reply":
        # Replies go out by e-mail (email_out sends them): the conversation and the timeline
        # record that channel, not the one the case came in by.
        channel = channel or "email"
    channel = channel or ("" if kind == "note" else case["channel"])

    now = datetime.now(UTC)
    # For a customer's message this is the agent who took it down (a phone call, a letter).
    user_id = _staff_id(actor)
    old_status = case["status"]
    reopened = False
    saved: list[dict[str, Any]] = []
    try:
        async with Case._meta.db.transaction():
            case = await get_case(case_id)  # fresh inside the transaction
            rows = await CaseMessage.insert(CaseMessage(
                case=case_id, kind=kind, body=body, channel=channel, author_user=user_id,
                author_customer=author_customer_id if kind == "inbound" else None,
                author_email=author_email, message_id=message_id, in_reply_to=in_reply_to,
                created_at=now,
            )).returning(*CaseMessage._meta.columns).run()
            message = rows[0]
            await _save_attachments(
                rapport, case_id, message["id"], attachments, saved, user_id=user_id,
                customer_id=author_customer_id if kind == "inbound" else None,
                visible=kind != "note")

            changes: dict[str, Any] = {"updated_at": now}
            target = status
            if kind == "reply":
                if case["first_responded_at"] is None:
                    changes["first_responded_at"] = now
                if target is None and case["status"] in ("new", "open"):
                    target = "waiting"
            elif kind == "inbound":
                if case["status"] in ("resolved", "closed"):
                    target, reopened = "open", True
                elif case["status"] == "waiting":
                    target = "open"
            elif target is None and case["status"] == "new":
                target = "open"  # someone is working on it
            if target is not None and target != case["status"]:
                if target not in TRANSITIONS[case["status"]]:
                    raise CaseError("status", f"a {case['status']} case cannot become {target}")
                changes.update(await _move_status(rapport, actor, case, target, now,
                                                  reopen=reopened))

            if kind != "note":
                direction = "outbound" if kind == "reply" else "inbound"
                prefix = "Reply" if kind == "reply" else "Customer message"
                interaction_id = await _timeline(
                    rapport, actor, case, channel=channel or case["channel"],
                    direction=direction, subject=f"{case['number']} {prefix}: {case['subject']}",
                    notes=body, client_id=f"service-message-{message['id']}", ip=ip)
                await CaseMessage.update({CaseMessage.interaction_id: interaction_id}).where(
                    CaseMessage.id == message["id"]).run()
                message["interaction_id"] = interaction_id
            case = await records.update(actor, Case, case_id, changes, ip=ip,
                                        summary=f"{kind} added")
            payload = {"case_id": case_id, "number": case["number"],
                       "message_id": message["id"], "customer_id": case["customer"],
                       "owner_id": case["owner"]}
            if kind == "reply":
                await _publish(rapport, "service.case.replied", payload, actor)
            elif kind == "inbound":
                await _publish(rapport, "service.case.customer_replied",
                               {**payload, "reopened": reopened}, actor)
            if case["status"] != old_status:
                await _publish(rapport, "service.case.status_changed", {
                    "case_id": case_id, "number": case["number"],
                    "customer_id": case["customer"], "owner_id": case["owner"],
                    "old": old_status, "new": case["status"]}, actor)
    except BaseException:
        files.remove_files(rapport, saved)
        raise
    message["attachments"] = saved
    return message


# --- status, priority, assignment ------------------------------------------------------------


async def change_status(rapport: Rapport, actor: Actor | None, case_id: int, status: str, *,
                        ip: str = "") -> dict[str, Any]:
    """Move a case along the workflow; return the case."""
    status = _choice("status", status, STATUSES)
    async with Case._meta.db.transaction():
        case = await get_case(case_id)
        if case is None:
            raise CaseError("case", "no such case")
        old = case["status"]
        if status == old:
            return case
        if status not in TRANSITIONS[old]:
            raise CaseError("status", f"a {LABELS['status'][old].lower()} case cannot become "
                                      f"{LABELS['status'][status].lower()}")
        now = datetime.now(UTC)
        changes = await _move_status(rapport, actor, case, status, now,
                                     reopen=old in ("resolved", "closed")
                                     and status in OPEN_STATUSES)
        case = await records.update(actor, Case, case_id, changes, ip=ip,
                                    summary=f"status {old} → {status}")
        await _publish(rapport, "service.case.status_changed", {
            "case_id": case_id, "number": case["number"], "customer_id": case["customer"],
            "owner_id": case["owner"], "old": old, "new": status}, actor)
    return case


async def set_priority(rapport: Rapport, actor: Actor | None, case_id: int, priority: str, *,
                       ip: str = "") -> dict[str, Any]:
    """Change a case's priority; the SLA targets follow the new priority."""
    from plugins.service import sla

    priority = _choice("priority", priority, PRIORITIES)
    async with Case._meta.db.transaction():
        case = await get_case(case_id)
        if case is None:
            raise CaseError("case", "no such case")
        if case["priority"] == priority:
            return case
        now = datetime.now(UTC)
        changes: dict[str, Any] = {"priority": priority, "priority_rank": PRIORITY_RANK[priority],
                                   "updated_at": now}
        if case["is_open"]:
            targets = await sla.targets(rapport, {**case, **changes}, now) or {}
            for key in ("sla_policy", "first_response_due", "resolution_due"):
                if key in targets:
                    changes[key] = targets[key]
        await _event(case_id, "priority", case["priority"], priority, actor)
        case = await records.update(actor, Case, case_id, changes, ip=ip,
                                    summary=f"priority {case['priority']} → {priority}")
    return case


async def assign(rapport: Rapport, actor: Actor | None, case_id: int, *,
                 owner_id: int | None | object = UNCHANGED,
                 queue_id: int | None | object = UNCHANGED, ip: str = "") -> dict[str, Any]:
    """Give a case to an agent and/or a queue (None clears). A queue with a team brings the
    case into that team, so the team's agents see it."""
    changes: dict[str, Any] = {}
    queue = None
    if owner_id is not UNCHANGED and owner_id is not None:
        try:
            owner_id = int(owner_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise CaseError("owner_id", "choose an agent") from None
        try:  # someone the assigning agent may give cases to (core.references)
            await references.owner(rapport, actor, "owner_id", owner_id, "service.case.assign")
        except references.ReferenceRefused as exc:
            raise CaseError(exc.field, exc.message) from None
    if queue_id is not UNCHANGED and queue_id is not None:
        try:
            queue_id = int(queue_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise CaseError("queue_id", "choose a queue") from None
        queue = await Queue.select().where(Queue.id == queue_id).first().run()
        if queue is None:
            raise CaseError("queue_id", "no such queue")
    async with Case._meta.db.transaction():
        case = await get_case(case_id)
        if case is None:
            raise CaseError("case", "no such case")
        previous_owner = case["owner"]
        if owner_id is not UNCHANGED and owner_id != case["owner"]:
            changes["owner"] = owner_id
            await _event(case_id, "assigned", case["owner"] or "", owner_id or "", actor)
        if queue_id is not UNCHANGED and queue_id != case["queue"]:
            changes["queue"] = queue_id
            if queue is not None and queue["team"] is not None:
                changes["team"] = queue["team"]
            await _event(case_id, "queued", case["queue"] or "", queue_id or "", actor)
        if not changes:
            return case
        changes["updated_at"] = datetime.now(UTC)
        case = await records.update(actor, Case, case_id, changes, ip=ip, summary="assigned")
        await _publish(rapport, "service.case.assigned", {
            "case_id": case_id, "number": case["number"], "owner_id": case["owner"],
            "queue_id": case["queue"], "previous_owner_id": previous_owner,
            "subject": case["subject"]}, actor)
    return case


# --- satisfaction ----------------------------------------------------------------------------


async def rate(rapport: Rapport, case_id: int, *, customer_id: int, score: int,
               comment: str = "") -> dict[str, Any]:
    """The customer rates the resolution of their case (1 to 5); return the case."""
    try:
        score = int(score)
    except (TypeError, ValueError):
        raise CaseError("score", "must be a whole number from 1 to 5") from None
    if not 1 <= score <= 5:
        raise CaseError("score", "must be from 1 to 5")
    comment = _text("comment", comment, COMMENT_MAX)
    async with Case._meta.db.transaction():
        case = await get_case(case_id)
        if case is None or case["customer"] != customer_id:
            raise CaseError("case", "no such case")
        if case["status"] not in ("resolved", "closed"):
            raise CaseError("score", "only a resolved or closed case can be rated")
        if case["rated_at"] is not None:
            raise CaseError("score", "this case was already rated")
        now = datetime.now(UTC)
        await _event(case_id, "rated", "", score, None)
        await _timeline(rapport, None, case, channel="portal", direction="inbound",
                        subject=f"{case['number']} rated {score}/5", notes=comment,
                        purpose="satisfaction", client_id=f"service-rating-{case_id}")
        case = await records.update(None, Case, case_id, {
            "satisfaction": score, "satisfaction_comment": comment, "rated_at": now},
            summary=f"rated {score}/5")
        await _publish(rapport, "service.case.rated", {
            "case_id": case_id, "number": case["number"], "customer_id": customer_id,
            "owner_id": case["owner"], "score": score}, None)
    return case


# --- reading for pages and the API -----------------------------------------------------------


def _of_conversation(case_id: int, include_notes: bool):
    """The where-clause of a case's messages (without notes for the customer's eyes)."""
    where = CaseMessage.case == case_id
    return where if include_notes else where & (CaseMessage.kind != "note")


def _messages(case_id: int, include_notes: bool):
    """A case's messages with their authors' names joined (no query per message)."""
    return CaseMessage.select(
        *CaseMessage._meta.columns, CaseMessage.author_user.name.as_alias("author_user_name"),
        CaseMessage.author_customer.name.as_alias("author_customer_name"),
    ).where(_of_conversation(case_id, include_notes))


async def _attach_files(case_id: int, messages: list[dict[str, Any]], include_notes: bool, *,
                        all_of_case: bool = False) -> None:
    """Each message's attachments, read in one query (customers see only visible files)."""
    attach = CaseAttachment.select().where(CaseAttachment.case == case_id)
    if not all_of_case:
        if not messages:
            return
        attach = attach.where(CaseAttachment.message.is_in([m["id"] for m in messages]))
    if not include_notes:
        attach = attach.where(CaseAttachment.visible_to_customer == True)  # noqa: E712
    by_message: dict[int | None, list[dict[str, Any]]] = {}
    for row in await attach.order_by(CaseAttachment.id).run():
        by_message.setdefault(row["message"], []).append(row)
    for message in messages:
        message["attachments"] = by_message.get(message["id"], [])


async def conversation(case_id: int, *, include_notes: bool) -> list[dict[str, Any]]:
    """A case's whole conversation, oldest first, each message with its attachments (two
    queries in all). Pages show it a page at a time (:func:`conversation_page`), the API
    lists it a page at a time (:func:`message_list`).

    Portal pages pass ``include_notes=False``: notes and their files never leave the staff
    side."""
    messages = await _messages(case_id, include_notes).order_by(CaseMessage.id).run()
    await _attach_files(case_id, messages, include_notes, all_of_case=True)
    return messages


CONVERSATION_PAGE = 50  # messages a case page shows at a time


def cursor_id(raw: Any) -> int | None:
    """A row id read from a cursor in a URL, or None: only ASCII digits that fit a 64-bit
    integer, so a hand-made cursor never reaches the database as a value it cannot hold."""
    text = str(raw or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


@dataclass(frozen=True)
class ConversationPage:
    """One page of a conversation, oldest first. ``earlier`` is the ``before=`` cursor of the
    page before it (the id of its oldest message), ``None`` when it starts the conversation;
    ``newer`` the ``after=`` cursor of the page after it (the id of its newest message),
    ``None`` when it is the latest page."""

    messages: list[dict[str, Any]]
    earlier: int | None
    newer: int | None

    @property
    def latest(self) -> bool:
        return self.newer is None


async def conversation_page(case_id: int, *, include_notes: bool, before: int | None = None,
                            after: int | None = None, limit: int = CONVERSATION_PAGE
                            ) -> ConversationPage:
    """The latest ``limit`` messages of a case, or those just before message ``before``, or
    just after message ``after``: keyset pages on the message id (the conversation's order)
    along the ``(case, id)`` index, never an offset. At most three queries whatever the
    page: the messages with their authors' names, whether more lies on the cursor's side,
    and the page's attachments. A cursor beyond either end gives the latest page.
    ``include_notes=False`` as for :func:`conversation`."""
    scope = _of_conversation(case_id, include_notes)
    if after is not None:
        rows = await _messages(case_id, include_notes).where(CaseMessage.id > after).order_by(
            CaseMessage.id).limit(limit + 1).run()
        if rows:
            newer = rows[limit - 1]["id"] if len(rows) > limit else None
            rows = rows[:limit]
            older = await CaseMessage.exists().where(
                scope & (CaseMessage.id < rows[0]["id"])).run()
            await _attach_files(case_id, rows, include_notes)
            return ConversationPage(rows, rows[0]["id"] if older else None, newer)
        before = None
    query = _messages(case_id, include_notes)
    if before is not None:
        query = query.where(CaseMessage.id < before)
    rows = await query.order_by(CaseMessage.id, ascending=False).limit(limit + 1).run()
    if before is not None and not rows:
        return await conversation_page(case_id, include_notes=include_notes, limit=limit)
    earlier = rows[limit - 1]["id"] if len(rows) > limit else None
    rows = rows[:limit][::-1]
    newer = None
    if before is not None and await CaseMessage.exists().where(
            scope & (CaseMessage.id > rows[-1]["id"])).run():
        newer = rows[-1]["id"]
    await _attach_files(case_id, rows, include_notes)
    return ConversationPage(rows, earlier, newer)


async def message_list(case_id: int, *, include_notes: bool, after: int | None = None,
                       oldest_first: bool = False, limit: int = CONVERSATION_PAGE
                       ) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a case's messages in list order, for the API: newest first (or oldest
    first), those after message ``after`` in that order, by keyset on the message id along
    the ``(case, id)`` index. Returns the page and the cursor of the next one (the id of its
    last message), ``None`` when the conversation ends there. Two queries: the messages with
    their authors' names, and the page's attachments. Unlike :func:`conversation_page`, a
    cursor past the end gives an empty page, so a client following the cursors never gets a
    message twice. ``include_notes=False`` as for :func:`conversation`."""
    query = _messages(case_id, include_notes)
    if after is not None:
        query = query.where(CaseMessage.id > after if oldest_first else CaseMessage.id < after)
    rows = await query.order_by(CaseMessage.id, ascending=oldest_first).limit(limit + 1).run()
    more = len(rows) > limit
    rows = rows[:limit]
    await _attach_files(case_id, rows, include_notes)
    return rows, rows[-1]["id"] if more else None


async def page_holding(case_id: int, message_id: int, *, include_notes: bool,
                       limit: int = CONVERSATION_PAGE) -> int | None:
    """The ``before=`` cursor of the page ending with ``message_id``, or ``None`` when that
    message is on the latest page (one query, reading at most ``limit`` ids)."""
    later = await CaseMessage.select(CaseMessage.id).where(
        _of_conversation(case_id, include_notes) & (CaseMessage.id > message_id)).order_by(
        CaseMessage.id).limit(limit).run()
    return message_id + 1 if len(later) >= limit else None


async def events_of(case_id: int) -> list[dict[str, Any]]:
    return await CaseEvent.select(
        *CaseEvent._meta.columns, CaseEvent.user.name.as_alias("user_name"),
    ).where(CaseEvent.case == case_id).order_by(CaseEvent.id).run()
