"""Business time: when the support team works, and how far N working minutes reach.

A :class:`Schedule` is a business calendar (``service_calendar``) made usable: an IANA time
zone, the working days, the opening hours in local time and the holidays. SLA deadlines are
``add(schedule, opened_at, minutes)``; paused time is ``between(schedule, start, end)``.

Arithmetic is done on UTC instants, while days and opening hours are walked in local time,
so a day that changes to or from daylight-saving time counts the minutes that really
elapsed during opening hours (a 00:00–24:00 day has 23 or 25 hours then).

``businesstimedelta`` on PyPI does much of this but is unmaintained since 2019; this module
is small and its tests (``tests/plugins/service/test_business_hours.py``) pin the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A deadline further than this is a configuration mistake (no working day found): stop.
MAX_DAYS = 3660
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CalendarError(ValueError):
    """A calendar setting that cannot be used; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """Opening hours in one time zone. ``closes`` of ``None`` means midnight (24:00)."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    work_days: frozenset[int] = frozenset(range(7))
    opens: time = time(0, 0)
    closes: time | None = None
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.work_days:
            raise CalendarError("work_days", "choose at least one working day")
        if self.closes is not None and self.closes <= self.opens:
            raise CalendarError("closes_at", "must be later than the opening time")

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC instants the team opens and closes on local ``day``; None on a day off."""
        if day.weekday() not in self.work_days or day in self.holidays:
            return None
        start = datetime.combine(day, self.opens, tzinfo=self.tz)
        if self.closes is None:
            end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=self.tz)
        else:
            end = datetime.combine(day, self.closes, tzinfo=self.tz)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        # A local time skipped by a DST change can make a tiny window empty: no work then.
        return (start, end) if end > start else None

    def local_day(self, moment: datetime) -> date:
        return _aware(moment).astimezone(self.tz).date()


ALWAYS = Schedule()  # a policy without a calendar counts every minute of every day


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business time needs timezone-aware datetimes")
    return moment


def parse_time(value: str, field_name: str) -> time | None:
    """``"HH:MM"`` to a time; ``"24:00"`` to None (midnight at the end of the day)."""
    value = (value or "").strip()
    if not _HHMM.match(value):
        raise CalendarError(field_name, "use the 24-hour form HH:MM, e.g. 09:00 or 17:30")
    if value == "24:00":
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_work_days(value: str | Iterable[Any]) -> frozenset[int]:
    """``"0,1,2,3,4"`` (Monday is 0) or a list of such numbers to a set of weekdays."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    days = set()
    for part in parts:
        text = str(part).strip()
        if not text:
            continue
        if not text.isdigit() or int(text) > 6:
            raise CalendarError("work_days", "days are numbers from 0 (Monday) to 6 (Sunday)")
        days.add(int(text))
    if not days:
        raise CalendarError("work_days", "choose at least one working day")
    return frozenset(days)


def parse_timezone(value: str) -> ZoneInfo:
    name = (value or "").strip()
    if not name:
        raise CalendarError("timezone", "give a time zone, e.g. Europe/Paris or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError("timezone", f"{name!r} is not a known IANA time zone "
                            "(e.g. Europe/Paris, America/New_York, UTC)") from None


def schedule_from(calendar: dict[str, Any], holidays: Iterable[date] = ()) -> Schedule:
    """A schedule from a ``service_calendar`` row (or form values) and its holidays."""
    opens = parse_time(calendar.get("opens_at") or "", "opens_at")
    if opens is None:
        raise CalendarError("opens_at", "the team cannot open at 24:00")
    closes = parse_time(calendar.get("closes_at") or "", "closes_at")
    return Schedule(tz=parse_timezone(calendar.get("timezone") or ""),
                    work_days=parse_work_days(calendar.get("work_days") or ""),
                    opens=opens, closes=closes, holidays=frozenset(holidays))


async def load_schedule(calendar_id: int | None) -> Schedule:
    """The schedule of a stored calendar (two small queries); every minute counts without."""
    if calendar_id is None:
        return ALWAYS
    from plugins.service.tables import BusinessCalendar, Holiday

    row = await BusinessCalendar.select().where(BusinessCalendar.id == calendar_id).first().run()
    if row is None:
        return ALWAYS
    days = await Holiday.select(Holiday.day).where(Holiday.calendar == calendar_id).run()
    return schedule_from(row, (d["day"] for d in days))


def add(schedule: Schedule, start: datetime, amount: timedelta | int | float) -> datetime:
    """The instant at which ``amount`` of business time (a timedelta, or minutes) has passed
    since ``start``.

    The clock only runs during opening hours: a start outside them counts from the next
    opening, so zero minutes from Saturday noon is Monday's opening.
    """
    remaining = amount if isinstance(amount, timedelta) else timedelta(minutes=amount)
    if remaining < timedelta(0):
        raise ValueError("business time to add must not be negative")
    current = _aware(start).astimezone(UTC)
    day = schedule.local_day(current)
    for _ in range(MAX_DAYS):
        window = schedule.window(day)
        day += timedelta(days=1)
        if window is None or window[1] <= current:
            continue
        begin = max(current, window[0])
        available = window[1] - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise CalendarError("work_days", f"no working time within {MAX_DAYS} days: check the "
                        "working days and holidays")


def between(schedule: Schedule, start: datetime, end: datetime) -> timedelta:
    """Business time from ``start`` to ``end`` (zero when ``end`` is not after ``start``)."""
    start = _aware(start).astimezone(UTC)
    end = _aware(end).astimezone(UTC)
    total = timedelta(0)
    if end <= start:
        return total
    day, last = schedule.local_day(start), schedule.local_day(end)
    while day <= last:
        window = schedule.window(day)
        day += timedelta(days=1)
        if window is None:
            continue
        overlap = min(end, window[1]) - max(start, window[0])
        if overlap > timedelta(0):
            total += overlap
    return total


def add_minutes(schedule: Schedule, start: datetime, minutes: int) -> datetime:
    return add(schedule, start, timedelta(minutes=minutes))


def minutes_between(schedule: Schedule, start: datetime, end: datetime) -> int:
    """Whole business minutes from ``start`` to ``end`` (rounded to the nearest minute)."""
    return round(between(schedule, start, end).total_seconds() / 60)
