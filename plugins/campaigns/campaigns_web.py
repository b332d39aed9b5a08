"""Staff pages for e-mail campaigns: the list, a new campaign, the editor with its safe
preview and what stands between it and sending, Send (now or later), and the report once
sent; and the 360° view's Campaigns panel.

Permissions: ``campaigns.campaign.view`` to look, ``campaigns.campaign.manage`` to write,
``campaigns.campaign.send`` to send. Refusals are shown beside the field they name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.audit import client_ip
from core.customers.tables import Customer
from core.local_time import parse_local, zone_of
from core.mail import sends_mail
from core.permissions import current_actor, scoped
from plugins.campaigns import campaigns, segments, sending
from plugins.campaigns.campaigns import FIELDS, STATE_LABELS, CampaignError
from plugins.campaigns.segments_web import form_data
from plugins.campaigns.tables import Message

VIEW = {"permission": "campaigns.campaign.view"}
MANAGE = {"permission": "campaigns.campaign.manage"}
SEND = {"permission": "campaigns.campaign.send"}
STARTER = """<p>Hello {{ first_name }},</p>
<p>Write your message here.</p>
<p><a href="https://example.com/">Read more</a></p>
<p><small>You receive this e-mail as a customer of ours. <a href="{{ unsubscribe_url }}">Unsubscribe</a>.</small></p>"""


async def _campaign_or_404(campaign_id: int) -> dict[str, Any]:
    campaign = await campaigns.get_campaign(campaign_id)
    if campaign is None:
        raise NotFoundException("not found")
    return campaign


@get("/campaigns", opt=VIEW, name="campaigns-list")
async def campaign_list(request: Request) -> Template:
    actor = current_actor(request)
    return Template("campaigns/campaigns.html", context={
        "campaigns": await campaigns.list_campaigns(), "state_labels": STATE_LABELS,
        "segments": await segments.list_segments(), "values": {"body_html": STARTER},
        "errors": {}, "can_manage": actor.can("campaigns.campaign.manage")})


@post("/campaigns", opt=MANAGE, name="campaigns-create")
async def campaign_create(request: Request) -> Template | Redirect:
    data = await form_data(request)
    data.setdefault("body_html", STARTER)
    try:
        campaign = await campaigns.create_campaign(current_actor(request), data,
                                                   ip=client_ip(request))
    except CampaignError as exc:
        return Template("campaigns/campaigns.html", status_code=422, context={
            "campaigns": await campaigns.list_campaigns(), "state_labels": STATE_LABELS,
            "segments": await segments.list_segments(), "values": data,
            "errors": {exc.field: exc.message}, "can_manage": True})
    return Redirect(f"/campaigns/{campaign['id']}", status_code=303)


async def campaign_page(request: Request, campaign: dict[str, Any], *,
                        values: dict[str, Any] | None = None,
                        errors: dict[str, str] | None = None, status: int = 200) -> Template:
    rapport = request.app.state.rapport
    actor = current_actor(request)
    draft = campaign["state"] == "draft"
    scheduled = campaign["state"] == "scheduled"
    members, problems = (await sending.readiness(rapport, actor, campaign) if draft
                         else (0, []))
    shown = {**campaign, **(values or {})}
    context = {
        "campaign": campaign, "values": shown, "errors": errors or {}, "draft": draft,
        "segments": await segments.list_segments(), "fields": FIELDS,
        "members": members, "problems": problems, "state_labels": STATE_LABELS,
        "preview": campaigns.preview(campaign), "sends_mail": sends_mail(),
        "preview_b": (campaigns.preview(campaign, "B") if campaigns.has_variant_b(campaign)
                      else None),
        "can_manage": actor.can("campaigns.campaign.manage"),
        "can_send": actor.can("campaigns.campaign.send"),
        "notice": request.query_params.get("done", ""),
        "report": None if draft or scheduled else await sending.report(campaign["id"]),
        "scheduled": scheduled, "zone": zone_of(actor).key,
        "send_at": (values or {}).get("send_at", ""),
        "reason_labels": sending.REASON_LABELS,
    }
    return Template("campaigns/campaign.html", status_code=status, context=context)


@get("/campaigns/{campaign_id:int}", opt=VIEW, name="campaigns-show")
async def campaign_show(request: Request, campaign_id: FromPath[int]) -> Template:
    return await campaign_page(request, await _campaign_or_404(campaign_id))


@post("/campaigns/{campaign_id:int}", opt=MANAGE, name="campaigns-update")
async def campaign_update(request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
    campaign = await _campaign_or_404(campaign_id)
    data = await form_data(request)
    try:
        await campaigns.update_campaign(current_actor(request), campaign, data,
                                        ip=client_ip(request))
    except CampaignError as exc:
        return await campaign_page(request, campaign, values=data,
                                   errors={exc.field: exc.message}, status=422)
    return Redirect(f"/campaigns/{campaign_id}?done=saved", status_code=303)


@post("/campaigns/{campaign_id:int}/send", opt=SEND, name="campaigns-send")
async def campaign_send(request: Request, campaign_id: FromPath[int]) -> Template | Redirect:
    campaign = await _campaign_or_404(campaign_id)
    actor = current_actor(request)
    data = await form_data(request)
    send_at = parse_local(data.get("send_at", ""), zone_of(actor))
    if send_at is not None and not isinstance(send_at, datetime):
        return await campaign_page(request, campaign, values={"send_at": data["send_at"]},
                                   errors={"send_at": "enter a date and time"}, status=422)
    try:
        await sending.start_sending(request.app.state.rapport, actor, campaign_id,
                                    ip=client_ip(request), send_at=send_at)
    except CampaignError as exc:
        field = "send_at" if exc.field == "send_at" else "send"
        return await campaign_page(request, campaign, values={"send_at": data.get("send_at")},
                                   errors={field: exc.message}, status=422)
    return Redirect(f"/campaigns/{campaign_id}?done=sending", status_code=303)


@post("/campaigns/{campaign_id:int}/unschedule", opt=SEND, name="campaigns-unschedule")
async def campaign_unschedule(request: Request, campaign_id: FromPath[int]) -> Redirect:
    await _campaign_or_404(campaign_id)
    await sending.unschedule(current_actor(request), campaign_id, ip=client_ip(request))
    return Redirect(f"/campaigns/{campaign_id}?done=unscheduled", status_code=303)


MESSAGE_WORDS = {"queued": "Waiting to be sent", "sending": "Being sent", "sent": "Sent",
                 "failed": "Not delivered", "holdout": "Control group (not sent)"}


@get("/campaigns/panels/customer/{customer_id:int}", opt=VIEW, name="campaigns-panel")
async def customer_panel(request: Request, customer_id: FromPath[int]) -> Template:
    """The 360° view's Campaigns panel: the customer's last campaign e-mails."""
    # Only for a customer the user may see (core's row filter).
    visible = scoped(Customer.exists().where(Customer.id == customer_id),
                     request.app.state.rapport, current_actor(request), "core.customer.view",
                     Customer)
    if not await visible.run():
        raise NotFoundException("not found")
    rows = await Message.select(
        Message.campaign, Message.campaign.name.as_alias("campaign_name"), Message.state,
        Message.reason, Message.sent_at, Message.opened_at, Message.clicked_at,
        Message.unsubscribed_at, Message.variant,
    ).where(Message.customer == customer_id).order_by(Message.id, ascending=False).limit(
        10).run()
    return Template("campaigns/panel.html", context={
        "rows": rows, "words": MESSAGE_WORDS, "reasons": sending.REASON_LABELS})


ROUTES = [customer_panel, campaign_list, campaign_create, campaign_show, campaign_update, campaign_send,
          campaign_unschedule]
