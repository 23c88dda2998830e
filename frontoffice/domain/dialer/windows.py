"""Calling windows, evaluated in the called person's local time.

A campaign's windows (``mon-fri 09:00-20:00``, ``sat 10:00-14:00``) are wall-clock times in the
*contact's* time zone, found from the phone number (:func:`local_zone_for`). Wall-clock arithmetic
(daylight-saving gaps and repeats) is the business calendars' (:mod:`frontoffice.domain.calendars`):
a window starting at a time that does not exist that day starts at the first moment that exists
after it.

A *zone string* is one IANA zone name, or several separated by spaces when the number could be in
any of them (a mobile or non-geographic number in a country with several zones): then a call is
allowed only when it is inside the windows in *every* one of them. That is the conservative reading
the regulators expect (the FTC's calling-time rule and Ofcom's guidance are about the called
person's local time, which the dialler cannot know better than the number tells it). A contact whose
zone is known otherwise (an address in the CRM) may be given that zone instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import timezone as phone_timezones

from frontoffice.domain.calendars import (
    BusinessCalendar,
    CalendarError,
    OpeningInterval,
    is_open,
    next_change,
    weekday_index,
)

from .exceptions import DialerError, UnknownTimeZone

__all__ = [
    "MAX_WINDOW_SEARCH_DAYS",
    "CallingWindow",
    "local_zone_for",
    "may_call_at",
    "next_window_start",
    "zones_of",
]

# Weekly windows repeat every 7 days; a fortnight covers a window that, in several zones at once,
# only overlaps on some weekday pairs, plus DST shifts. Past that the windows never meet.
MAX_WINDOW_SEARCH_DAYS: Final = 14
# Each zone of a zone string moves the search at least to its next opening, so a fixed point is
# reached in a few rounds unless the windows never overlap; this bounds the rounds.
_MAX_ROUNDS: Final = 256
_WEEKDAY_RANGE = re.compile(r"^([a-z]+)(?:-([a-z]+))?$")
_TIME_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """Calls are allowed on ``weekdays`` (0 = Monday .. 6 = Sunday) from ``start`` to ``end`` local
    wall-clock time (``start`` included, ``end`` excluded; ``end`` after ``start``, the same day)."""

    weekdays: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        days = frozenset(self.weekdays)
        object.__setattr__(self, "weekdays", days)
        if not days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise DialerError("a calling window needs weekdays from 0 (Monday) to 6 (Sunday)")
        for value in (self.start, self.end):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise DialerError("window bounds are naive wall-clock times (the contact's zone applies)")
        if not self.start < self.end:
            raise DialerError(f"a calling window must end after it starts: {self.start}-{self.end}")

    @classmethod
    def parse(cls, text: str) -> CallingWindow:
        """``"mon-fri 09:00-20:00"``, ``"sat 10:00-14:00"``, ``"mon,wed,fri 09:00-12:00"``."""
        parts = text.strip().lower().split()
        if len(parts) != 2:
            raise DialerError(f"cannot read a calling window from {text!r}: use e.g. 'mon-fri 09:00-20:00'")
        days: set[int] = set()
        try:
            for piece in parts[0].split(","):
                match = _WEEKDAY_RANGE.match(piece)
                if match is None:
                    raise DialerError(f"cannot read weekdays from {parts[0]!r}")
                first = weekday_index(match.group(1))
                last = weekday_index(match.group(2)) if match.group(2) else first
                day = first
                days.add(day)
                while day != last:  # "fri-mon" wraps round the week
                    day = (day + 1) % 7
                    days.add(day)
        except CalendarError as exc:
            raise DialerError(str(exc)) from None
        hours = _TIME_RANGE.match(parts[1])
        if hours is None:
            raise DialerError(f"cannot read hours from {parts[1]!r}: use e.g. 09:00-20:00")
        h1, m1, h2, m2 = (int(g) for g in hours.groups())
        try:
            start = time(h1, m1)
            end = time(23, 59, 59, 999999) if (h2, m2) == (24, 0) else time(h2, m2)
        except ValueError:
            raise DialerError(f"no such time in {parts[1]!r}") from None
        return cls(frozenset(days), start, end)

    def __str__(self) -> str:
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return f"{','.join(names[d] for d in sorted(self.weekdays))} {self.start:%H:%M}-{self.end:%H:%M}"


def zones_of(zone: str) -> tuple[str, ...]:
    """The IANA zone names of a zone string (one name, or several separated by spaces)."""
    names = tuple(zone.split())
    if not names:
        raise UnknownTimeZone("empty time zone")
    return names


def local_zone_for(e164: str, default: str | None = None) -> str:
    """The zone string of a phone number (E.164, ``+`` and digits), from libphonenumber's prefix
    tables (the ``phonenumbers`` package).

    One zone when the number's prefix pins it down (``+1 212`` → ``America/New_York``); several,
    sorted and separated by spaces, when it could be in any of them (a Russian mobile, a US toll-free
    number): :func:`may_call_at` then allows a call only when every one of them is inside the
    windows, the most restrictive reading. A number libphonenumber cannot place gives ``default``,
    or raises :class:`UnknownTimeZone` when there is none.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        number = None
    zones: tuple[str, ...] = ()
    if number is not None:
        zones = tuple(
            z for z in phone_timezones.time_zones_for_number(number) if z != phone_timezones.UNKNOWN_TIMEZONE
        )
    if not zones:
        if default is None:
            raise UnknownTimeZone(f"no time zone is known for {e164!r}")
        return default
    return " ".join(sorted(set(zones)))


def _merged_days(windows: Sequence[CallingWindow]) -> tuple[tuple[OpeningInterval, ...], ...]:
    """The windows as seven days of non-overlapping intervals (overlapping windows are joined)."""
    days: list[tuple[OpeningInterval, ...]] = []
    for weekday in range(7):
        spans = sorted((w.start, w.end) for w in windows if weekday in w.weekdays)
        merged: list[tuple[time, time]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        days.append(tuple(OpeningInterval(s, e) for s, e in merged))
    return tuple(days)


@lru_cache(maxsize=4096)
def _calendar(windows: tuple[CallingWindow, ...], zone: str) -> BusinessCalendar:
    # Pure and immutable: caching only saves rebuilding the same campaign × zone calendar per call.
    try:
        return BusinessCalendar(zone, _merged_days(windows))
    except CalendarError as exc:
        raise UnknownTimeZone(str(exc)) from None


def _instant(at: float | datetime) -> datetime:
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise DialerError("a timezone-aware datetime is required (or POSIX seconds)")
        return at.astimezone(UTC)
    if not math.isfinite(at):
        raise DialerError(f"not a time: {at!r}")
    return datetime.fromtimestamp(at, UTC)


def _calendars(windows: Iterable[CallingWindow], zone: str) -> list[BusinessCalendar]:
    key = tuple(sorted(set(windows), key=lambda w: (sorted(w.weekdays), w.start, w.end)))
    return [_calendar(key, name) for name in zones_of(zone)]


def may_call_at(windows: Iterable[CallingWindow], zone: str, now_utc: float | datetime) -> bool:
    """May a contact in ``zone`` (a zone string) be called at ``now_utc`` (POSIX seconds or an aware
    datetime)? True when the instant is inside a window in every zone of the string. No windows at
    all: never."""
    at = _instant(now_utc)
    return all(is_open(calendar, at) for calendar in _calendars(windows, zone))


def next_window_start(windows: Iterable[CallingWindow], zone: str, now_utc: float | datetime) -> float | None:
    """The first instant at or after ``now_utc`` when :func:`may_call_at` is true, in POSIX seconds
    (``now_utc`` itself when calls are allowed now); None when the windows do not open within
    :data:`MAX_WINDOW_SEARCH_DAYS` days in all the zones at once."""
    at = _instant(now_utc)
    calendars = _calendars(windows, zone)
    limit = at + timedelta(days=MAX_WINDOW_SEARCH_DAYS)
    t = at
    for _ in range(_MAX_ROUNDS):
        moved = False
        for calendar in calendars:
            if is_open(calendar, t):
                continue
            # Closed in this zone until its next change, which is an opening: no instant before it
            # can be open in every zone, so jumping there skips no answer.
            opening = next_change(calendar, t)
            if opening is None or opening > limit:
                return None
            t = opening
            moved = True
        if not moved:
            return at.timestamp() if t == at else t.timestamp()
    return None
