"""The pacer: how many calls each dialling mode places, the abandon-rate cap and its controller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.dialer import (
    CallOutcome,
    DialerError,
    DialMode,
    Pacer,
    PacingSettings,
    PacingSnapshot,
)


def pacer(mode: DialMode, **kwargs: object) -> Pacer:
    return Pacer(PacingSettings(mode=mode, **kwargs))  # type: ignore[arg-type]


def answered_calls(p: Pacer, now: float, count: int, abandoned: int = 0) -> None:
    for i in range(count):
        p.observe_answered(now, abandoned=i < abandoned)


def warmed(mode: DialMode, **kwargs: object) -> Pacer:
    """A pacer whose day has 2,000 live answers and its last hour 200, none abandoned: room enough
    for the cap's guards (a new day is dialled progressively until it can absorb an abandon, and
    with little room it dials ahead only where a cluster of answers could not take the day over)."""
    p = pacer(mode, **kwargs)
    p.restore_day(answered=1800, abandoned=0)
    answered_calls(p, 0.0, 200)
    return p


# --- the modes ---------------------------------------------------------------------------------------


def test_preview_places_no_call_agents_dial_themselves() -> None:
    assert pacer(DialMode.PREVIEW).calls_to_place(PacingSnapshot(0.0, agents_ready=10)) == 0


def test_progressive_places_one_call_per_free_agent_not_already_covered() -> None:
    p = pacer(DialMode.PROGRESSIVE)
    assert p.calls_to_place(PacingSnapshot(0.0, agents_ready=5)) == 5
    assert p.calls_to_place(PacingSnapshot(1.0, agents_ready=5, calls_in_progress=2, answered_waiting=1)) == 2
    assert p.calls_to_place(PacingSnapshot(2.0, agents_ready=2, calls_in_progress=4)) == 0


def test_progressive_places_nothing_without_free_agents_however_many_are_busy() -> None:
    p = pacer(DialMode.PROGRESSIVE)
    assert p.calls_to_place(PacingSnapshot(0.0, agents_ready=0, agents_busy=[1.0] * 20)) == 0


def test_predictive_dials_ahead_of_free_agents_by_the_answer_rate() -> None:
    p = warmed(DialMode.PREDICTIVE, answer_rate=0.25)
    n = p.calls_to_place(PacingSnapshot(0.0, agents_ready=20))
    assert 20 < n <= 80  # about 20 / 0.25 less a safety margin


def test_predictive_counts_agents_about_to_finish_their_wrap_up() -> None:
    p = warmed(DialMode.PREDICTIVE, answer_rate=0.25, ring_s=20.0)
    idle = p.calls_to_place(PacingSnapshot(0.0, agents_ready=0, agents_busy=[30.0] * 10))
    finishing = p.calls_to_place(PacingSnapshot(1.0, agents_ready=0, agents_busy=[5.0] * 10))
    assert idle < finishing
    assert finishing > 10


def test_predictive_places_nothing_when_no_agent_is_logged_in() -> None:
    assert pacer(DialMode.PREDICTIVE).calls_to_place(PacingSnapshot(0.0)) == 0


def test_predictive_dials_more_when_fewer_calls_are_answered() -> None:
    low, high = warmed(DialMode.PREDICTIVE), warmed(DialMode.PREDICTIVE)
    for i in range(400):
        low.observe_attempt(float(i), CallOutcome.ANSWERED if i % 10 == 0 else CallOutcome.NO_ANSWER, 20.0)
        high.observe_attempt(float(i), CallOutcome.ANSWERED if i % 2 == 0 else CallOutcome.NO_ANSWER, 20.0)
    snapshot = PacingSnapshot(500.0, agents_ready=10)
    assert low.calls_to_place(snapshot) > high.calls_to_place(snapshot)
    assert low.stats().answer_rate == pytest.approx(0.1, abs=0.03)


def test_predictive_counts_calls_already_ringing_and_answered_calls_waiting() -> None:
    p = warmed(DialMode.PREDICTIVE)
    fresh = p.calls_to_place(PacingSnapshot(0.0, agents_ready=10))
    assert p.calls_to_place(PacingSnapshot(1.0, agents_ready=10, calls_in_progress=fresh)) <= 2
    assert p.calls_to_place(PacingSnapshot(2.0, agents_ready=10, answered_waiting=10)) == 0


def test_a_bursts_fast_busy_signals_do_not_read_as_a_low_answer_rate() -> None:
    p = warmed(DialMode.PREDICTIVE, answer_rate=0.25, ring_timeout_s=30.0)
    # 100 calls placed at t=10: 40 busy signals come back within 3 s, the rest still ring.
    for _ in range(40):
        p.observe_attempt(13.0, CallOutcome.BUSY, 3.0)
    assert p.stats().answer_rate == pytest.approx(0.25)
    # Once the burst's other calls have had the time to end, their outcomes count, in order.
    for _ in range(25):
        p.observe_attempt(30.0, CallOutcome.ANSWERED, 20.0)
    for _ in range(35):
        p.observe_attempt(40.0, CallOutcome.NO_ANSWER, 30.0)
    p.calls_to_place(PacingSnapshot(41.0))
    assert p.stats().answer_rate == pytest.approx((20 * 0.25 + 25) / 120, abs=0.01)


def test_calls_that_have_rung_long_count_for_fewer_answers_than_fresh_ones() -> None:
    p = warmed(DialMode.PREDICTIVE, ring_timeout_s=40.0)
    now = 0.0
    for i in range(200):  # answered after ~20 s, the others ring out at 40 s
        now += 1.0
        if i % 4 == 0:
            p.observe_attempt(now, CallOutcome.ANSWERED, 15.0 + i % 10)
        else:
            p.observe_attempt(now, CallOutcome.NO_ANSWER, 40.0)
    now += 60.0
    fresh = p.calls_to_place(PacingSnapshot(now, agents_ready=10, calls_ringing_s=[1.0] * 20))
    old = p.calls_to_place(PacingSnapshot(now + 1.0, agents_ready=10, calls_ringing_s=[35.0] * 20))
    assert old > fresh


def test_ringing_ages_must_match_the_calls_in_progress() -> None:
    assert PacingSnapshot(0.0, calls_ringing_s=[1.0, 2.0]).calls_in_progress == 2
    with pytest.raises(DialerError):
        PacingSnapshot(0.0, calls_in_progress=3, calls_ringing_s=[1.0])


def test_notification_fills_the_lines_without_agents() -> None:
    p = pacer(DialMode.NOTIFICATION, max_concurrent_calls=30)
    assert p.calls_to_place(PacingSnapshot(0.0)) == 30
    assert (
        p.calls_to_place(PacingSnapshot(1.0, calls_in_progress=10, answered_waiting=2, calls_connected=8))
        == 10
    )
    assert p.calls_to_place(PacingSnapshot(2.0, trunk_free=4)) == 4


def test_a_notification_campaign_needs_a_line_limit() -> None:
    with pytest.raises(DialerError, match="max_concurrent_calls"):
        PacingSettings(mode=DialMode.NOTIFICATION)


def test_no_mode_places_more_calls_than_the_trunk_has_free_lines() -> None:
    for mode in (DialMode.PROGRESSIVE, DialMode.PREDICTIVE):
        assert pacer(mode).calls_to_place(PacingSnapshot(0.0, agents_ready=50, trunk_free=3)) == 3
        assert pacer(mode).calls_to_place(PacingSnapshot(0.0, agents_ready=50, trunk_free=0)) == 0


def test_the_campaigns_own_limit_counts_every_call_on_the_line() -> None:
    p = warmed(DialMode.PREDICTIVE, max_concurrent_calls=40)
    snapshot = PacingSnapshot(
        0.0, agents_ready=30, calls_in_progress=5, answered_waiting=1, calls_connected=30
    )
    assert p.calls_to_place(snapshot) <= 4


# --- the cap -----------------------------------------------------------------------------------------


def test_reaching_the_cap_over_the_day_drops_predictive_to_progressive_until_back_under() -> None:
    p = pacer(DialMode.PREDICTIVE, rolling_window_s=60.0)
    answered_calls(p, 0.0, 194)
    answered_calls(p, 0.0, 6, abandoned=6)  # 6 of 200: 3 %
    p.calls_to_place(PacingSnapshot(100.0))  # the rolling window has passed; the day has not
    assert p.effective_mode is DialMode.PROGRESSIVE
    assert p.calls_to_place(PacingSnapshot(101.0, agents_ready=5)) == 5  # one per free agent
    # Predictive again once one more abandon would keep the day within 3 %: 7 of 234.
    answered_calls(p, 102.0, 32)
    assert p.effective_mode is DialMode.PROGRESSIVE  # 7 of 233 would be 3.004 %
    answered_calls(p, 102.0, 1)
    assert p.effective_mode is DialMode.PREDICTIVE


def test_a_new_day_dials_progressively_until_it_can_absorb_an_abandon() -> None:
    p = pacer(DialMode.PREDICTIVE)
    assert p.effective_mode is DialMode.PROGRESSIVE
    assert p.calls_to_place(PacingSnapshot(0.0, agents_ready=10)) == 10
    answered_calls(p, 1.0, 32)  # one abandon would make 1 of 33: 3.03 %
    assert p.effective_mode is DialMode.PROGRESSIVE
    answered_calls(p, 1.0, 1)  # 1 of 34: 2.9 %
    assert p.effective_mode is DialMode.PREDICTIVE


def test_reaching_the_cap_in_the_rolling_window_drops_to_progressive_even_if_the_day_is_fine() -> None:
    p = pacer(DialMode.PREDICTIVE, rolling_window_s=600.0)
    answered_calls(p, 0.0, 1000)
    answered_calls(p, 1000.0, 20, abandoned=1)  # day 0.1 %, window 5 %
    assert p.stats().abandon_rate_today < 0.03
    assert p.effective_mode is DialMode.PROGRESSIVE
    p.calls_to_place(PacingSnapshot(1600.0, agents_ready=1))  # the window has passed
    assert p.effective_mode is DialMode.PREDICTIVE


def test_a_lower_cap_is_allowed_a_higher_one_is_not() -> None:
    assert PacingSettings(abandon_cap=0.01).abandon_cap == 0.01
    with pytest.raises(DialerError, match="may not exceed"):
        PacingSettings(abandon_cap=0.05)


def test_a_new_day_starts_the_days_count_again_and_a_restart_restores_it() -> None:
    p = pacer(DialMode.PREDICTIVE, rolling_window_s=10.0)
    answered_calls(p, 0.0, 100, abandoned=5)
    p.calls_to_place(PacingSnapshot(20.0))  # the rolling window is empty again
    assert p.effective_mode is DialMode.PROGRESSIVE  # the day is not
    p.start_day()
    assert p.stats().answered_today == 0
    answered_calls(p, 30.0, 33)
    assert p.effective_mode is DialMode.PREDICTIVE
    p.restore_day(answered=100, abandoned=3)
    assert p.effective_mode is DialMode.PROGRESSIVE
    assert p.stats().abandon_rate_today == pytest.approx(0.03)


def test_abandons_make_the_controller_dial_less_ahead() -> None:
    calm, burnt = warmed(DialMode.PREDICTIVE), warmed(DialMode.PREDICTIVE)
    answered_calls(calm, 1.0, 3)
    answered_calls(burnt, 1.0, 3, abandoned=3)  # 3 of 2,003: well under the cap
    assert burnt.effective_mode is DialMode.PREDICTIVE
    assert burnt.stats().safety_z > calm.stats().safety_z
    snapshot = PacingSnapshot(2.0, agents_ready=20)
    assert burnt.calls_to_place(snapshot) < calm.calls_to_place(snapshot)


def test_close_to_the_cap_the_pacer_dials_less_ahead_than_the_controller_alone_would() -> None:
    near, far = pacer(DialMode.PREDICTIVE, initial_z=0.5), pacer(DialMode.PREDICTIVE, initial_z=0.5)
    near.restore_day(answered=200, abandoned=5)  # room for one more abandon today
    far.restore_day(answered=200, abandoned=0)
    assert near.effective_mode is DialMode.PREDICTIVE
    snapshot = PacingSnapshot(0.0, agents_ready=40)
    assert 40 < near.calls_to_place(snapshot) < far.calls_to_place(snapshot)


def test_time_may_not_go_backwards() -> None:
    p = pacer(DialMode.PROGRESSIVE)
    p.calls_to_place(PacingSnapshot(10.0))
    with pytest.raises(DialerError, match="backwards"):
        p.observe_answered(9.0, abandoned=False)


def test_snapshots_with_negative_counts_are_refused() -> None:
    with pytest.raises(DialerError):
        PacingSnapshot(0.0, agents_ready=-1)
    with pytest.raises(DialerError):
        PacingSnapshot(0.0, agents_busy=[-5.0])


def test_calls_never_dialled_do_not_count_towards_the_answer_rate() -> None:
    p = pacer(DialMode.PREDICTIVE, answer_rate=0.5)
    for i in range(100):
        p.observe_attempt(float(i), CallOutcome.REJECTED_DNC, 0.0)
    assert p.stats().answer_rate == 0.5


# --- properties --------------------------------------------------------------------------------------

_outcomes = st.sampled_from(list(CallOutcome))
_history = st.lists(
    st.tuples(_outcomes, st.floats(0.0, 60.0), st.booleans(), st.floats(0.0, 600.0), st.floats(0.0, 60.0)),
    max_size=60,
)


def _snapshot(now: float, draw: Callable[[st.SearchStrategy[Any]], Any]) -> PacingSnapshot:
    return PacingSnapshot(
        now,
        agents_ready=draw(st.integers(0, 60)),
        agents_busy=draw(st.lists(st.one_of(st.none(), st.floats(0.0, 300.0)), max_size=60)),
        calls_in_progress=draw(st.integers(0, 200)),
        answered_waiting=draw(st.integers(0, 10)),
        calls_connected=draw(st.integers(0, 60)),
        trunk_free=draw(st.one_of(st.none(), st.integers(0, 100))),
    )


def _replay(p: Pacer, history: list[tuple[CallOutcome, float, bool, float, float]]) -> float:
    now = 0.0
    for outcome, ring, abandoned, talk, wrap in history:
        now += 1.0
        p.observe_attempt(now, outcome, ring)
        if outcome.live_answer:
            p.observe_answered(now, abandoned)
            p.observe_connected(now, talk, wrap)
    return now + 1.0


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from(list(DialMode)),
    limit=st.one_of(st.none(), st.integers(1, 80)),
    history=_history,
    data=st.data(),
)
def test_no_mode_ever_places_more_calls_than_the_lines_allow(
    mode: DialMode,
    limit: int | None,
    history: list[tuple[CallOutcome, float, bool, float, float]],
    data: st.DataObject,
) -> None:
    if mode is DialMode.NOTIFICATION and limit is None:
        limit = 30
    p = pacer(mode, max_concurrent_calls=limit)
    now = _replay(p, history)
    s = _snapshot(now, data.draw)
    n = p.calls_to_place(s)
    assert n >= 0
    if s.trunk_free is not None:
        assert n <= s.trunk_free
    if limit is not None:
        assert n <= max(0, limit - s.calls_in_progress - s.answered_waiting - s.calls_connected)
    if mode is DialMode.PREVIEW:
        assert n == 0


@settings(max_examples=300, deadline=None)
@given(history=_history, data=st.data())
def test_progressive_never_has_more_calls_in_progress_than_free_agents(
    history: list[tuple[CallOutcome, float, bool, float, float]], data: st.DataObject
) -> None:
    p = pacer(DialMode.PROGRESSIVE)
    now = _replay(p, history)
    s = _snapshot(now, data.draw)
    n = p.calls_to_place(s)
    if s.calls_in_progress + s.answered_waiting <= s.agents_ready:
        assert s.calls_in_progress + s.answered_waiting + n <= s.agents_ready
    else:
        assert n == 0


@settings(max_examples=200, deadline=None)
@given(history=_history, data=st.data())
def test_a_predictive_campaign_over_its_cap_dials_exactly_as_progressive(
    history: list[tuple[CallOutcome, float, bool, float, float]], data: st.DataObject
) -> None:
    predictive, progressive = pacer(DialMode.PREDICTIVE), pacer(DialMode.PROGRESSIVE)
    now = max(_replay(predictive, history), _replay(progressive, history))
    answered_calls(predictive, now, 10, abandoned=5)  # >= 5 of at most 70
    assert predictive.effective_mode is DialMode.PROGRESSIVE
    s = _snapshot(now, data.draw)
    assert predictive.calls_to_place(s) == progressive.calls_to_place(s)
