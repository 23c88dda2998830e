"""Business-hours calendars: when a queue or entry point is open.

A :class:`BusinessCalendar` holds, in one IANA time zone:

* weekly opening intervals per weekday (Monday first), several per day
  (``09:00-13:00`` and ``14:00-18:00``);
* holidays: dates closed all day;
* special days: dates with their own intervals (a shortened pre-holiday day), replacing the weekday's.

Rules that decide edge cases:

* An interval belongs to the date it *starts* on. When its end is not after its start it crosses
  midnight and ends on the next day (``22:00-06:00``); ``24:00`` as an end means midnight; an interval
  whose start equals its end (``00:00-00:00``) lasts 24 hours.
* A holiday or special day replaces only the intervals that start on that date: the night shift that
  began the evening before still runs until its end.
* Wall-clock times are turned into instants in the calendar's zone. A time that does not exist because
  clocks jump forward (02:30 on a spring-forward day in Berlin) means the first moment that exists after
  it (03:00 CEST); a time that happens twice because clocks go back means its first occurrence.
  So ``09:00-17:00`` is always nine-to-five on the wall clock, and a night shift across a DST change
  is one hour shorter or longer in real time, as the staff experience it.
* Touching or overlapping intervals (Monday ``18:00-24:00`` and Tuesday ``00:00-08:00``) form one
  opening: :func:`next_change` never reports a close immediately followed by an open.

All functions are pure: time is passed in as an aware ``datetime``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MAX_INTERVALS_PER_DAY",
    "MAX_SEARCH_DAYS",
    "MAX_SPECIAL_DATES",
    "WEEKDAY_NAMES",
    "BusinessCalendar",
    "CalendarError",
    "OpeningInterval",
    "SpecialDay",
    "is_open",
    "next_change",
    "openings",
    "weekday_index",
]

# Looking further than a year ahead covers a calendar closed for a long holiday season and every
# yearly holiday once; ~400 days is enough and bounds the work of one next_change() call.
MAX_SEARCH_DAYS: Final = 400
# Split shifts rarely exceed three or four pieces a day; 48 (every half hour) is a generous ceiling
# that catches generated nonsense without limiting real schedules.
MAX_INTERVALS_PER_DAY: Final = 48
# Holidays plus special days for several years ahead; beyond this the definition is likely a mistake.
MAX_SPECIAL_DATES: Final = 5_000

WEEKDAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MIDNIGHT: Final = time(0, 0)
_TIME_RE: Final = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_ONE_DAY: Final = timedelta(days=1)


class CalendarError(ValueError):
    """A calendar definition is invalid, or a naive datetime was passed.

    ``kind`` says what is wrong in a stable, kebab-case word a form can act on: ``hours-format``,
    ``hour-out-of-range``, ``unknown-time-zone``, ``unknown-weekday``, ``date-format``, or ``invalid``.
    """

    error_id = "invalid-calendar"

    def __init__(self, message: str, *, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


def _parse_time(text: str, *, allow_24: bool) -> time:
    m = _TIME_RE.match(text)
    if m is None:
        raise CalendarError(f"Invalid time {text!r}: expected HH:MM", kind="hours-format")
    hours, minutes, seconds = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if allow_24 and (hours, minutes, seconds) == (24, 0, 0):
        return _MIDNIGHT
    if hours > 23 or minutes > 59 or seconds > 59:
        raise CalendarError(f"Invalid time {text!r}: out of range", kind="hour-out-of-range")
    return time(hours, minutes, seconds)


@dataclass(frozen=True, slots=True)
class OpeningInterval:
    """Open from ``start`` to ``end`` wall-clock time; crosses midnight when ``end <= start``."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if not isinstance(value, time):
                raise CalendarError(f"Interval bounds must be times, not {type(value).__name__}")
            if value.tzinfo is not None:
                raise CalendarError("Interval times are wall-clock times; the zone is the calendar's")

    @classmethod
    def parse(cls, text: str) -> OpeningInterval:
        """Parse ``"09:00-13:00"`` (also ``"22:00-06:00"``, ``"18:00-24:00"``, en dash accepted)."""
        parts = text.replace("–", "-").split("-")
        if len(parts) != 2:
            raise CalendarError(f"Invalid interval {text!r}: expected HH:MM-HH:MM", kind="hours-format")
        return cls(_parse_time(parts[0], allow_24=False), _parse_time(parts[1], allow_24=True))

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def ends_before_start(self) -> bool:
        """The end comes before (or at) the start on the clock, other than an end at midnight
        (``"18:00-24:00"``): ``"22:00-06:00"`` as configuration may mean a night shift, but typed in a
        form it is far more often a slip, so the API refuses it (see ``services/calendars.py``)."""
        return self.crosses_midnight and self.end != _MIDNIGHT

    def local_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Naive wall-clock start and end of this interval on ``day``."""
        start = datetime.combine(day, self.start)
        end = datetime.combine(day + _ONE_DAY if self.crosses_midnight else day, self.end)
        return start, end

    def __str__(self) -> str:
        end = "24:00" if self.end == _MIDNIGHT else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """A date with its own opening intervals (empty intervals would be a holiday: use ``holidays``)."""

    day: date
    intervals: tuple[OpeningInterval, ...]


def _check_day(intervals: Sequence[OpeningInterval], label: str) -> None:
    if len(intervals) > MAX_INTERVALS_PER_DAY:
        raise CalendarError(f"{label}: more than {MAX_INTERVALS_PER_DAY} intervals")
    reference = date(2000, 1, 3)  # any date: overlap is a wall-clock question
    spans = sorted(interval.local_bounds(reference) for interval in intervals)
    for (_, previous_end), (next_start, _) in itertools.pairwise(spans):
        if next_start < previous_end:
            raise CalendarError(f"{label}: intervals overlap")


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly opening hours in a time zone, with holidays and special days.

    ``weekly`` has seven entries, Monday first. Build one from plain values with
    :meth:`from_definition`; the constructor validates and raises :class:`CalendarError`.
    """

    time_zone: str
    weekly: tuple[tuple[OpeningInterval, ...], ...]
    holidays: frozenset[date] = frozenset()
    special_days: tuple[SpecialDay, ...] = ()
    _zone: tzinfo = field(init=False, repr=False, compare=False)
    _special: Mapping[date, tuple[OpeningInterval, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise CalendarError(f"Unknown time zone {self.time_zone!r}", kind="unknown-time-zone") from None
        if len(self.weekly) != 7:
            raise CalendarError("Weekly hours need exactly seven days, Monday first")
        for name, intervals in zip(WEEKDAY_NAMES, self.weekly, strict=True):
            _check_day(intervals, name)
        if len(self.holidays) + len(self.special_days) > MAX_SPECIAL_DATES:
            raise CalendarError(f"More than {MAX_SPECIAL_DATES} holidays and special days")
        special: dict[date, tuple[OpeningInterval, ...]] = {}
        for entry in self.special_days:
            if entry.day in special:
                raise CalendarError(f"Special day {entry.day.isoformat()} is defined twice")
            if entry.day in self.holidays:
                raise CalendarError(f"{entry.day.isoformat()} is both a holiday and a special day")
            _check_day(entry.intervals, entry.day.isoformat())
            special[entry.day] = entry.intervals
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_special", special)

    @classmethod
    def from_definition(
        cls,
        time_zone: str,
        weekly: Mapping[str | int, Iterable[str]],
        *,
        holidays: Iterable[date | str] = (),
        special_days: Mapping[date | str, Iterable[str]] | None = None,
    ) -> BusinessCalendar:
        """Build a calendar from plain values, e.g. from configuration or an API payload.

        ``weekly`` maps a weekday (``"mon"``..``"sun"`` or 0..6, Monday = 0) to interval strings;
        missing days are closed. Dates may be ``date`` objects or ISO strings (``"2025-12-31"``).
        """
        days: list[tuple[OpeningInterval, ...]] = [() for _ in range(7)]
        for key, intervals in weekly.items():
            index = _weekday_index(key)
            days[index] = tuple(OpeningInterval.parse(text) for text in intervals)
        specials = tuple(
            SpecialDay(_parse_date(day), tuple(OpeningInterval.parse(t) for t in texts))
            for day, texts in (special_days or {}).items()
        )
        return cls(time_zone, tuple(days), frozenset(_parse_date(d) for d in holidays), specials)

    @property
    def zone(self) -> tzinfo:
        """The calendar's time zone object."""
        return self._zone

    def intervals_on(self, day: date) -> tuple[OpeningInterval, ...]:
        """The intervals that start on ``day``: none on a holiday, a special day's own, else weekly."""
        if day in self.holidays:
            return ()
        special = self._special.get(day)
        if special is not None:
            return special
        return self.weekly[day.weekday()]


def weekday_index(key: str | int) -> int:
    """Monday = 0 for ``"mon"``..``"sun"`` (any case, longer names too) or 0..6."""
    return _weekday_index(key)


def _weekday_index(key: str | int) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
        return key
    if isinstance(key, str) and key.strip().lower()[:3] in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(key.strip().lower()[:3])
    raise CalendarError(f"Unknown weekday {key!r}: use mon..sun or 0..6", kind="unknown-weekday")


def _parse_date(value: date | str) -> date:
    if isinstance(value, datetime):
        raise CalendarError("Holidays and special days are dates, not datetimes")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise CalendarError(f"Invalid date {value!r}: expected YYYY-MM-DD") from None


# --- wall clock to instants -------------------------------------------------------------------------


def _to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a naive wall-clock time denotes in ``zone`` (see the module docstring for DST)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists (the first occurrence, if it happens twice)
    # In a spring-forward gap: find the transition, the first instant whose wall time is >= wall.
    # PEP 495: fold=1 uses the offset after the change, which gives an instant before the jump.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    if low.astimezone(zone).replace(tzinfo=None) >= wall:
        return low
    return high


def _day_spans(calendar: BusinessCalendar, day: date) -> Iterator[tuple[datetime, datetime]]:
    zone = calendar.zone
    for start, end in sorted(interval.local_bounds(day) for interval in calendar.intervals_on(day)):
        start_utc, end_utc = _to_utc(start, zone), _to_utc(end, zone)
        if end_utc > start_utc:
            yield start_utc, end_utc


def _merged_spans(
    calendar: BusinessCalendar, first_day: date, last_day: date
) -> Iterator[tuple[datetime, datetime]]:
    """Opening spans (UTC) of intervals starting on ``first_day``..``last_day``, merged when touching.

    Starts are non-decreasing across days because every interval starts on its own date, so one
    streaming pass merges them.
    """
    current: tuple[datetime, datetime] | None = None
    day = first_day
    while day <= last_day:
        for start, end in _day_spans(calendar, day):
            if current is not None and start <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None:
                yield current
            current = (start, end)
        day += _ONE_DAY
    if current is not None:
        yield current


def _local_day(calendar: BusinessCalendar, at: datetime) -> date:
    if at.tzinfo is None or at.utcoffset() is None:
        raise CalendarError("A timezone-aware datetime is required")
    return at.astimezone(calendar.zone).date()


# An interval starting two days earlier can still reach "today" only via a 24-hour interval that
# started yesterday; two days back covers that with a margin for DST shifts.
_LOOKBACK_DAYS: Final = 2


def is_open(calendar: BusinessCalendar, at: datetime) -> bool:
    """True when the calendar is open at the instant ``at`` (must be timezone-aware)."""
    today = _local_day(calendar, at)
    for start, end in _merged_spans(calendar, today - timedelta(days=_LOOKBACK_DAYS), today):
        if start <= at < end:
            return True
    return False


def next_change(calendar: BusinessCalendar, at: datetime) -> datetime | None:
    """The next instant after ``at`` when the calendar opens or closes, in UTC.

    Returns None when nothing changes within :data:`MAX_SEARCH_DAYS` days (always open or always
    closed). At the returned instant :func:`is_open` gives the new state: intervals are half-open,
    open at their start and closed at their end.
    """
    today = _local_day(calendar, at)
    last_day = today + timedelta(days=MAX_SEARCH_DAYS)
    # An opening that extends past the last searched day could be prolonged by intervals we did not
    # look at, so its end is only reported if it comes before that day's first possible interval.
    horizon = _to_utc(datetime.combine(last_day + _ONE_DAY, _MIDNIGHT), calendar.zone)
    for start, end in _merged_spans(calendar, today - timedelta(days=_LOOKBACK_DAYS), last_day):
        if at < start:
            return start
        if at < end:
            return end if end < horizon else None
    return None


def openings(calendar: BusinessCalendar, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The open periods (UTC, half-open, merged) that overlap ``[start, end)``, clipped to it.

    Useful for reports (hours open in a day) and staffing plans.
    """
    first = _local_day(calendar, start)
    last = _local_day(calendar, end)
    if (last - first).days > MAX_SEARCH_DAYS:
        raise CalendarError(f"Range is longer than {MAX_SEARCH_DAYS} days")
    result: list[tuple[datetime, datetime]] = []
    for span_start, span_end in _merged_spans(calendar, first - timedelta(days=_LOOKBACK_DAYS), last):
        lo, hi = max(span_start, start), min(span_end, end)
        if lo < hi:
            result.append((lo.astimezone(UTC), hi.astimezone(UTC)))
    return result
