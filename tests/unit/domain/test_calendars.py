"""Business-hours calendars: opening state and the next open/close instant, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.calendars import (
    BusinessCalendar,
    CalendarError,
    OpeningInterval,
    SpecialDay,
    is_open,
    next_change,
    openings,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MOSCOW = ZoneInfo("Europe/Moscow")


def weekdays(*intervals: str) -> dict[str | int, list[str]]:
    return {day: list(intervals) for day in ("mon", "tue", "wed", "thu", "fri")}


def office(zone: str = "Europe/Moscow", **kwargs: object) -> BusinessCalendar:
    return BusinessCalendar.from_definition(zone, weekdays("09:00-13:00", "14:00-18:00"), **kwargs)  # type: ignore[arg-type]


def test_split_day_is_open_in_both_intervals_and_closed_at_lunch() -> None:
    cal = office()
    monday = date(2025, 3, 3)
    assert not is_open(cal, datetime.combine(monday, time(8, 59), MOSCOW))
    assert is_open(cal, datetime.combine(monday, time(9, 0), MOSCOW))
    assert is_open(cal, datetime.combine(monday, time(12, 59), MOSCOW))
    assert not is_open(cal, datetime.combine(monday, time(13, 0), MOSCOW))
    assert is_open(cal, datetime.combine(monday, time(14, 0), MOSCOW))
    assert not is_open(cal, datetime.combine(monday, time(18, 0), MOSCOW))
    assert not is_open(cal, datetime(2025, 3, 8, 10, 0, tzinfo=MOSCOW))  # Saturday


def test_next_change_walks_through_a_working_day_and_the_weekend() -> None:
    cal = office()
    at = datetime(2025, 3, 7, 8, 0, tzinfo=MOSCOW)  # Friday
    changes = []
    for _ in range(5):
        found = next_change(cal, at)
        assert found is not None
        changes.append(found.astimezone(MOSCOW).replace(tzinfo=None))
        at = found
    assert changes == [
        datetime(2025, 3, 7, 9, 0),
        datetime(2025, 3, 7, 13, 0),
        datetime(2025, 3, 7, 14, 0),
        datetime(2025, 3, 7, 18, 0),
        datetime(2025, 3, 10, 9, 0),  # Monday
    ]


def test_next_change_is_returned_in_utc_and_state_flips_there() -> None:
    cal = office()
    at = datetime(2025, 3, 3, 10, 0, tzinfo=MOSCOW)
    change = next_change(cal, at)
    assert change == datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    assert change.tzinfo is UTC
    assert is_open(cal, change - timedelta(microseconds=1)) and not is_open(cal, change)


def test_interval_crossing_midnight_belongs_to_its_start_day() -> None:
    cal = BusinessCalendar.from_definition("Europe/Moscow", {"fri": ["22:00-06:00"]})
    assert is_open(cal, datetime(2025, 3, 7, 23, 0, tzinfo=MOSCOW))
    assert is_open(cal, datetime(2025, 3, 8, 5, 59, tzinfo=MOSCOW))  # Saturday morning
    assert not is_open(cal, datetime(2025, 3, 8, 6, 0, tzinfo=MOSCOW))
    assert not is_open(cal, datetime(2025, 3, 7, 5, 0, tzinfo=MOSCOW))  # Friday morning: Thursday is closed
    assert next_change(cal, datetime(2025, 3, 8, 1, 0, tzinfo=MOSCOW)) == datetime(
        2025, 3, 8, 6, 0, tzinfo=MOSCOW
    )


def test_touching_intervals_across_midnight_are_one_opening() -> None:
    cal = BusinessCalendar.from_definition("Europe/Moscow", {"mon": ["18:00-24:00"], "tue": ["00:00-08:00"]})
    at = datetime(2025, 3, 3, 19, 0, tzinfo=MOSCOW)
    assert next_change(cal, at) == datetime(2025, 3, 4, 8, 0, tzinfo=MOSCOW)


def test_always_open_and_never_open_have_no_next_change() -> None:
    always = BusinessCalendar.from_definition("UTC", {d: ["00:00-24:00"] for d in range(7)})
    never = BusinessCalendar.from_definition("UTC", {})
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert is_open(always, at) and next_change(always, at) is None
    assert not is_open(never, at) and next_change(never, at) is None


def test_equal_start_and_end_means_twenty_four_hours() -> None:
    cal = BusinessCalendar.from_definition("UTC", {"mon": ["08:00-08:00"]})
    assert is_open(cal, datetime(2025, 3, 4, 7, 59, tzinfo=UTC))
    assert next_change(cal, datetime(2025, 3, 3, 9, 0, tzinfo=UTC)) == datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


def test_holiday_is_closed_all_day_but_the_previous_night_shift_finishes() -> None:
    cal = BusinessCalendar.from_definition(
        "Europe/Moscow", {d: ["08:00-20:00", "22:00-06:00"] for d in range(7)}, holidays=["2025-01-01"]
    )
    assert is_open(cal, datetime(2025, 1, 1, 5, 0, tzinfo=MOSCOW))
    assert not is_open(cal, datetime(2025, 1, 1, 12, 0, tzinfo=MOSCOW))
    assert not is_open(cal, datetime(2025, 1, 1, 23, 0, tzinfo=MOSCOW))
    assert next_change(cal, datetime(2025, 1, 1, 7, 0, tzinfo=MOSCOW)) == datetime(
        2025, 1, 2, 8, 0, tzinfo=MOSCOW
    )


def test_special_day_replaces_the_weekday_hours() -> None:
    # A shortened pre-holiday day, as the Russian labour code prescribes (one hour shorter).
    cal = office(holidays=[date(2025, 5, 1)], special_days={"2025-04-30": ["09:00-13:00", "14:00-17:00"]})
    assert not is_open(cal, datetime(2025, 4, 30, 17, 30, tzinfo=MOSCOW))
    assert is_open(cal, datetime(2025, 4, 29, 17, 30, tzinfo=MOSCOW))
    assert next_change(cal, datetime(2025, 4, 30, 16, 0, tzinfo=MOSCOW)) == datetime(
        2025, 4, 30, 17, 0, tzinfo=MOSCOW
    )
    # Thursday 1 May is a holiday: the next opening is Friday morning.
    assert next_change(cal, datetime(2025, 4, 30, 17, 0, tzinfo=MOSCOW)) == datetime(
        2025, 5, 2, 9, 0, tzinfo=MOSCOW
    )


def test_special_day_can_open_a_weekend() -> None:
    cal = office(special_days={date(2025, 11, 1): ["10:00-15:00"]})  # a working Saturday
    assert is_open(cal, datetime(2025, 11, 1, 12, 0, tzinfo=MOSCOW))


def test_office_hours_follow_the_wall_clock_across_dst_in_berlin() -> None:
    cal = BusinessCalendar.from_definition("Europe/Berlin", {d: ["09:00-17:00"] for d in range(7)})
    # Before (CET, UTC+1) and after (CEST, UTC+2) the spring change on 30 March 2025.
    assert next_change(cal, datetime(2025, 3, 29, 0, 0, tzinfo=UTC)) == datetime(
        2025, 3, 29, 8, 0, tzinfo=UTC
    )
    assert next_change(cal, datetime(2025, 3, 31, 0, 0, tzinfo=UTC)) == datetime(
        2025, 3, 31, 7, 0, tzinfo=UTC
    )
    # Autumn change on 26 October 2025.
    assert next_change(cal, datetime(2025, 10, 26, 0, 0, tzinfo=UTC)) == datetime(
        2025, 10, 26, 8, 0, tzinfo=UTC
    )


def test_opening_time_inside_the_spring_gap_means_when_clocks_jump() -> None:
    cal = BusinessCalendar.from_definition("Europe/Berlin", {"sun": ["02:30-05:00"]})
    change = next_change(cal, datetime(2025, 3, 30, 0, 0, tzinfo=BERLIN))
    # 02:30 does not exist on 30 March 2025: clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert change == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
    assert is_open(cal, change)
    assert not is_open(cal, change - timedelta(seconds=1))


def test_night_shift_is_an_hour_shorter_in_spring_and_longer_in_autumn() -> None:
    cal = BusinessCalendar.from_definition("America/New_York", {d: ["22:00-06:00"] for d in range(7)})
    spring_open = datetime(2025, 3, 8, 22, 0, tzinfo=NEW_YORK)  # DST starts 9 March 2025, 02:00
    spring_close = next_change(cal, spring_open)
    assert spring_close is not None and spring_close - spring_open == timedelta(hours=7)
    autumn_open = datetime(2025, 11, 1, 22, 0, tzinfo=NEW_YORK)  # DST ends 2 November 2025, 02:00
    autumn_close = next_change(cal, autumn_open)
    assert autumn_close is not None and autumn_close - autumn_open == timedelta(hours=9)


def test_time_that_happens_twice_in_autumn_means_its_first_occurrence() -> None:
    cal = BusinessCalendar.from_definition("Europe/Berlin", {"sun": ["00:00-02:30"]})
    # 26 October 2025: 02:30 CEST (00:30 UTC) comes first, 02:30 CET (01:30 UTC) an hour later.
    close = next_change(cal, datetime(2025, 10, 26, 0, 0, tzinfo=UTC))
    assert close == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert not is_open(cal, datetime(2025, 10, 26, 1, 0, tzinfo=UTC))  # 02:00 CET, wall time repeats


def test_openings_lists_merged_periods_in_a_range() -> None:
    cal = office()
    day = openings(cal, datetime(2025, 3, 3, 0, 0, tzinfo=MOSCOW), datetime(2025, 3, 4, 0, 0, tzinfo=MOSCOW))
    assert day == [
        (datetime(2025, 3, 3, 6, 0, tzinfo=UTC), datetime(2025, 3, 3, 10, 0, tzinfo=UTC)),
        (datetime(2025, 3, 3, 11, 0, tzinfo=UTC), datetime(2025, 3, 3, 15, 0, tzinfo=UTC)),
    ]


def test_next_change_finds_an_opening_months_ahead() -> None:
    cal = BusinessCalendar.from_definition("UTC", {}, special_days={"2026-01-15": ["10:00-11:00"]})
    assert next_change(cal, datetime(2025, 3, 1, tzinfo=UTC)) == datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    assert next_change(cal, datetime(2024, 1, 1, tzinfo=UTC)) is None  # beyond the search horizon


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"time_zone": "Mars/Olympus"}, "time zone"),
        ({"weekly": {"mon": ["09:00-13:00", "12:00-18:00"]}}, "overlap"),
        ({"weekly": {"mon": ["9-13"]}}, "HH:MM"),
        ({"weekly": {"mon": ["25:00-26:00"]}}, "out of range"),
        ({"weekly": {"mon": ["09:00"]}}, "HH:MM-HH:MM"),
        ({"weekly": {"funday": ["09:00-10:00"]}}, "weekday"),
        ({"weekly": {}, "holidays": ["2025-13-01"]}, "date"),
        ({"weekly": {}, "holidays": ["2025-01-01"], "special_days": {"2025-01-01": ["09:00-10:00"]}}, "both"),
    ],
)
def test_invalid_definitions_raise_calendar_error(kwargs: dict[str, object], fragment: str) -> None:
    arguments: dict[str, object] = {"time_zone": "UTC", "weekly": {}, **kwargs}
    with pytest.raises(CalendarError, match=fragment):
        BusinessCalendar.from_definition(**arguments)  # type: ignore[arg-type]


def test_constructor_validates_too() -> None:
    with pytest.raises(CalendarError, match="seven"):
        BusinessCalendar("UTC", ((),))
    with pytest.raises(CalendarError, match="twice"):
        interval = (OpeningInterval.parse("09:00-10:00"),)
        BusinessCalendar("UTC", ((),) * 7, special_days=(SpecialDay(date(2025, 1, 2), interval),) * 2)
    with pytest.raises(CalendarError, match="wall-clock"):
        OpeningInterval(time(9, tzinfo=UTC), time(10))


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(CalendarError, match="aware"):
        is_open(office(), datetime(2025, 3, 3, 10, 0))


def test_interval_prints_back_in_its_definition_form() -> None:
    assert str(OpeningInterval.parse("18:00 – 24:00")) == "18:00-24:00"


@settings(max_examples=60, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 366),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Europe/Moscow"]),
)
def test_state_is_constant_until_next_change_and_flips_there(minutes: int, zone: str) -> None:
    cal = BusinessCalendar.from_definition(
        zone,
        {
            "mon": ["09:00-13:00", "14:00-18:00"],
            "sat": ["22:00-03:00"],
            "sun": ["01:30-02:30", "10:00-10:00"],
        },
        holidays=["2025-05-01"],
    )
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    change = next_change(cal, at)
    assert change is not None and change > at
    state = is_open(cal, at)
    assert is_open(cal, change - timedelta(microseconds=1)) == state
    assert is_open(cal, change) != state
    midpoint = at + (change - at) / 2
    assert is_open(cal, midpoint) == state
