"""Times in the user's zone: UTC in storage, the user's own time zone on every staff page.

Each user chooses a time zone (and a locale) under *My account*; a new user's is taken from
their browser at sign-in. Templates show times with the ``local_time`` filter (and
``local_date``, ``local_input`` for the value of a ``datetime-local`` field); form handlers
read what was typed with :func:`parse_local`. Without a choice, the instance's zone
(``RAPPORT_TIME_ZONE``, default UTC) is used.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jinja2 import pass_context

# Locales offered in My account: the language and region formats a user reads dates and
# numbers in (the region also reads phone numbers typed without a country code).
LOCALES = {
    "en-GB": "English (United Kingdom)", "en-US": "English (United States)",
    "en-IE": "English (Ireland)", "de-DE": "Deutsch (Deutschland)",
    "de-AT": "Deutsch (Österreich)", "de-CH": "Deutsch (Schweiz)",
    "fr-FR": "Français (France)", "fr-BE": "Français (Belgique)",
    "nl-NL": "Nederlands (Nederland)", "es-ES": "Español (España)",
    "it-IT": "Italiano (Italia)", "pt-PT": "Português (Portugal)",
    "pl-PL": "Polski (Polska)", "sv-SE": "Svenska (Sverige)", "da-DK": "Dansk (Danmark)",
}
DISPLAY = "%d %b %Y %H:%M"
_INPUT = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """Every IANA zone name, sorted (for the My account choice)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))


def valid_zone(name: str | None) -> str:
    """``name`` if it is an IANA time zone, else ""."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        return ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    return name


def valid_locale(name: str | None) -> str:
    name = (name or "").strip()
    return name if name in LOCALES else ""


def browser_locale(language: str | None) -> str:
    """The offered locale closest to a browser's language (``de`` -> ``de-DE``), or ""."""
    wanted = (language or "").strip().replace("_", "-")
    if valid_locale(wanted):
        return wanted
    prefix = wanted.split("-")[0].lower() + "-"
    return next((code for code in LOCALES if code.lower().startswith(prefix)), "") \
        if len(prefix) > 1 else ""


def instance_zone() -> str:
    return valid_zone(os.environ.get("RAPPORT_TIME_ZONE")) or "UTC"


def zone_of(actor: Any) -> ZoneInfo:
    """The zone ``actor`` (a staff actor, or anything with ``time_zone``) reads times in."""
    return ZoneInfo(valid_zone(getattr(actor, "time_zone", "")) or instance_zone())


def region_of(locale: str | None) -> str:
    """``de-DE`` -> ``DE`` (the region part of a locale), else ""."""
    parts = (locale or "").replace("_", "-").split("-")
    return parts[1].upper() if len(parts) > 1 and len(parts[1]) == 2 else ""


def to_local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # stored values are UTC; SQLite may hand them back naive
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def parse_local(text: Any, zone: ZoneInfo, *, end_of_day: bool = False) -> datetime | Any:
    """What a user typed in a date/time field (``2026-12-07T09:00``, ``2026-12-07 09:00`` or a
    date alone), read in their ``zone``, as an aware UTC datetime.

    Empty input gives ``None``; anything else that is not a date and time is returned as it
    was, so the domain's own validation names the field. A time that does not exist in the
    zone (the hour skipped when clocks go forward) is moved on by that hour; an ambiguous one
    (the hour repeated in autumn) is read as the first of the two.
    """
    if text is None or isinstance(text, datetime):
        return text.astimezone(UTC) if isinstance(text, datetime) and text.tzinfo else text
    value = str(text).strip()
    if not value:
        return None
    match = _INPUT.match(value)
    if not match:
        return text
    try:
        day = date.fromisoformat(match.group(1))
        if match.group(2) is None:
            clock = time(17, 0) if end_of_day else time(9, 0)
        else:
            clock = time(int(match.group(2)), int(match.group(3)), int(match.group(4) or 0))
    except ValueError:
        return text
    # fold=0: an ambiguous time is the first; a skipped one is read with the offset before
    # the change, which lands an hour later on the wall clock.
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _request_zone(context: Any) -> ZoneInfo:
    request = context.get("request")
    actor = None
    if request is not None:
        user = request.scope.get("user")
        # Staff read times in their chosen zone; portal customers in their browser's.
        actor = user if getattr(user, "kind", "") in ("staff", "portal") else None
    return zone_of(actor)


def format_local(moment: datetime | None, zone: ZoneInfo, fmt: str = DISPLAY) -> str:
    local = to_local(moment, zone)
    return local.strftime(fmt) if local is not None else ""


@pass_context
def local_time(context: Any, moment: datetime | None, fmt: str = DISPLAY) -> str:
    """``{{ row.occurred_at | local_time }}``: 07 Dec 2026 09:00 in the signed-in user's zone."""
    return format_local(moment, _request_zone(context), fmt)


@pass_context
def local_date(context: Any, moment: datetime | None, fmt: str = "%d %b %Y") -> str:
    return format_local(moment, _request_zone(context), fmt)


@pass_context
def local_input(context: Any, moment: Any) -> str:
    """The value of a ``datetime-local`` field for a stored time (text passes through, so a
    form shown again with an error keeps what was typed)."""
    if not isinstance(moment, datetime):
        return "" if moment is None else str(moment)
    return format_local(moment, _request_zone(context), "%Y-%m-%dT%H:%M")


@pass_context
def zone_label(context: Any, _: Any = None) -> str:
    """The signed-in user's zone, for labels: ``Europe/Berlin``."""
    return str(_request_zone(context).key)


def jinja_filters() -> dict[str, Any]:
    return {"local_time": local_time, "local_date": local_date, "local_input": local_input,
            "zone_label": zone_label}
