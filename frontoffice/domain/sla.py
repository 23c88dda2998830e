"""Service-level agreements of the help desk: which policy a ticket gets and how its clocks run.

A **policy** sets targets in business seconds for three metrics:

* ``first_response``: from the ticket's creation to the first reply of an agent;
* ``next_response``: from a customer's reply (after the first response) to the agent's next reply;
* ``resolution``: from creation to *solved* (a reopened ticket's clock goes on from where it stopped).

It applies to the tickets that match all of its conditions (projects, queues, priorities, customer
tags; an empty condition matches anything); the first matching policy by position wins, as in Zendesk.

A **clock** counts business time only: the seconds of the calendar's openings (a ticket of a
project with no calendar counts around the clock). While a ticket is *pending* on the customer every
running clock pauses, and resumes where it stopped when the ticket is open again. A clock's
**deadline** is the instant at which the business time counted reaches its target; it is *warned*
``warn_before_s`` business seconds earlier and *breached* at the deadline. Whether a clock was met or
breached is decided by when it stopped against its deadline, never by a timer firing late.

Everything here is pure: instants (aware ``datetime``) are passed in; nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from .calendars import MAX_SEARCH_DAYS, BusinessCalendar, openings

__all__ = [
    "SEARCH_WINDOW_DAYS",
    "ClockState",
    "SlaClock",
    "SlaEvent",
    "SlaMetric",
    "SlaPolicy",
    "SlaTargets",
    "TicketFacts",
    "TicketSla",
    "add_business_seconds",
    "business_seconds",
    "choose_policy",
]

# Deadlines are searched a fortnight of openings at a time: one window covers any target of a few
# business days (the usual resolution target) in one calendar pass, and MAX_SEARCH_DAYS bounds it.
SEARCH_WINDOW_DAYS: Final = 14


class SlaMetric(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class SlaEvent(StrEnum):
    WARNING = "warning"
    BREACH = "breach"


class ClockState(StrEnum):
    """Where a clock stands at an instant."""

    OFF = "off"  # not started (or not part of the policy)
    RUNNING = "running"
    WARNING = "warning"  # running, within warn_before_s of its deadline
    BREACHED = "breached"  # running past its deadline, or stopped after it
    PAUSED = "paused"  # pending on the customer
    MET = "met"  # stopped by or before its deadline


def business_seconds(calendar: BusinessCalendar | None, start: datetime, end: datetime) -> float:
    """Business seconds in ``[start, end)``; all seconds without a calendar; 0 when end <= start."""
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds()
    total = 0.0
    cursor = start
    while cursor < end:  # openings() refuses ranges longer than MAX_SEARCH_DAYS
        chunk_end = min(end, cursor + timedelta(days=MAX_SEARCH_DAYS - 1))
        total += sum((hi - lo).total_seconds() for lo, hi in openings(calendar, cursor, chunk_end))
        cursor = chunk_end
    return total


def add_business_seconds(
    calendar: BusinessCalendar | None, start: datetime, seconds: float
) -> datetime | None:
    """The instant at which ``seconds`` of business time have passed since ``start``; ``None`` when
    the calendar has not that much open time within MAX_SEARCH_DAYS (a clock that cannot breach)."""
    if seconds <= 0:
        return start
    if calendar is None:
        return start + timedelta(seconds=seconds)
    left = seconds
    window_start = start
    horizon = start + timedelta(days=MAX_SEARCH_DAYS)
    while window_start < horizon:
        window_end = min(horizon, window_start + timedelta(days=SEARCH_WINDOW_DAYS))
        for lo, hi in openings(calendar, window_start, window_end):
            span = (hi - lo).total_seconds()
            if span >= left:
                return lo + timedelta(seconds=left)
            left -= span
        window_start = window_end
    return None


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """Targets in business seconds (``None``: the policy does not measure that metric)."""

    first_response_s: int | None = None
    next_response_s: int | None = None
    resolution_s: int | None = None
    warn_before_s: int = 0

    def target(self, metric: SlaMetric) -> int | None:
        return {
            SlaMetric.FIRST_RESPONSE: self.first_response_s,
            SlaMetric.NEXT_RESPONSE: self.next_response_s,
            SlaMetric.RESOLUTION: self.resolution_s,
        }[metric]


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What a policy's conditions look at."""

    project_id: int | None
    queue_id: int | None
    priority: str
    customer_tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    id: int
    position: int
    targets: SlaTargets
    project_ids: frozenset[int] = frozenset()
    queue_ids: frozenset[int] = frozenset()
    priorities: frozenset[str] = frozenset()
    customer_tags: frozenset[str] = frozenset()

    def matches(self, facts: TicketFacts) -> bool:
        return (
            (not self.project_ids or facts.project_id in self.project_ids)
            and (not self.queue_ids or facts.queue_id in self.queue_ids)
            and (not self.priorities or facts.priority in self.priorities)
            and (not self.customer_tags or bool(self.customer_tags & facts.customer_tags))
        )


def choose_policy(policies: Sequence[SlaPolicy], facts: TicketFacts) -> SlaPolicy | None:
    """The first policy (by position, then id) whose conditions all hold; ``None`` if none does."""
    for policy in sorted(policies, key=lambda p: (p.position, p.id)):
        if policy.matches(facts):
            return policy
    return None


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One metric's clock: business seconds counted in earlier runs, the start of the current run
    (``None``: not running), and how it ended. Methods return a new clock."""

    target_s: int
    warn_before_s: int = 0
    counted_s: float = 0.0
    running_since: datetime | None = None
    started: bool = False
    stopped_at: datetime | None = None
    breached: bool = False
    # Which events of the current run were already reported (a restart of the clock clears them).
    warned: bool = False
    breach_reported: bool = False

    # ------------------------------------------------------------------ transitions
    def start(self, at: datetime) -> SlaClock:
        """Start afresh (a next-response clock restarts at every customer reply)."""
        return SlaClock(self.target_s, self.warn_before_s, running_since=at, started=True)

    def pause(self, calendar: BusinessCalendar | None, at: datetime) -> SlaClock:
        if self.running_since is None:
            return self
        counted = self.counted_s + business_seconds(calendar, self.running_since, at)
        return replace(self, counted_s=counted, running_since=None)

    def resume(self, at: datetime) -> SlaClock:
        if not self.started or self.running_since is not None or self.stopped_at is not None:
            return self
        return replace(self, running_since=at)

    def stop(self, calendar: BusinessCalendar | None, at: datetime) -> SlaClock:
        """The target was answered (a reply, a solve): met, or breached if past the deadline."""
        if not self.started or self.stopped_at is not None:
            return self
        paused = self.pause(calendar, at)
        return replace(paused, stopped_at=at, breached=paused.counted_s > self.target_s)

    def reopen(self, at: datetime) -> SlaClock:
        """Resolution goes on from where it stopped when a solved ticket reopens."""
        if not self.started or self.stopped_at is None:
            return self
        return replace(self, stopped_at=None, running_since=at)

    # ------------------------------------------------------------------ reading
    def deadline(self, calendar: BusinessCalendar | None) -> datetime | None:
        """When a running clock breaches (``None`` if not running)."""
        if self.running_since is None:
            return None
        return add_business_seconds(calendar, self.running_since, self.target_s - self.counted_s)

    def warning_at(self, calendar: BusinessCalendar | None) -> datetime | None:
        if self.running_since is None:
            return None
        left = self.target_s - self.counted_s - self.warn_before_s
        return add_business_seconds(calendar, self.running_since, max(0.0, left))

    def remaining_s(self, calendar: BusinessCalendar | None, now: datetime) -> float:
        """Business seconds left before the deadline at ``now`` (negative once breached)."""
        counted = self.counted_s
        if self.running_since is not None:
            counted += business_seconds(calendar, self.running_since, now)
        return self.target_s - counted

    def state(self, calendar: BusinessCalendar | None, now: datetime) -> ClockState:
        if not self.started:
            return ClockState.OFF
        if self.stopped_at is not None:
            return ClockState.BREACHED if self.breached else ClockState.MET
        left = self.remaining_s(calendar, now)
        if left < 0 or (left == 0 and self.running_since is not None):
            return ClockState.BREACHED
        if self.running_since is None:
            return ClockState.PAUSED
        return ClockState.WARNING if left <= self.warn_before_s else ClockState.RUNNING

    # ------------------------------------------------------------------ storage
    def to_json(self) -> dict[str, object]:
        return {
            "target_s": self.target_s,
            "warn_before_s": self.warn_before_s,
            "counted_s": self.counted_s,
            "running_since": None if self.running_since is None else self.running_since.isoformat(),
            "started": self.started,
            "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat(),
            "breached": self.breached,
            "warned": self.warned,
            "breach_reported": self.breach_reported,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SlaClock:
        def instant(value: object) -> datetime | None:
            return None if value is None else datetime.fromisoformat(str(value)).astimezone(UTC)

        return cls(
            target_s=int(str(data["target_s"])),
            warn_before_s=int(str(data.get("warn_before_s", 0))),
            counted_s=float(str(data.get("counted_s", 0.0))),
            running_since=instant(data.get("running_since")),
            started=bool(data.get("started", False)),
            stopped_at=instant(data.get("stopped_at")),
            breached=bool(data.get("breached", False)),
            warned=bool(data.get("warned", False)),
            breach_reported=bool(data.get("breach_reported", False)),
        )


@dataclass(frozen=True, slots=True)
class TicketSla:
    """The clocks of one ticket under its policy, driven by what happens to the ticket."""

    clocks: dict[SlaMetric, SlaClock]

    @classmethod
    def for_new_ticket(cls, targets: SlaTargets, at: datetime) -> TicketSla:
        """First response and resolution start when the ticket is created."""
        clocks: dict[SlaMetric, SlaClock] = {}
        for metric in SlaMetric:
            target = targets.target(metric)
            if target is not None:
                clock = SlaClock(target, targets.warn_before_s)
                clocks[metric] = clock if metric is SlaMetric.NEXT_RESPONSE else clock.start(at)
        return cls(clocks)

    def _with(self, changes: dict[SlaMetric, SlaClock]) -> TicketSla:
        return TicketSla({**self.clocks, **changes})

    def agent_replied(self, calendar: BusinessCalendar | None, at: datetime) -> TicketSla:
        """An agent's reply answers the first response, or the customer's last reply."""
        changes: dict[SlaMetric, SlaClock] = {}
        for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE):
            clock = self.clocks.get(metric)
            if clock is not None:
                changes[metric] = clock.stop(calendar, at)
        return self._with(changes)

    def customer_replied(self, at: datetime) -> TicketSla:
        """After the first response, each customer reply waits for a next response (an earlier
        unanswered reply keeps its clock: the customer waits since then)."""
        first = self.clocks.get(SlaMetric.FIRST_RESPONSE)
        clock = self.clocks.get(SlaMetric.NEXT_RESPONSE)
        if clock is None or (first is not None and first.stopped_at is None):
            return self
        if clock.started and clock.stopped_at is None:
            return self
        return self._with({SlaMetric.NEXT_RESPONSE: clock.start(at)})

    def paused(self, calendar: BusinessCalendar | None, at: datetime) -> TicketSla:
        """Pending on the customer: every running clock stops counting."""
        return TicketSla({m: c.pause(calendar, at) for m, c in self.clocks.items()})

    def resumed(self, at: datetime) -> TicketSla:
        return TicketSla({m: c.resume(at) for m, c in self.clocks.items()})

    def solved(self, calendar: BusinessCalendar | None, at: datetime) -> TicketSla:
        """Solving answers resolution; response clocks still running stop counting (nobody waits)."""
        changes = {m: c.pause(calendar, at) for m, c in self.clocks.items()}
        resolution = self.clocks.get(SlaMetric.RESOLUTION)
        if resolution is not None:
            changes[SlaMetric.RESOLUTION] = resolution.stop(calendar, at)
        return TicketSla(changes)

    def reopened(self, at: datetime) -> TicketSla:
        changes = {m: c.resume(at) for m, c in self.clocks.items()}
        resolution = self.clocks.get(SlaMetric.RESOLUTION)
        if resolution is not None:
            changes[SlaMetric.RESOLUTION] = resolution.reopen(at)
        return TicketSla(changes)

    def retargeted(
        self,
        targets: SlaTargets,
        calendar: BusinessCalendar | None,
        started_at: datetime,
        now: datetime,
        *,
        running: bool,
    ) -> TicketSla:
        """The clocks under another policy's targets, chosen again because the ticket's priority, queue
        or project changed: the business time each clock counted is kept and measured against the new
        target (so a deadline counts from the ticket's start, not from the change); a metric the old
        policy did not measure starts from ``started_at`` (the ticket's creation; ``running``: the
        ticket is open, else its clock waits paused); a metric the new policy does not measure is
        dropped. A warning or breach already reported stays reported while it is still true under
        the new target, and is reported again when the new target brings it later."""
        clocks: dict[SlaMetric, SlaClock] = {}
        for metric in SlaMetric:
            target = targets.target(metric)
            if target is None:
                continue
            old = self.clocks.get(metric)
            if old is None:
                clock = SlaClock(target, targets.warn_before_s)
                if metric is not SlaMetric.NEXT_RESPONSE:
                    clock = clock.start(started_at)
                    if not running:
                        clock = clock.pause(calendar, now)
            elif old.stopped_at is not None:
                clock = replace(
                    old, target_s=target, warn_before_s=targets.warn_before_s, breached=old.counted_s > target
                )
            else:
                clock = replace(old, target_s=target, warn_before_s=targets.warn_before_s)
                left = clock.remaining_s(calendar, now)
                if left > 0:
                    clock = replace(clock, breach_reported=False)
                if left > clock.warn_before_s:
                    clock = replace(clock, warned=False)
            clocks[metric] = clock
        return TicketSla(clocks)

    def next_deadline(self, calendar: BusinessCalendar | None) -> datetime | None:
        """The earliest deadline of the running clocks (what the work list's "time left" shows)."""
        deadlines = [d for c in self.clocks.values() if (d := c.deadline(calendar)) is not None]
        return min(deadlines, default=None)

    def next_warning(self, calendar: BusinessCalendar | None) -> datetime | None:
        warnings = [w for c in self.clocks.values() if (w := c.warning_at(calendar)) is not None]
        return min(warnings, default=None)

    def due_reports(
        self, calendar: BusinessCalendar | None, now: datetime
    ) -> list[tuple[SlaMetric, SlaEvent]]:
        """The warnings and breaches that have happened by ``now`` and were not reported yet (a
        breach found late is reported alone: its warning is moot)."""
        due: list[tuple[SlaMetric, SlaEvent]] = []
        for metric, clock in self.clocks.items():
            if clock.running_since is None:
                continue
            deadline = clock.deadline(calendar)
            if not clock.breach_reported and deadline is not None and deadline <= now:
                due.append((metric, SlaEvent.BREACH))
            elif not clock.warned and not clock.breach_reported:
                warning = clock.warning_at(calendar)
                if warning is not None and warning <= now:
                    due.append((metric, SlaEvent.WARNING))
        return due

    def reported(self, metric: SlaMetric, event: SlaEvent) -> TicketSla:
        clock = self.clocks[metric]
        if event is SlaEvent.BREACH:
            return self._with({metric: replace(clock, warned=True, breach_reported=True)})
        return self._with({metric: replace(clock, warned=True)})

    def next_check(self, calendar: BusinessCalendar | None) -> datetime | None:
        """The next instant at which a warning or breach falls due (the scheduler's wake-up)."""
        instants: list[datetime] = []
        for clock in self.clocks.values():
            if clock.running_since is None or clock.breach_reported:
                continue
            moment = clock.deadline(calendar) if clock.warned else clock.warning_at(calendar)
            if moment is not None:
                instants.append(moment)
        return min(instants, default=None)

    def to_json(self) -> dict[str, object]:
        return {m.value: c.to_json() for m, c in self.clocks.items()}

    @classmethod
    def from_json(cls, data: dict[str, dict[str, object]]) -> TicketSla:
        return cls({SlaMetric(m): SlaClock.from_json(c) for m, c in data.items()})
