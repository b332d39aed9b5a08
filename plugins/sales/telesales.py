"""Telesales: call lists built from a filter, worked one call at a time.

Before each call the contact-policy check decides whether the customer may be called
(do-not-contact, opt-outs, consent, preferred channel, fatigue); the outcome is logged as an
interaction, with a follow-up scheduled in the same step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import records
from core.customers.tables import Customer
from core.interactions.policy import check_contact
from core.interactions.service import record_interaction
from core.permissions import Actor, scoped
from plugins.sales.tables import CallList, CallListEntry, Lead, LeadActivity

if TYPE_CHECKING:
    from core.app import Rapport

MAX_ENTRIES = 500
OUTCOMES = ("reached", "no answer", "voicemail", "call back", "not interested", "wrong number")


class CallListError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


async def build_call_list(rapport: Rapport, actor: Actor, data: dict[str, str], *,
                          ip: str = "") -> dict[str, Any]:
    """Create a call list from a filter over the customers or leads the actor may see."""
    name = data.get("name", "").strip()[:200]
    kind = data.get("kind", "")
    if not name:
        raise CallListError("name", "give the list a name")
    if kind == "customers":
        stage = data.get("lifecycle_stage", "").strip()
        query = Customer.select(Customer.id).where(
            (Customer.kind == "contact") & Customer.erased_at.is_null()
            & (Customer.primary_phone != ""))
        if stage:
            query = query.where(Customer.lifecycle_stage == stage)
        query = scoped(query, rapport, actor, "core.customer.view", Customer)
        ids = [r["id"] for r in await query.order_by(Customer.id).limit(MAX_ENTRIES).run()]
        criteria = f"contacts with a phone number{f', stage {stage}' if stage else ''}"
    elif kind == "leads":
        status = data.get("status", "").strip()
        region = data.get("region", "").strip()
        query = Lead.select(Lead.id).where(Lead.phone != "")
        if status:
            query = query.where(Lead.status == status)
        if region:
            query = query.where(Lead.region.ilike(region))
        query = scoped(query, rapport, actor, "sales.lead.view", Lead)
        ids = [r["id"] for r in await query.order_by(Lead.score, ascending=False).limit(
            MAX_ENTRIES).run()]
        criteria = "leads with a phone number" + (f", status {status}" if status else "") + (
            f", region {region}" if region else "")
    else:
        raise CallListError("kind", "call customers or leads")
    if not ids:
        raise CallListError("kind", "nobody matches this filter")
    async with CallList._meta.db.transaction():
        row = await records.create(actor, CallList, {
            "name": name, "kind": kind, "criteria": criteria, "owner": actor.id}, ip=ip)
        column = "customer" if kind == "customers" else "lead"
        await CallListEntry.insert(*[
            CallListEntry(call_list=row["id"], position=i, **{column: target})
            for i, target in enumerate(ids)]).run()
    return row


async def next_entry(call_list_id: int) -> dict[str, Any] | None:
    return await CallListEntry.select().where(
        (CallListEntry.call_list == call_list_id) & (CallListEntry.status == "pending")
    ).order_by(CallListEntry.position).first().run()


async def may_call(rapport: Rapport, entry: dict[str, Any]):
    """The contact-policy decision for this entry (leads are not customers yet: allowed)."""
    if entry["customer"] is None:
        return None
    return await check_contact(rapport, entry["customer"], "call", purpose="sales")


async def log_call(rapport: Rapport, actor: Actor, entry: dict[str, Any], data: dict[str, str],
                   *, ip: str = "") -> None:
    """Record the call's outcome (and follow-up) and move to the next entry."""
    outcome = data.get("outcome", "")
    if outcome not in OUTCOMES:
        raise CallListError("outcome", "choose what happened")
    notes = data.get("notes", "")[:5000]
    now = datetime.now(UTC)
    if entry["customer"] is not None:
        decision = await may_call(rapport, entry)
        if decision is not None and not decision.allowed:
            raise CallListError("outcome", decision.reason)
        await record_interaction(
            rapport, actor, customer_id=entry["customer"], channel="call", direction="outbound",
            subject=f"Call: {outcome}", notes=notes, outcome=outcome, purpose="sales",
            occurred_at=now, followup_due=data.get("followup_due") or None,
            followup_note=data.get("followup_note", ""), plugin="sales",
            plugin_record=f"call_list:{entry['call_list']}", ip=ip)
    else:
        await records.create(actor, LeadActivity, {
            "lead": entry["lead"], "channel": "call", "subject": f"Call: {outcome}",
            "notes": notes, "occurred_at": now, "user": actor.id}, ip=ip)
        await Lead.update({Lead.status: "working", Lead.updated_at: now}).where(
            (Lead.id == entry["lead"]) & (Lead.status == "new")).run()
    await CallListEntry.update({CallListEntry.status: "done", CallListEntry.outcome: outcome,
                                CallListEntry.called_at: now}).where(
        CallListEntry.id == entry["id"]).run()


async def skip(entry: dict[str, Any], status: str, note: str) -> None:
    await CallListEntry.update({CallListEntry.status: status, CallListEntry.note: note[:300]}
                               ).where(CallListEntry.id == entry["id"]).run()
