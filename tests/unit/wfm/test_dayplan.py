"""Day plans: per-interval staffing, shrinkage, caps, lines and totals."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from frontoffice.wfm import (
    IntervalError,
    StaffingTarget,
    erlang_a_staffing,
    erlang_c_staffing,
    infer_interval_s,
    lines_for_blocking,
    plan_day,
)

MONDAY = datetime(2026, 3, 2)


def forecast(calls: list[float], minutes: int = 30) -> list[tuple[datetime, float]]:
    return [(MONDAY + timedelta(minutes=minutes * i), c) for i, c in enumerate(calls)]


def test_each_interval_gets_the_minimum_staffing_for_its_traffic() -> None:
    target = StaffingTarget(0.8, 20, max_occupancy=0.85, shrinkage=0.3)
    plan = plan_day(forecast([100.0, 0.0, 250.0]), 180, target)
    assert plan.interval_s == 1800
    first, empty, busy = plan.intervals
    assert first.traffic == pytest.approx(10.0)
    assert (first.agents, first.scheduled) == (14, 20)  # the pyworkforce case, per interval
    assert (empty.agents, empty.scheduled, empty.lines) == (0, 0, 0)
    assert busy.agents == erlang_c_staffing(25.0, 180, target).agents
    assert plan.peak_agents == busy.agents
    assert plan.agent_hours == pytest.approx((first.agents + busy.agents) * 0.5)
    assert plan.scheduled_hours == pytest.approx((first.scheduled + busy.scheduled) * 0.5)
    assert plan.total_calls == 350.0
    assert plan.lines == max(r.lines for r in plan.intervals)
    weighted = (100 * first.service_level + 250 * busy.service_level) / 350
    assert plan.service_level == pytest.approx(weighted)


def test_lines_cover_ivr_queue_and_talk_of_the_interval() -> None:
    plan = plan_day(
        forecast([600.0], 60), 180, StaffingTarget(0.8, 20), interval_s=3600, ivr_s=20, blocking=0.01
    )
    row = plan.intervals[0]
    carried = 600 / 3600 * (20 + row.asa_s + 180)
    assert row.lines == lines_for_blocking(carried, 0.01)


def test_erlang_a_day_plan_uses_patience() -> None:
    target = StaffingTarget(0.8, 20)
    plan = plan_day(forecast([1000.0, 1200.0], 15), 180, target, patience_s=90)
    assert plan.intervals[0].agents == erlang_a_staffing(1000 * 180 / 900, 180, 90, target).agents
    assert all(r.p_abandon > 0 for r in plan.intervals)


def test_interval_length_is_inferred_from_the_starts() -> None:
    assert infer_interval_s([MONDAY, MONDAY + timedelta(minutes=15), MONDAY + timedelta(hours=1)]) == 900
    with pytest.raises(ValueError):
        infer_interval_s([MONDAY])


def test_rows_come_out_in_time_order_and_bad_input_is_refused() -> None:
    rows = forecast([10.0, 20.0, 30.0])
    plan = plan_day(list(reversed(rows)), 180, StaffingTarget())
    assert [r.start for r in plan.intervals] == [r[0] for r in rows]
    with pytest.raises(ValueError):
        plan_day([], 180, StaffingTarget())
    with pytest.raises(ValueError):
        plan_day(forecast([-1.0, 2.0]), 180, StaffingTarget())


def test_a_start_given_twice_is_refused_naming_the_row() -> None:
    rows = forecast([100.0, 200.0, 300.0])
    rows.append((rows[1][0], 50.0))
    with pytest.raises(IntervalError, match="twice") as caught:
        plan_day(rows, 180, StaffingTarget(0.8, 20))
    assert caught.value.row == 3


def test_starts_off_the_interval_grid_are_refused_naming_the_row() -> None:
    rows = [(MONDAY, 10.0), (MONDAY + timedelta(minutes=15), 10.0), (MONDAY + timedelta(minutes=35), 10.0)]
    with pytest.raises(IntervalError, match="15-minute") as caught:
        plan_day(rows, 180, StaffingTarget(0.8, 20))
    assert caught.value.row == 2
    with pytest.raises(IntervalError, match="30-minute") as caught:
        plan_day(forecast([10.0, 10.0], minutes=15), 180, StaffingTarget(0.8, 20), interval_s=1800)
    assert caught.value.row == 1


def test_missing_intervals_are_reported_not_dropped_silently() -> None:
    rows = forecast([100.0, 200.0, 300.0, 400.0], minutes=15)
    del rows[1:3]
    plan = plan_day(rows, 180, StaffingTarget(0.8, 20), interval_s=900)
    assert plan.missing == (MONDAY + timedelta(minutes=15), MONDAY + timedelta(minutes=30))


def test_one_row_needs_its_interval_length() -> None:
    with pytest.raises(IntervalError, match="interval") as caught:
        plan_day(forecast([100.0]), 180, StaffingTarget(0.8, 20))
    assert caught.value.row == 0
    assert plan_day(forecast([100.0]), 180, StaffingTarget(0.8, 20), interval_s=1800).interval_s == 1800
