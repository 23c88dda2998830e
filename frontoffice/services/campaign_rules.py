"""The campaign rules the services apply, in one place: calling windows in the contact's own time
zone, the retry rule per outcome, the 72-hour rule for abandoned numbers, and the pacing.

PROVISIONAL: written before the dialer branch (``frontoffice/domain/dialer``) was merged; every
function here is to call the pure domain code of that package (``local_zone_for``, ``CallingWindow``
/ ``may_call_at``, ``RetryPolicy.next_attempt``, ``AbandonGuard``, ``Pacer.calls_to_place``) once it
is there, so that the live dialler and the planning simulation run the same rules.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

__all__ = [
    "ABANDON_HOLD",
    "DEFAULT_RETRY",
    "PacingDecision",
    "PacingStats",
    "abandon_hold_until",
    "calls_to_place",
    "is_zone",
    "next_attempt_at",
    "window_opens",
    "zone_of",
]

# Ofcom / FCC: a number whose call was abandoned is not called again for 72 hours, unless an agent is
# reserved for the call.
ABANDON_HOLD = timedelta(hours=72)
# The retry rule of an outcome the campaign does not name: (after seconds, most attempts in all).
DEFAULT_RETRY: dict[str, tuple[int, int]] = {
    "busy": (600, 3),
    "no_answer": (3600, 3),
    "voicemail": (7200, 3),
    "failed": (3600, 2),
    "rejected": (0, 0),
    "abandoned": (0, 3),  # the 72-hour rule decides when
    "hung_up": (3600, 3),
}
# How far ahead a closed window's next opening is looked for.
_WINDOW_HORIZON_DAYS = 8


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_of(phone: str, default: str) -> str:
    """The time zone of an E.164 number's region (its only one; ``default`` when the region spans
    several, or the number is not known)."""
    try:
        zones = phone_zones.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return default
    known = [z for z in zones if z != "Etc/Unknown" and is_zone(z)]
    return known[0] if len(known) == 1 else default


def _clock(text: str) -> time | None:
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def window_opens(windows: list[dict[str, Any]], zone: str, now: datetime) -> datetime | None:
    """``None`` when a window is open at ``now`` in ``zone``; else when the next one opens (UTC-aware)
    — or a day later when none opens within a week."""
    if not windows:
        return None
    tz = ZoneInfo(zone) if is_zone(zone) else ZoneInfo("UTC")
    local = now.astimezone(tz)
    best: datetime | None = None
    for offset in range(_WINDOW_HORIZON_DAYS):
        day = (local + timedelta(days=offset)).date()
        for window in windows:
            if day.weekday() not in window.get("days", range(7)):
                continue
            start = datetime.combine(day, _clock(window.get("start", "00:00")) or time(0), tz)
            end_time = _clock(window.get("end", "24:00"))
            end = (
                datetime.combine(day, end_time, tz)
                if end_time
                else datetime.combine(day + timedelta(days=1), time(0), tz)
            )
            if start <= local < end:
                return None
            if start > local and (best is None or start < best):
                best = start
        if best is not None:
            return best
    return now + timedelta(days=1)


def abandon_hold_until(abandoned_at: datetime | None, now: datetime, *, reserved: bool) -> datetime | None:
    """When an abandoned number may be called again (``None``: now)."""
    if abandoned_at is None or reserved:
        return None
    until = abandoned_at + ABANDON_HOLD
    return until if until > now else None


def next_attempt_at(outcome: str, attempts: int, retry: dict[str, Any], now: datetime) -> datetime | None:
    """When a contact is tried again after ``outcome`` (it has had ``attempts``); ``None``: never."""
    rule = retry.get(outcome) or (retry.get("failed") if outcome == "unknown" else None)
    if rule is not None:
        after, most = int(rule.get("after_s", 3600)), int(rule.get("max_attempts", 3))
    else:
        after, most = DEFAULT_RETRY.get(
            "failed" if outcome == "unknown" else outcome, DEFAULT_RETRY["failed"]
        )
    if attempts >= most:
        return None
    return now + timedelta(seconds=after)


@dataclass
class PacingStats:
    """What a campaign's pacing measures (the answers of its calls), on this node."""

    answered_total: int = 0
    abandoned_total: int = 0
    recent: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=500))

    def dialled(self, now: float) -> None: ...

    def answered(self, now: float) -> None:
        self.answered_total += 1

    def connected(self, now: float) -> None: ...

    def ended(self, now: float, outcome: str) -> None:
        if outcome == "abandoned":
            self.abandoned_total += 1
        self.recent.append((now, outcome))

    def abandon_rate(self) -> float:
        return 0.0 if self.answered_total == 0 else self.abandoned_total / self.answered_total


@dataclass(frozen=True, slots=True)
class PacingDecision:
    calls: int
    effective_mode: str


def calls_to_place(
    mode: str,
    stats: PacingStats,
    *,
    now: float,
    agents_available: int,
    agents_busy: int,
    queue_waiting: int,
    dialling: int,
    answered_waiting: int,
    abandon_cap: float,
) -> PacingDecision:
    """Progressive: one call per free agent (free agents less the calls ringing or waiting already)."""
    free = agents_available - queue_waiting - dialling - answered_waiting
    return PacingDecision(max(0, free), "progressive" if mode == "predictive" else mode)
