"""Spam protection for the public web-to-lead form.

Three cheap checks, none of which needs a third-party service:

- a honeypot field hidden from people (bots fill every field);
- a signed token carrying the time the form was served: a form sent back faster than a
  person can type, or one older than a day, is refused;
- a per-IP limit on an atomic counter (core.rate_limits), so it holds across every worker
  and under parallel requests (each form is counted before it is looked at).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

from core import audit, rate_limits

HONEYPOT = "website_url"  # a plausible name, so bots fill it in
MAX_AGE_SECONDS = 24 * 3600
# A browser's autofill lets a person send the form within a second or two: they are asked to
# check and send again, with the token they were given, so the second press passes.
TOO_QUICK = "Please check your details, then press Send again."


def _signature(secret: str, issued: int) -> str:
    return hmac.new(secret.encode(), f"sales-webform:{issued}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def issue_token(secret: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    return f"{issued}.{_signature(secret, issued)}"


def token_problem(secret: str, token: str, min_seconds: int, now: float | None = None) -> str | None:
    """Why the form's token is unacceptable, or ``None`` when it is fine."""
    issued_text, _, signature = (token or "").partition(".")
    if not issued_text.isdigit() or not hmac.compare_digest(
            signature, _signature(secret, int(issued_text))):
        return "the form expired; reload the page and send it again"
    age = (now if now is not None else time.time()) - int(issued_text)
    if age < min_seconds:
        return TOO_QUICK
    if age > MAX_AGE_SECONDS:
        return "the form expired; reload the page and send it again"
    return None


async def too_many_from(rapport, ip: str, per_hour: int) -> bool:
    """Count this form against the address's hourly limit; whether it is over the limit."""
    return not await rate_limits.allow(rapport, "sales-webform", ip[:64], per_hour,
                                       timedelta(hours=1))


async def record_rejection(ip: str, reason: str) -> None:
    await audit.record(None, "webform_rejected", "sales_lead", "", summary=reason, ip=ip)
