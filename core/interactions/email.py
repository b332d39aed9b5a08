"""Writing an e-mail to a customer (from the 360° view) and the templates staff start from.

    result = await send_customer_email(rapport, actor, customer_id, to="ada@example.test",
                                       subject="Your renewal", body="Hello Ada, ...")
    result.kept_in_outbox   # True without RAPPORT_SMTP_URL: say "saved to the outbox"

Sending asks the contact-policy check first (do-not-contact, the e-mail opt-out, the preferred
channel, the fatigue rule: a refusal is :class:`EmailError` on ``to`` with the policy's
sentence), then, in one transaction, records an outbound e-mail interaction (subject, notes =
body), writes an audit entry and hands the message to core's transport (:func:`core.mail.deliver`).
A transport failure rolls the interaction back, so the timeline never shows an e-mail that did
not leave.

Templates are plain text with a few personalisation fields (:data:`FIELDS`, ``{{ first_name }}``)
rendered in a sandboxed Jinja environment; a template naming any other field, or that does not
compile, is refused when saved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from core import audit, mail, records
from core.customers.tables import Customer, CustomerEmail
from core.interactions import policy, service
from core.interactions.tables import EmailTemplate, Interaction
from core.permissions import Actor, scoped

if TYPE_CHECKING:
    from core.app import Rapport

# The personalisation fields a template may use, with what staff are told they hold.
FIELDS: dict[str, str] = {
    "first_name": "the customer's first name (an account's name)",
    "last_name": "the customer's last name",
    "name": "the customer's full name",
    "account_name": "the account (company) a contact belongs to",
    "sender_name": "your name",
    "organisation": "the name of this Rapport instance",
}
LIMITS = {"name": 100, "subject": 300, "body": 20000}
TEMPLATE_LIST_LIMIT = 200  # templates shown (picker and admin list): a list, not a library

_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined,
                            keep_trailing_newline=True)


class EmailError(ValueError):
    """Bad input; ``errors`` maps every field found wrong to a sentence (forms show them)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        self.field, self.message = next(iter(self.errors.items()))
        super().__init__(f"{self.field}: {self.message}")


class EmailRefused(PermissionError):
    """The actor may see the customer but not record interactions with them."""


@dataclass(frozen=True)
class SendResult:
    interaction_id: int
    to: str
    note: str  # where the message went (core.mail.deliver's note)

    @property
    def kept_in_outbox(self) -> bool:
        return mail.kept_in_outbox(self.note)


# --- templates -------------------------------------------------------------------------------


def _check_source(source: str, field: str, errors: dict[str, str]) -> None:
    try:
        names = meta.find_undeclared_variables(_env.parse(source))
    except TemplateError as exc:
        errors[field] = f"cannot be read as a template ({exc.message or exc})"
        return
    unknown = sorted(names - FIELDS.keys())
    if unknown:
        errors[field] = (f"uses {', '.join('{{ ' + n + ' }}' for n in unknown)}, which "
                         f"{'is not a field' if len(unknown) == 1 else 'are not fields'} "
                         f"(use {', '.join(FIELDS)})")
        return
    try:  # filters and tests are checked when rendered: try it with sample values
        _env.from_string(source).render(**{name: "x" for name in FIELDS})
    except Exception as exc:  # noqa: BLE001 - any error in an administrator's template is theirs
        errors[field] = f"cannot be filled in ({exc})"


def _clean_template(data: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    values = {k: str(data.get(k) or "").strip() for k in ("name", "subject", "body")}
    for name, limit in LIMITS.items():
        if not values[name]:
            errors[name] = "is required"
        elif len(values[name]) > limit:
            errors[name] = f"is too long (at most {limit} characters)"
    for name in ("subject", "body"):
        if name not in errors:
            _check_source(values[name], name, errors)
    if errors:
        raise EmailError(errors)
    return values


async def list_templates() -> list[dict[str, Any]]:
    return await EmailTemplate.select().order_by(EmailTemplate.name).limit(
        TEMPLATE_LIST_LIMIT).run()


async def get_template(template_id: Any) -> dict[str, Any] | None:
    try:
        tid = int(template_id)
    except (TypeError, ValueError):
        return None
    return await EmailTemplate.select().where(EmailTemplate.id == tid).first().run()


async def _name_taken(name: str, template_id: int | None) -> bool:
    query = EmailTemplate.exists().where(EmailTemplate.name == name)
    if template_id is not None:
        query = query.where(EmailTemplate.id != template_id)
    return await query.run()


async def save_template(actor: Actor, data: dict[str, Any], template_id: int | None = None,
                        *, ip: str = "") -> dict[str, Any]:
    """Create (``template_id`` None) or change a template; audited. Raises :class:`EmailError`
    naming each bad field (an unknown personalisation field included)."""
    values = _clean_template(data)
    if await _name_taken(values["name"], template_id):
        raise EmailError({"name": "another template already has this name"})
    now = datetime.now(UTC)
    if template_id is None:
        return await records.create(actor, EmailTemplate, {**values, "created_at": now,
                                                           "updated_at": now},
                                    ip=ip, summary=f"e-mail template {values['name']}")
    return await records.update(actor, EmailTemplate, template_id,
                                {**values, "updated_at": now}, ip=ip,
                                summary=f"e-mail template {values['name']}")


async def delete_template(actor: Actor, template_id: int, *, ip: str = "") -> None:
    await records.delete(actor, EmailTemplate, template_id, ip=ip, summary="e-mail template")


def personalisation(customer: dict[str, Any], account_name: str, sender_name: str,
                    organisation: str) -> dict[str, str]:
    name = customer.get("name") or ""
    return {"first_name": customer.get("first_name") or name,
            "last_name": customer.get("last_name") or "", "name": name,
            "account_name": account_name or "", "sender_name": sender_name or "",
            "organisation": organisation or ""}


def render(template: dict[str, Any], fields: dict[str, str]) -> dict[str, str]:
    """The template's subject and body filled in for one customer (sandboxed)."""
    return {"subject": _env.from_string(template["subject"]).render(**fields).strip(),
            "body": _env.from_string(template["body"]).render(**fields)}


# --- the customer and their addresses --------------------------------------------------------


async def customer_for_email(rapport: Rapport, actor: Actor, customer_id: int
                             ) -> dict[str, Any] | None:
    """The customer if ``actor`` may see them (else ``None``: answer 404); raises
    :class:`EmailRefused` when they may see but not record interactions with them."""
    seen = await scoped(Customer.select().where(Customer.id == customer_id), rapport, actor,
                        "core.customer.view", Customer).first().run()
    if seen is None:
        return None
    if not await may_email(rapport, actor, customer_id):
        raise EmailRefused("You may see this customer but not record interactions with them, "
                           "so you cannot e-mail them from Rapport.")
    return seen


async def may_email(rapport: Rapport, actor: Actor, customer_id: int) -> bool:
    """Whether ``actor`` may record interactions with (hence e-mail) this customer."""
    if not actor.can("core.interaction.create"):
        return False
    query = scoped(Customer.select(Customer.id).where(Customer.id == customer_id), rapport,
                   actor, "core.interaction.create", Customer)
    return await query.first().run() is not None


async def addresses(customer: dict[str, Any]) -> list[str]:
    """The customer's e-mail addresses, the primary one first, each once."""
    rows = await CustomerEmail.select(CustomerEmail.email).where(
        CustomerEmail.customer == customer["id"]).order_by(CustomerEmail.id).limit(50).run()
    found: list[str] = []
    for email in [customer.get("primary_email") or "", *(r["email"] for r in rows)]:
        email = email.strip()
        if email and email.lower() not in {f.lower() for f in found}:
            found.append(email)
    return found


async def account_name(customer: dict[str, Any]) -> str:
    if not customer.get("account"):
        return ""
    row = await Customer.select(Customer.name).where(
        Customer.id == customer["account"]).first().run()
    return row["name"] if row else ""


# --- sending ---------------------------------------------------------------------------------


async def send_customer_email(rapport: Rapport, actor: Actor, customer: dict[str, Any], *,
                              to: str, subject: str, body: str, ip: str = "") -> SendResult:
    """E-mail ``customer`` (a row from :func:`customer_for_email`) and log it on their
    timeline; see the module docstring. Raises :class:`EmailError` (bad field, contact policy
    refusal, transport failure on ``to``)."""
    to, subject = (to or "").strip(), (subject or "").strip()
    body = (body or "").strip("\n")
    errors: dict[str, str] = {}
    known = await addresses(customer)
    if not known:
        errors["to"] = "This customer has no e-mail address: add one to their record first."
    elif to.lower() not in {a.lower() for a in known}:
        errors["to"] = "Choose one of the customer's e-mail addresses."
    if not subject:
        errors["subject"] = "is required"
    elif len(subject) > LIMITS["subject"]:
        errors["subject"] = f"is too long (at most {LIMITS['subject']} characters)"
    if not body.strip():
        errors["body"] = "is required: write the message"
    elif len(body) > LIMITS["body"]:
        errors["body"] = f"is too long (at most {LIMITS['body']} characters)"
    if errors:
        raise EmailError(errors)
    decision = await policy.check_contact(rapport, customer["id"], "email")
    if not decision.allowed:
        raise EmailError({"to": f"Not sent: {decision.reason}"})
    sender = os.environ.get("RAPPORT_MAIL_FROM", "rapport@localhost")
    message = mail.build_message(sender, to, subject, body)
    try:
        async with Interaction._meta.db.transaction():
            row, _ = await service.record_interaction(
                rapport, actor, customer_id=customer["id"], channel="email",
                direction="outbound", subject=subject, notes=body,
                outcome="sent" if mail.sends_mail() else "saved to the outbox", ip=ip)
            note = await mail.deliver(rapport, message)
            await audit.record(actor, "email", Interaction._meta.tablename, row["id"],
                               {"to": [None, to], "delivery": [None, note]},
                               summary=f"e-mail to {customer.get('name') or to}: {subject}",
                               ip=ip)
    except service.InteractionError as exc:
        raise EmailError({"subject" if exc.field == "subject" else "body": exc.message}) \
            from None
    except (OSError, mail.aiosmtplib.SMTPException) as exc:
        raise EmailError({"to": f"The mail server did not take the message ({exc}); nothing "
                                "was sent or logged. Try again later."}) from None
    return SendResult(row["id"], to, note)
