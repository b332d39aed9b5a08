"""Business time: SLA deadlines count only opening hours, in the calendar's own time zone,
skipping weekends and holidays, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugins.service import business_hours as bh

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def office(tz=PARIS, holidays=(), opens="09:00", closes="17:00", days="0,1,2,3,4"):
    return bh.schedule_from({"timezone": tz.key, "work_days": days, "opens_at": opens,
                             "closes_at": closes}, holidays)


def local(tz, *args):
    return datetime(*args, tzinfo=tz)


def test_minutes_inside_one_working_day():
    # Tuesday 10:00 in Paris + 90 minutes = 11:30 the same day.
    start = local(PARIS, 2026, 11, 24, 10, 0)
    assert bh.add_minutes(office(), start, 90) == local(PARIS, 2026, 11, 24, 11, 30)


def test_deadline_rolls_over_closing_time_into_the_next_morning():
    # Tuesday 16:00 + 120 minutes: 60 before closing, 60 after Wednesday's opening.
    start = local(PARIS, 2026, 11, 24, 16, 0)
    assert bh.add_minutes(office(), start, 120) == local(PARIS, 2026, 11, 25, 10, 0)


def test_deadline_lands_exactly_on_closing_time():
    start = local(PARIS, 2026, 11, 24, 16, 0)
    assert bh.add_minutes(office(), start, 60) == local(PARIS, 2026, 11, 24, 17, 0)


def test_friday_afternoon_case_is_due_on_monday():
    start = local(PARIS, 2026, 11, 27, 16, 30)  # Friday
    assert bh.add_minutes(office(), start, 60) == local(PARIS, 2026, 11, 30, 9, 30)


def test_case_opened_on_saturday_starts_counting_at_monday_opening():
    start = local(PARIS, 2026, 11, 28, 12, 0)  # Saturday
    assert bh.add_minutes(office(), start, 30) == local(PARIS, 2026, 11, 30, 9, 30)
    assert bh.add_minutes(office(), start, 0) == local(PARIS, 2026, 11, 30, 9, 0)


def test_case_opened_before_opening_counts_from_opening():
    start = local(PARIS, 2026, 11, 24, 6, 15)
    assert bh.add_minutes(office(), start, 45) == local(PARIS, 2026, 11, 24, 9, 45)


def test_case_opened_after_closing_counts_from_next_opening():
    start = local(PARIS, 2026, 11, 24, 19, 0)
    assert bh.add_minutes(office(), start, 45) == local(PARIS, 2026, 11, 25, 9, 45)


def test_holidays_are_skipped():
    # Christmas (Friday 25 Dec 2026) is a holiday: Thursday 16:00 + 2 h is Monday 10:00.
    cal = office(holidays=[date(2026, 12, 25)])
    start = local(PARIS, 2026, 12, 24, 16, 0)
    assert bh.add_minutes(cal, start, 120) == local(PARIS, 2026, 12, 28, 10, 0)
    # Without the holiday it is Friday 10:00.
    assert bh.add_minutes(office(), start, 120) == local(PARIS, 2026, 12, 25, 10, 0)


def test_several_days_of_business_time():
    # 3 working days of 8 hours from Monday 09:00 = Wednesday 17:00 (not Thursday 09:00).
    start = local(PARIS, 2026, 11, 23, 9, 0)
    assert bh.add_minutes(office(), start, 3 * 8 * 60) == local(PARIS, 2026, 11, 25, 17, 0)
    # One minute more crosses into Thursday.
    assert bh.add_minutes(office(), start, 3 * 8 * 60 + 1) == local(PARIS, 2026, 11, 26, 9, 1)


def test_time_zone_of_the_calendar_decides_the_opening_hours():
    # 08:00 UTC is 09:00 in Paris (winter) but 03:00 in New York.
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert bh.add_minutes(office(PARIS), start, 60) == local(PARIS, 2026, 11, 24, 10, 0)
    assert bh.add_minutes(office(NEW_YORK), start, 60) == local(NEW_YORK, 2026, 11, 24, 10, 0)


def test_result_is_the_same_instant_whatever_zone_the_start_is_given_in():
    start_utc = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    start_tokyo = start_utc.astimezone(ZoneInfo("Asia/Tokyo"))
    assert bh.add_minutes(office(), start_utc, 200) == bh.add_minutes(office(), start_tokyo, 200)


def test_spring_forward_weekend_keeps_local_opening_hours():
    # Paris moves to summer time on Sunday 29 March 2026: Friday 16:00 (UTC+1) + 2 h is
    # Monday 10:00 local, which is 08:00 UTC (UTC+2).
    start = local(PARIS, 2026, 3, 27, 16, 0)
    due = bh.add_minutes(office(), start, 120)
    assert due == local(PARIS, 2026, 3, 30, 10, 0)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_round_the_clock_calendar_counts_real_minutes_on_dst_days():
    # A 24/7 team in Paris: the night of the autumn change has 25 hours, so 24 hours of work
    # from Saturday 12:00 end at Sunday 11:00 local.
    cal = office(opens="00:00", closes="24:00", days="0,1,2,3,4,5,6")
    start = local(PARIS, 2026, 10, 24, 12, 0)
    assert bh.add_minutes(cal, start, 24 * 60) == local(PARIS, 2026, 10, 25, 11, 0)
    assert bh.between(cal, start, local(PARIS, 2026, 10, 25, 12, 0)) == timedelta(hours=25)
    # In spring the day is 23 hours long.
    spring = local(PARIS, 2026, 3, 28, 12, 0)
    assert bh.between(cal, spring, local(PARIS, 2026, 3, 29, 12, 0)) == timedelta(hours=23)


def test_opening_time_skipped_by_dst_change_still_works():
    # New York springs forward at 02:00 on Sunday 8 March 2026; a calendar opening at 02:30
    # on Sundays opens at the first real minute after the gap.
    cal = office(NEW_YORK, opens="02:30", closes="05:00", days="6")
    start = local(NEW_YORK, 2026, 3, 8, 0, 0)
    due = bh.add_minutes(cal, start, 30)
    assert due.astimezone(UTC) == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 04:00 EDT


def test_between_counts_only_opening_hours():
    cal = office()
    # Friday 16:00 to Monday 10:00: 1 h Friday + 1 h Monday.
    start = local(PARIS, 2026, 11, 27, 16, 0)
    end = local(PARIS, 2026, 11, 30, 10, 0)
    assert bh.between(cal, start, end) == timedelta(hours=2)
    assert bh.minutes_between(cal, start, end) == 120
    assert bh.between(cal, end, start) == timedelta(0)
    # Entirely outside hours: nothing.
    assert bh.minutes_between(cal, local(PARIS, 2026, 11, 28, 8, 0),
                              local(PARIS, 2026, 11, 29, 20, 0)) == 0


def test_between_and_add_agree():
    cal = office(holidays=[date(2026, 12, 25), date(2026, 12, 31)])
    start = local(PARIS, 2026, 12, 20, 23, 17)
    for minutes in (0, 1, 59, 480, 481, 1000, 5000):
        due = bh.add_minutes(cal, start, minutes)
        assert bh.minutes_between(cal, start, due) == minutes


def test_no_calendar_counts_every_minute():
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert bh.add_minutes(bh.ALWAYS, start, 90) == start + timedelta(minutes=90)


def test_a_calendar_with_no_working_time_fails_clearly():
    every_day = [date(2026, 1, 1) + timedelta(days=i) for i in range(bh.MAX_DAYS + 10)]
    cal = office(days="0", holidays=every_day)
    with pytest.raises(bh.CalendarError) as caught:
        bh.add_minutes(cal, datetime(2026, 1, 1, tzinfo=UTC), 10)
    assert caught.value.field == "work_days"


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        bh.add_minutes(office(), datetime(2026, 11, 24, 10, 0), 10)


@pytest.mark.parametrize(("values", "field"), [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"opens_at": "9am"}, "opens_at"),
    ({"opens_at": "24:00"}, "opens_at"),
    ({"closes_at": "25:00"}, "closes_at"),
    ({"opens_at": "17:00", "closes_at": "09:00"}, "closes_at"),
    ({"work_days": ""}, "work_days"),
    ({"work_days": "1,7"}, "work_days"),
])
def test_calendar_settings_are_checked_field_by_field(values, field):
    row = {"timezone": "UTC", "work_days": "0,1,2,3,4", "opens_at": "09:00",
           "closes_at": "17:00", **values}
    with pytest.raises(bh.CalendarError) as caught:
        bh.schedule_from(row)
    assert caught.value.field == field
    assert caught.value.message


def test_parsed_calendar_matches_its_row():
    cal = office(opens="08:30", closes="24:00", days="5,6")
    assert cal.opens == time(8, 30) and cal.closes is None
    assert cal.work_days == frozenset({5, 6})


@pytest.mark.parametrize("tz", [PARIS, NEW_YORK, ZoneInfo("Australia/Sydney")])
def test_add_and_between_agree_all_year_round(tz):
    """Random starts through a year with two DST changes: counting back the business time to
    a deadline gives the minutes added, and a longer target never ends earlier."""
    import random

    rng = random.Random(20261124)
    cal = office(tz, holidays=[date(2026, 5, 1), date(2026, 12, 25)], opens="08:30",
                 closes="18:15", days="0,1,2,3,4,5")
    for _ in range(150):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525600))
        minutes = rng.randrange(0, 5000)
        due = bh.add_minutes(cal, start, minutes)
        assert bh.minutes_between(cal, start, due) == minutes
        assert bh.add_minutes(cal, start, minutes + 1) > due
        local_due = due.astimezone(tz)
        assert local_due.weekday() != 6 and local_due.date() not in cal.holidays
        assert time(8, 30) <= local_due.time() <= time(18, 15)
