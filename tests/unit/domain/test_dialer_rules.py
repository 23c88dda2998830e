"""The dialler's retry rules, calling windows in local time and the 72-hour rule (fake time)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.dialer import (
    DEFAULT_RETRY_RULES,
    NO_REDIAL_AFTER_ABANDON_S,
    AbandonGuard,
    CallingWindow,
    CallOutcome,
    DialerError,
    DialMode,
    RetryPolicy,
    RetryRule,
    UnknownTimeZone,
    local_zone_for,
    may_call_at,
    next_window_start,
    zones_of,
)

HOUR = 3600.0
WEEKDAYS_9_TO_20 = [CallingWindow.parse("mon-fri 09:00-20:00")]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- retries -----------------------------------------------------------------------------------------


def test_a_busy_number_is_retried_after_the_rules_delay_until_its_attempts_run_out() -> None:
    policy = RetryPolicy([RetryRule(CallOutcome.BUSY, after_s=600.0, max_attempts=3)])
    assert policy.next_attempt(CallOutcome.BUSY, attempts=1, now=1000.0) == 1600.0
    assert policy.next_attempt(CallOutcome.BUSY, attempts=2, now=5000.0) == 5600.0
    assert policy.next_attempt(CallOutcome.BUSY, attempts=3, now=9000.0) is None


def test_an_outcome_without_a_rule_is_final() -> None:
    policy = RetryPolicy([RetryRule(CallOutcome.BUSY, after_s=600.0, max_attempts=3)])
    assert policy.next_attempt(CallOutcome.NO_ANSWER, attempts=1, now=0.0) is None
    assert policy.next_attempt(CallOutcome.ANSWERED, attempts=1, now=0.0) is None


def test_answered_and_do_not_call_outcomes_take_no_retry_rule() -> None:
    for outcome in (CallOutcome.ANSWERED, CallOutcome.REJECTED_DNC):
        with pytest.raises(DialerError):
            RetryRule(outcome, after_s=60.0, max_attempts=2)


def test_an_abandoned_call_cannot_be_retried_within_72_hours_by_a_rule() -> None:
    with pytest.raises(DialerError, match="72 hours"):
        RetryRule(CallOutcome.ABANDONED, after_s=71 * HOUR, max_attempts=2)
    rule = RetryRule(CallOutcome.ABANDONED, after_s=72 * HOUR, max_attempts=2)
    assert RetryPolicy([rule]).next_attempt(CallOutcome.ABANDONED, 1, 0.0) == 72 * HOUR


def test_two_rules_for_one_outcome_are_refused() -> None:
    with pytest.raises(DialerError, match="two retry rules"):
        RetryPolicy([RetryRule(CallOutcome.BUSY, 60.0, 2), RetryRule(CallOutcome.BUSY, 120.0, 3)])


def test_attempts_count_the_attempt_that_just_ended() -> None:
    with pytest.raises(DialerError):
        RetryPolicy().next_attempt(CallOutcome.BUSY, attempts=0, now=0.0)


def test_the_default_rules_retry_every_unreached_outcome_and_respect_72_hours() -> None:
    policy = RetryPolicy(DEFAULT_RETRY_RULES)
    for outcome in (CallOutcome.BUSY, CallOutcome.NO_ANSWER, CallOutcome.VOICEMAIL, CallOutcome.FAILED):
        assert policy.next_attempt(outcome, 1, 0.0) is not None
    retry = policy.next_attempt(CallOutcome.ABANDONED, 1, 0.0)
    assert retry is not None and retry >= NO_REDIAL_AFTER_ABANDON_S


# --- calling windows ---------------------------------------------------------------------------------


def test_a_new_york_number_is_called_in_new_york_hours_not_the_servers() -> None:
    zone = local_zone_for("+12125550123")
    assert zone == "America/New_York"
    # Monday 7 December 2026, 13:59 UTC = 08:59 EST: too early; 14:00 UTC = 09:00 EST.
    assert not may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 7, 13, 59))
    assert may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 7, 14, 0))
    assert may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 8, 0, 59))  # 19:59 EST
    assert not may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 8, 1, 0))  # 20:00 EST: closed


def test_the_next_window_start_is_the_contacts_local_nine_oclock() -> None:
    start = next_window_start(WEEKDAYS_9_TO_20, "America/New_York", utc(2026, 12, 7, 12, 0))
    assert start == utc(2026, 12, 7, 14, 0).timestamp()


def test_inside_a_window_the_next_start_is_now() -> None:
    now = utc(2026, 12, 7, 15, 30).timestamp()
    assert next_window_start(WEEKDAYS_9_TO_20, "America/New_York", now) == now


def test_friday_evening_waits_for_monday_morning() -> None:
    # Friday 11 December 2026 21:00 Moscow (18:00 UTC): next is Monday 14th 09:00 Moscow (06:00 UTC).
    start = next_window_start(WEEKDAYS_9_TO_20, "Europe/Moscow", utc(2026, 12, 11, 18, 0))
    assert start == utc(2026, 12, 14, 6, 0).timestamp()


def test_windows_follow_daylight_saving_time() -> None:
    windows = [CallingWindow.parse("mon-sun 09:00-20:00")]
    # London: 09:00 is 09:00 UTC in winter and 08:00 UTC in summer.
    assert (
        next_window_start(windows, "Europe/London", utc(2026, 1, 5, 0, 0)) == utc(2026, 1, 5, 9).timestamp()
    )
    assert (
        next_window_start(windows, "Europe/London", utc(2026, 7, 6, 0, 0)) == utc(2026, 7, 6, 8).timestamp()
    )


def test_a_number_that_may_be_in_several_zones_is_called_only_when_all_of_them_allow_it() -> None:
    zone = local_zone_for("+19075550100")  # Alaska: Anchorage (UTC-9) or Adak (UTC-10)
    assert zones_of(zone) == ("America/Adak", "America/Anchorage")
    # 09:00 in Anchorage is 08:00 in Adak: not yet.
    assert not may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 7, 18, 0))
    # 09:00 in Adak (19:00 UTC); 19:30 in Anchorage is still inside, 20:00 Anchorage (05:00 UTC) closes.
    assert (
        next_window_start(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 7, 18, 0)) == utc(2026, 12, 7, 19).timestamp()
    )
    assert may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 8, 4, 59))
    assert not may_call_at(WEEKDAYS_9_TO_20, zone, utc(2026, 12, 8, 5, 0))


def test_windows_that_never_overlap_in_all_zones_have_no_next_start() -> None:
    windows = [CallingWindow.parse("mon-sun 09:00-10:00")]
    assert next_window_start(windows, "Europe/London Asia/Tokyo", utc(2026, 12, 7, 0)) is None


def test_a_number_without_a_known_zone_takes_the_default_or_is_refused() -> None:
    assert local_zone_for("+15551234567", default="Europe/Moscow") == "Europe/Moscow"
    with pytest.raises(UnknownTimeZone):
        local_zone_for("+15551234567")
    with pytest.raises(UnknownTimeZone):
        local_zone_for("not a number")


def test_an_unknown_zone_name_is_refused() -> None:
    with pytest.raises(UnknownTimeZone):
        may_call_at(WEEKDAYS_9_TO_20, "Mars/Olympus_Mons", 0.0)


def test_windows_parse_weekday_ranges_lists_and_wrap_round_the_week() -> None:
    assert CallingWindow.parse("mon-fri 09:00-20:00").weekdays == frozenset(range(5))
    assert CallingWindow.parse("sat,sun 10:00-14:00").weekdays == frozenset({5, 6})
    assert CallingWindow.parse("fri-mon 10:00-14:00").weekdays == frozenset({4, 5, 6, 0})
    window = CallingWindow.parse("tue 08:30-21:00")
    assert (window.start, window.end) == (time(8, 30), time(21, 0))
    for bad in ("mon-fri", "xyz 09:00-10:00", "mon 10:00-09:00", "mon 25:00-26:00"):
        with pytest.raises(DialerError):
            CallingWindow.parse(bad)


def test_overlapping_windows_join() -> None:
    windows = [CallingWindow.parse("mon 09:00-13:00"), CallingWindow.parse("mon-fri 12:00-18:00")]
    assert may_call_at(windows, "UTC", utc(2026, 12, 7, 12, 30))
    assert next_window_start(windows, "UTC", utc(2026, 12, 7, 8)) == utc(2026, 12, 7, 9).timestamp()


def test_no_windows_means_never() -> None:
    assert not may_call_at([], "UTC", utc(2026, 12, 7, 12))
    assert next_window_start([], "UTC", utc(2026, 12, 7, 12)) is None


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 60),
    zone=st.sampled_from(["UTC", "Europe/Moscow", "America/New_York", "Europe/London America/Chicago"]),
)
def test_the_next_window_start_is_callable_and_nothing_before_it_is(minutes: int, zone: str) -> None:
    now = utc(2026, 1, 1) + timedelta(minutes=minutes)
    start = next_window_start(WEEKDAYS_9_TO_20, zone, now)
    assert start is not None
    assert start >= now.timestamp()
    assert may_call_at(WEEKDAYS_9_TO_20, zone, start)
    # Sample the gap before it: every minute of it is closed.
    probe = now.timestamp()
    while probe < start:
        assert not may_call_at(WEEKDAYS_9_TO_20, zone, probe)
        probe += 900.0


# --- the 72-hour rule --------------------------------------------------------------------------------


def test_an_abandoned_number_is_not_redialled_for_72_hours_by_the_predictive_dialler() -> None:
    guard = AbandonGuard()
    guard.record_abandoned("+447911123456", at=1000.0)
    later = 1000.0 + 71.9 * HOUR
    assert not guard.may_dial("+447911123456", later, DialMode.PREDICTIVE)
    assert not guard.may_dial("+447911123456", later, DialMode.NOTIFICATION)
    assert guard.blocked_until("+447911123456", later) == 1000.0 + 72 * HOUR
    assert guard.may_dial("+447911123456", 1000.0 + 72 * HOUR, DialMode.PREDICTIVE)
    assert guard.may_dial("+447900000000", later, DialMode.PREDICTIVE)


def test_within_72_hours_a_reserved_agent_may_call_the_number() -> None:
    guard = AbandonGuard()
    guard.record_abandoned("+447911123456", at=0.0)
    assert guard.may_dial("+447911123456", HOUR, DialMode.PREVIEW)
    assert guard.may_dial("+447911123456", HOUR, DialMode.PROGRESSIVE, agent_reserved=True)
    assert not guard.may_dial("+447911123456", HOUR, DialMode.PROGRESSIVE)
    assert not guard.may_dial("+447911123456", HOUR, DialMode.PREDICTIVE, agent_reserved=True)


def test_a_later_abandon_extends_the_block_and_expired_numbers_are_forgotten() -> None:
    guard = AbandonGuard()
    guard.record_abandoned("+1", at=0.0)
    guard.record_abandoned("+1", at=10 * HOUR)
    guard.record_abandoned("+1", at=5 * HOUR)  # out of order: the latest counts
    assert guard.blocked_until("+1", 0.0) == 82 * HOUR
    guard.record_abandoned("+2", at=0.0)
    assert guard.forget_expired(72 * HOUR) == 1
    assert len(guard) == 1


def test_the_no_redial_period_cannot_be_shortened() -> None:
    with pytest.raises(DialerError):
        AbandonGuard(no_redial_s=3600.0)
