"""SLA clocks on business-hours calendars: deadlines across closing times, lunch breaks, weekends,
holidays and time zones; pauses while pending; policies chosen by conditions. Time is passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.calendars import BusinessCalendar
from frontoffice.domain.sla import (
    ClockState,
    SlaClock,
    SlaEvent,
    SlaMetric,
    SlaPolicy,
    SlaTargets,
    TicketFacts,
    TicketSla,
    add_business_seconds,
    business_seconds,
    choose_policy,
)

MOSCOW = ZoneInfo("Europe/Moscow")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600


def office(zone: str = "Europe/Moscow", **kwargs: object) -> BusinessCalendar:
    """Monday to Friday, 09:00-13:00 and 14:00-18:00 (a lunch break), in ``zone``."""
    weekly = {d: ["09:00-13:00", "14:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return BusinessCalendar.from_definition(zone, weekly, **kwargs)  # type: ignore[arg-type]


def at(day: date, hh: int, mm: int = 0, zone: ZoneInfo = MOSCOW) -> datetime:
    return datetime.combine(day, time(hh, mm), zone)


FRIDAY = date(2026, 12, 4)
MONDAY = date(2026, 12, 7)


def test_a_deadline_skips_the_lunch_break() -> None:
    assert add_business_seconds(office(), at(MONDAY, 12), 2 * HOUR) == at(MONDAY, 15)


def test_a_ticket_opened_on_friday_evening_is_due_on_monday_morning() -> None:
    assert add_business_seconds(office(), at(FRIDAY, 17), 2 * HOUR) == at(MONDAY, 10)


def test_a_ticket_opened_at_night_starts_counting_at_opening_time() -> None:
    assert add_business_seconds(office(), at(MONDAY, 3), HOUR) == at(MONDAY, 10)


def test_a_holiday_moves_the_deadline_to_the_next_working_day() -> None:
    cal = office(holidays=[MONDAY])
    assert add_business_seconds(cal, at(FRIDAY, 17), 2 * HOUR) == at(MONDAY + timedelta(days=1), 10)


def test_the_same_target_lands_on_the_calendars_own_wall_clock_in_another_time_zone() -> None:
    # 17:00 in New York on Friday with two business hours: one hour on Friday, one on Monday.
    cal = office("America/New_York")
    deadline = add_business_seconds(cal, at(FRIDAY, 17, zone=NEW_YORK), 2 * HOUR)
    assert deadline == at(MONDAY, 10, zone=NEW_YORK)
    assert deadline is not None and deadline.astimezone(MOSCOW) == at(MONDAY, 18)


def test_without_a_calendar_a_clock_counts_around_the_clock() -> None:
    start = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    assert add_business_seconds(None, start, 2 * HOUR) == start + timedelta(hours=2)
    assert business_seconds(None, start, start + timedelta(hours=2)) == 2 * HOUR


def test_a_calendar_that_never_opens_has_no_deadline() -> None:
    closed = BusinessCalendar.from_definition("UTC", {})
    assert add_business_seconds(closed, at(MONDAY, 9), HOUR) is None


def test_pending_pauses_the_clock_and_it_resumes_where_it_stopped() -> None:
    cal = office()
    clock = SlaClock(target_s=4 * HOUR).start(at(MONDAY, 9))
    clock = clock.pause(cal, at(MONDAY, 11))  # two business hours counted
    assert clock.state(cal, at(MONDAY, 17)) is ClockState.PAUSED
    assert clock.deadline(cal) is None
    clock = clock.resume(at(MONDAY + timedelta(days=1), 16))  # Tuesday 16:00; two hours left
    assert clock.deadline(cal) == at(MONDAY + timedelta(days=1), 18)  # the last two hours of Tuesday


def test_a_clock_warns_before_its_deadline_and_breaches_at_it() -> None:
    cal = office()
    clock = SlaClock(target_s=2 * HOUR, warn_before_s=30 * 60).start(at(MONDAY, 9))
    assert clock.warning_at(cal) == at(MONDAY, 10, 30)
    assert clock.state(cal, at(MONDAY, 10, 29)) is ClockState.RUNNING
    assert clock.state(cal, at(MONDAY, 10, 30)) is ClockState.WARNING
    assert clock.state(cal, at(MONDAY, 11)) is ClockState.BREACHED
    assert clock.stop(cal, at(MONDAY, 10, 59)).state(cal, at(MONDAY, 12)) is ClockState.MET
    assert clock.stop(cal, at(MONDAY, 11, 1)).state(cal, at(MONDAY, 12)) is ClockState.BREACHED


def test_time_outside_business_hours_does_not_count_against_the_target() -> None:
    cal = office()
    clock = SlaClock(target_s=HOUR).start(at(FRIDAY, 17, 30))
    # Answered on Monday at 09:29: 30 minutes on Friday plus 29 on Monday.
    stopped = clock.stop(cal, at(MONDAY, 9, 29))
    assert stopped.counted_s == 59 * 60 and not stopped.breached


def test_a_ticket_gets_first_response_then_next_response_after_the_customer_writes_again() -> None:
    cal = office()
    sla = TicketSla.for_new_ticket(SlaTargets(HOUR, 2 * HOUR, 8 * HOUR), at(MONDAY, 9))
    assert sla.next_deadline(cal) == at(MONDAY, 10)
    sla = sla.customer_replied(at(MONDAY, 9, 30))  # before the first response: no next-response clock
    assert not sla.clocks[SlaMetric.NEXT_RESPONSE].started
    sla = sla.agent_replied(cal, at(MONDAY, 9, 45))
    assert sla.clocks[SlaMetric.FIRST_RESPONSE].state(cal, at(MONDAY, 12)) is ClockState.MET
    assert sla.next_deadline(cal) == at(MONDAY, 18)  # resolution
    sla = sla.customer_replied(at(MONDAY, 12))
    assert sla.next_deadline(cal) == at(MONDAY, 15)  # two business hours across lunch
    sla = sla.paused(cal, at(MONDAY, 12, 30))
    assert sla.next_deadline(cal) is None
    sla = sla.resumed(at(MONDAY, 16))
    assert sla.next_deadline(cal) == at(MONDAY, 17, 30)  # the reply waited 30 minutes before
    sla = sla.solved(cal, at(MONDAY, 17))
    assert sla.next_deadline(cal) is None
    assert sla.clocks[SlaMetric.RESOLUTION].state(cal, at(MONDAY, 17)) is ClockState.MET
    reopened = TicketSla.from_json(sla.to_json()).reopened(at(MONDAY + timedelta(days=1), 9))
    assert reopened.clocks[SlaMetric.RESOLUTION].state(cal, at(MONDAY, 17)) is not ClockState.MET


def test_the_first_matching_policy_by_position_applies() -> None:
    vip = SlaPolicy(1, 1, SlaTargets(first_response_s=HOUR), customer_tags=frozenset({"vip"}))
    urgent_a = SlaPolicy(
        2,
        2,
        SlaTargets(first_response_s=2 * HOUR),
        priorities=frozenset({"urgent"}),
        project_ids=frozenset({7}),
    )
    default = SlaPolicy(3, 9, SlaTargets(first_response_s=8 * HOUR))
    policies = [default, urgent_a, vip]
    assert choose_policy(policies, TicketFacts(7, None, "urgent", frozenset({"vip"}))) is vip
    assert choose_policy(policies, TicketFacts(7, None, "urgent")) is urgent_a
    assert choose_policy(policies, TicketFacts(8, None, "urgent")) is default
    assert choose_policy([urgent_a], TicketFacts(8, None, "urgent")) is None


# ---------------------------------------------------------------------- properties
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
targets = st.integers(min_value=1, max_value=60 * HOUR)
zones = st.sampled_from(["Europe/Moscow", "America/New_York", "Asia/Kolkata", "UTC"])


@settings(max_examples=60, deadline=None)
@given(start=instants, seconds=targets, zone=zones)
def test_the_business_time_up_to_a_deadline_is_the_target(start: datetime, seconds: int, zone: str) -> None:
    cal = office(zone, holidays=["2026-12-31", "2027-01-01"])
    deadline = add_business_seconds(cal, start, seconds)
    assert deadline is not None and deadline > start
    assert abs(business_seconds(cal, start, deadline) - seconds) < 1e-6


@settings(max_examples=60, deadline=None)
@given(
    start=instants,
    pauses=st.lists(st.integers(min_value=1, max_value=50 * HOUR), max_size=6),
    seconds=targets,
)
def test_pausing_and_resuming_never_changes_the_business_time_counted(
    start: datetime, pauses: list[int], seconds: int
) -> None:
    """A clock paused and resumed any number of times counts exactly the business time it ran."""
    cal = office()
    clock = SlaClock(target_s=seconds).start(start)
    now, ran = start, 0.0
    for n, gap in enumerate(pauses):
        later = now + timedelta(seconds=gap)
        if n % 2 == 0:  # running during this gap
            ran += business_seconds(cal, now, later)
            clock = clock.pause(cal, later)
        else:
            clock = clock.resume(later)
        now = later
    assert abs(clock.remaining_s(cal, now) - (seconds - ran)) < 1e-6


@settings(max_examples=60, deadline=None)
@given(start=instants, seconds=targets, answer=st.integers(min_value=0, max_value=120 * HOUR))
def test_a_clock_is_breached_exactly_when_it_stops_after_its_deadline(
    start: datetime, seconds: int, answer: int
) -> None:
    cal = office()
    clock = SlaClock(target_s=seconds).start(start)
    deadline = clock.deadline(cal)
    assert deadline is not None
    stopped_at = start + timedelta(seconds=answer)
    assert clock.stop(cal, stopped_at).breached == (business_seconds(cal, start, stopped_at) > seconds)
    assert (clock.state(cal, stopped_at) is ClockState.BREACHED) == (stopped_at >= deadline)


def test_each_warning_and_breach_is_reported_once_and_a_restarted_clock_reports_again() -> None:
    cal = office()
    sla = TicketSla.for_new_ticket(SlaTargets(HOUR, HOUR, None, warn_before_s=15 * 60), at(MONDAY, 9))
    assert sla.next_check(cal) == at(MONDAY, 9, 45)
    assert sla.due_reports(cal, at(MONDAY, 9, 44)) == []
    assert sla.due_reports(cal, at(MONDAY, 9, 50)) == [(SlaMetric.FIRST_RESPONSE, SlaEvent.WARNING)]
    sla = sla.reported(SlaMetric.FIRST_RESPONSE, SlaEvent.WARNING)
    assert sla.due_reports(cal, at(MONDAY, 9, 50)) == []
    assert sla.next_check(cal) == at(MONDAY, 10)
    sla = sla.reported(SlaMetric.FIRST_RESPONSE, SlaEvent.BREACH)
    assert sla.next_check(cal) is None and sla.due_reports(cal, at(MONDAY, 17)) == []
    # Answered late; the customer writes again; the next-response clock warns and breaches anew.
    sla = sla.agent_replied(cal, at(MONDAY, 11)).customer_replied(at(MONDAY, 11))
    assert sla.due_reports(cal, at(MONDAY, 15)) == [(SlaMetric.NEXT_RESPONSE, SlaEvent.BREACH)]


def test_a_policy_chosen_again_keeps_the_business_time_counted_and_counts_from_the_start() -> None:
    cal = office()
    monday = date(2026, 12, 7)
    start = at(monday, 17)  # 17:00 Monday: one business hour left that day
    sla = TicketSla.for_new_ticket(SlaTargets(first_response_s=8 * HOUR, resolution_s=40 * HOUR), start)
    now = at(monday + timedelta(days=1), 10)  # Tuesday 10:00: two business hours have passed
    urgent = SlaTargets(first_response_s=HOUR, next_response_s=HOUR, warn_before_s=600)
    again = sla.retargeted(urgent, cal, start, now, running=True)
    first = again.clocks[SlaMetric.FIRST_RESPONSE]
    # The new target counts from the ticket's start: an hour after 17:00 Monday, breached already.
    assert first.deadline(cal) == at(monday, 18)
    assert first.state(cal, now) is ClockState.BREACHED
    # Resolution is not measured by the new policy; next response waits for a customer's reply.
    assert set(again.clocks) == {SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE}
    assert not again.clocks[SlaMetric.NEXT_RESPONSE].started
    # A breach reported under the old target stays reported while still true; a later target clears it.
    reported = sla.reported(SlaMetric.FIRST_RESPONSE, SlaEvent.BREACH)
    assert reported.retargeted(urgent, cal, start, now, running=True).due_reports(cal, now) == []
    relaxed = SlaTargets(first_response_s=24 * HOUR)
    cleared = reported.retargeted(relaxed, cal, start, now, running=True)
    assert not cleared.clocks[SlaMetric.FIRST_RESPONSE].breach_reported
    # A metric the old policy lacked starts from the ticket's start; paused when the ticket is pending.
    paused = TicketSla({}).retargeted(SlaTargets(resolution_s=4 * HOUR), cal, start, now, running=False)
    clock = paused.clocks[SlaMetric.RESOLUTION]
    assert clock.running_since is None and clock.counted_s == 2 * HOUR
