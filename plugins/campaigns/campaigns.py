"""E-mail campaigns: the template, its personalisation fields and how one recipient's
message is made.

The subject, HTML and text are Jinja templates rendered in a sandbox
(``jinja2.sandbox.SandboxedEnvironment``, autoescaped HTML, undefined names refused), and
may use only the fields in :data:`FIELDS`: a field that does not exist is refused when the
campaign is saved, not discovered when it is sent. The HTML is sanitised when saved (scripts,
event handlers, styles and forms removed; nh3) and the text part is derived from it unless
one is written. A campaign cannot be sent without ``{{ unsubscribe_url }}`` in its e-mail.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import nh3
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from core import records
from core.permissions import Actor
from plugins.campaigns.tables import Campaign, Message

if TYPE_CHECKING:
    pass

FIELDS = {
    "first_name": "the customer's first name (their name when not known)",
    "last_name": "the customer's last name",
    "name": "the customer's full name, or the organisation's",
    "email": "the address the message goes to",
    "job_title": "the customer's job title",
    "company": "the organisation a contact belongs to",
    "owner_name": "the name of the customer's owner (their account manager)",
    "unsubscribe_url": "the one-click unsubscribe link (required)",
}
UNSUBSCRIBE = "unsubscribe_url"
MAX_HOLDOUT = 50  # percent of the segment a control group may take
STATE_LABELS = {"draft": "Draft", "scheduled": "Scheduled", "sending": "Sending", "sent": "Sent"}
_LINK = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


class CampaignError(ValueError):
    """A refusal naming the field (``subject``, ``body_html``, ``segment``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_html_env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def sanitise(body: str) -> str:
    """The HTML without anything that runs or hides (scripts, handlers, styles, forms)."""
    return nh3.clean(body or "", link_rel=None)


class _Text(HTMLParser):
    BREAKS = {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "table",
              "ul", "ol", "blockquote", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in self.BREAKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag):
        if tag == "a" and self.href:
            self.parts.append(f" ({self.href})")
            self.href = None
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(body: str) -> str:
    parser = _Text()
    parser.feed(body or "")
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def fields_used(source: str, field: str) -> set[str]:
    """The names a template uses; raises :class:`CampaignError` on bad syntax or an unknown
    field."""
    try:
        names = meta.find_undeclared_variables(_env.parse(source or ""))
    except TemplateSyntaxError as exc:
        raise CampaignError(field, f"the template has a mistake on line {exc.lineno}: "
                            f"{exc.message}") from None
    unknown = sorted(names - set(FIELDS))
    if unknown:
        raise CampaignError(field, f"“{unknown[0]}” is not a personalisation field (use one "
                            f"of {', '.join(FIELDS)})")
    return names


def clean_values(values: dict[str, Any]) -> dict[str, Any]:
    """Check a campaign's fields; return them ready to store (HTML sanitised)."""
    name = str(values.get("name") or "").strip()
    if not name:
        raise CampaignError("name", "enter a name")
    if len(name) > 150:
        raise CampaignError("name", "at most 150 characters")
    subject = str(values.get("subject") or "").strip()
    if len(subject) > 250:
        raise CampaignError("subject", "at most 250 characters")
    if "\n" in subject or "\r" in subject:
        raise CampaignError("subject", "must be one line")
    body_html = sanitise(str(values.get("body_html") or ""))
    body_text = str(values.get("body_text") or "").strip()
    if len(body_html) > 200_000 or len(body_text) > 100_000:
        raise CampaignError("body_html", "the e-mail is too long (at most 200,000 characters)")
    fields_used(subject, "subject")
    fields_used(body_html, "body_html")
    subject_b = str(values.get("subject_b") or "").strip()
    if len(subject_b) > 250 or "\n" in subject_b or "\r" in subject_b:
        raise CampaignError("subject_b", "one line of at most 250 characters")
    body_html_b = sanitise(str(values.get("body_html_b") or "")).strip()
    if len(body_html_b) > 200_000:
        raise CampaignError("body_html_b", "the e-mail is too long (at most 200,000 "
                            "characters)")
    if subject_b and not body_html_b:
        raise CampaignError("body_html_b", "write variant B's message too, or clear its "
                            "subject")
    fields_used(subject_b, "subject_b")
    fields_used(body_html_b, "body_html_b")
    fields_used(body_text, "body_text")
    raw_share = str(values.get("holdout_percent") or "0").strip()
    try:
        holdout = int(raw_share)
    except ValueError:
        raise CampaignError("holdout_percent", "enter a whole number of percent") from None
    if not 0 <= holdout <= MAX_HOLDOUT:
        raise CampaignError("holdout_percent", f"between 0 (no control group) and "
                            f"{MAX_HOLDOUT} percent")
    segment = values.get("segment")
    try:
        segment_id = int(segment) if segment not in (None, "") else None
    except (TypeError, ValueError):
        raise CampaignError("segment", "choose a segment") from None
    return {"name": name, "subject": subject, "body_html": body_html, "body_text": body_text,
            "segment": segment_id, "holdout_percent": holdout, "subject_b": subject_b,
            "body_html_b": body_html_b}


async def _check_segment(segment_id: int | None) -> None:
    from plugins.campaigns.tables import Segment

    if segment_id is not None and not await Segment.exists().where(
            Segment.id == segment_id).run():
        raise CampaignError("segment", "this segment does not exist")


async def create_campaign(actor: Actor, values: dict[str, Any], *, ip: str = ""
                          ) -> dict[str, Any]:
    cleaned = clean_values(values)
    await _check_segment(cleaned["segment"])
    now = datetime.now(UTC)
    cleaned.update(state="draft", created_at=now, updated_at=now,
                   created_by=actor.id if actor.kind == "staff" else None)
    return await records.create(actor, Campaign, cleaned, ip=ip,
                                summary=f"campaign {cleaned['name']}")


async def update_campaign(actor: Actor, campaign: dict[str, Any], values: dict[str, Any], *,
                          ip: str = "") -> dict[str, Any]:
    if campaign["state"] != "draft":
        raise CampaignError("name", "a campaign that was sent cannot be changed")
    cleaned = clean_values(values)
    await _check_segment(cleaned["segment"])
    cleaned["updated_at"] = datetime.now(UTC)
    return await records.update(actor, Campaign, campaign["id"], cleaned, ip=ip,
                                summary=f"campaign {cleaned['name']}")


async def get_campaign(campaign_id: int) -> dict[str, Any] | None:
    return await Campaign.select().where(Campaign.id == campaign_id).first().run()


async def list_campaigns(limit: int = 200) -> list[dict[str, Any]]:
    return await Campaign.select(
        Campaign.id, Campaign.name, Campaign.state, Campaign.subject,
        Campaign.segment.name.as_alias("segment_name"), Campaign.updated_at,
        Campaign.send_started_at,
    ).order_by(Campaign.id, ascending=False).limit(limit).run()


def tracked_links(body_html: str) -> list[str]:
    """The http(s) links of the template that clicks are counted for (in order, once each)."""
    links: list[str] = []
    for raw in _LINK.findall(body_html or ""):
        if "{{" in raw or "{%" in raw:
            continue  # a personalised link is sent as it is
        url = html.unescape(raw)
        if url not in links:
            links.append(url)
    return links


def frozen_links(campaign: dict[str, Any]) -> list[str]:
    try:
        links = json.loads(campaign.get("links") or "[]")
    except ValueError:
        return []
    return [str(u) for u in links] if isinstance(links, list) else []


def personal_fields(customer: dict[str, Any], email: str, unsubscribe_url: str
                    ) -> dict[str, str]:
    name = customer.get("name") or ""
    first = customer.get("first_name") or name
    return {"first_name": first, "last_name": customer.get("last_name") or "", "name": name,
            "email": email, "job_title": customer.get("job_title") or "",
            "company": customer.get("company") or "",
            "owner_name": customer.get("owner_name") or "", UNSUBSCRIBE: unsubscribe_url}


def has_variant_b(campaign: dict[str, Any]) -> bool:
    return bool((campaign.get("body_html_b") or "").strip())


def render(campaign: dict[str, Any], fields: dict[str, str],
           link_for: Any = None, variant: str = "A") -> tuple[str, str, str]:
    """``(subject, html, text)`` for one recipient. ``link_for(index)`` turns the campaign's
    tracked link number ``index`` into its redirect URL (None: links left as written).
    Variant ``"B"`` takes the B subject (or A's when empty) and message; its text part is
    always made from its HTML."""
    b = variant == "B" and has_variant_b(campaign)
    subject_source = (campaign.get("subject_b") or campaign["subject"]) if b else \
        campaign["subject"]
    subject = _env.from_string(subject_source or "").render(fields).strip()
    source = campaign["body_html_b"] if b else campaign["body_html"]
    # Sanitised again after rendering: a personal value inside an attribute stays harmless.
    body_html = sanitise(_html_env.from_string(source or "").render(fields))
    if link_for is not None:
        links = frozen_links(campaign)

        def swap(match: re.Match) -> str:
            url = html.unescape(match.group(1))
            if url in links:
                return f'href="{html.escape(link_for(links.index(url)))}"'
            return match.group(0)

        body_html = _LINK.sub(swap, body_html)
    if campaign.get("body_text") and not b:
        text = _env.from_string(campaign["body_text"]).render(fields)
    else:
        text = html_to_text(body_html)
    return " ".join(subject.split()), body_html, text


def sample_fields() -> dict[str, str]:
    return personal_fields({"name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
                            "job_title": "Analyst", "company": "Analytical Engines Ltd",
                            "owner_name": "Your account manager"}, "ada@example.com",
                           "#unsubscribe")


def preview(campaign: dict[str, Any], variant: str = "A") -> tuple[str, str, str] | str:
    """The e-mail as a sample customer would get it, or why it cannot be shown."""
    try:
        return render(campaign, sample_fields(), variant=variant)
    except Exception as exc:  # sandbox refusals and template errors, shown to the editor
        return f"The preview could not be made: {exc}"


async def counts_by_state(campaign_id: int) -> dict[str, int]:
    rows = await Message.raw(
        "SELECT state, COUNT(*) AS n FROM campaigns_message WHERE campaign = {} GROUP BY state",
        campaign_id).run()
    return {row["state"]: int(row["n"]) for row in rows}
