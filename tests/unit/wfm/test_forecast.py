"""Forecasting from history: profiles, holidays, arrivals, and backtests on held-out weeks."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

import pytest

from frontoffice.wfm import backtest, counts_from_arrivals, forecast_calls, infer_history_interval_s

FIRST_MONDAY = date(2026, 1, 5)
WEEKDAY_LEVEL = [1.0, 1.1, 1.05, 1.0, 0.9, 0.4, 0.0]  # closed on Sundays
HOLIDAYS = frozenset({date(2026, 2, 23), date(2026, 3, 9)})


def expected_calls(day: date, slot: int, growth: float = 0.0) -> float:
    hour = slot / 2
    shape = max(0.02, math.exp(-(((hour - 11) / 3) ** 2)) + 0.8 * math.exp(-(((hour - 16) / 3) ** 2)))
    weeks = (day - FIRST_MONDAY).days / 7
    holiday = 0.3 if day in HOLIDAYS else 1.0
    return 200 * WEEKDAY_LEVEL[day.weekday()] * shape * (1 + growth * weeks) * holiday


def history(weeks: int, noise: bool, growth: float = 0.0) -> list[tuple[datetime, float]]:
    rng = random.Random(7)
    rows = []
    for offset in range(weeks * 7):
        day = FIRST_MONDAY + timedelta(days=offset)
        for slot in range(48):
            mean = expected_calls(day, slot, growth)
            calls = max(0.0, rng.gauss(mean, math.sqrt(mean))) if noise else mean
            rows.append((datetime.combine(day, datetime.min.time()) + timedelta(minutes=30 * slot), calls))
    return rows


def test_seasonal_average_reproduces_a_stable_pattern_exactly() -> None:
    rows = history(6, noise=False)
    fc = forecast_calls(rows, date(2026, 2, 16), 7, holidays=HOLIDAYS)
    assert fc.interval_s == 1800
    assert len(fc.intervals) == 7 * 48
    for item in fc.intervals:
        slot = (item.start.hour * 60 + item.start.minute) // 30
        assert item.calls == pytest.approx(expected_calls(item.start.date(), slot), rel=1e-12, abs=1e-12)


def test_holt_winters_follows_a_trend_the_average_lags() -> None:
    rows = history(10, noise=False, growth=0.05)
    cut = date(2026, 3, 9) + timedelta(days=7)
    train = [r for r in rows if r[0].date() < cut]
    extended = history(11, noise=False, growth=0.05)
    actual = sum(
        c for t, c in extended if cut <= t.date() < cut + timedelta(days=7) and t.date() not in HOLIDAYS
    )
    avg = sum(i.calls for i in forecast_calls(train, cut, 7, holidays=HOLIDAYS).intervals)
    hw = sum(
        i.calls for i in forecast_calls(train, cut, 7, holidays=HOLIDAYS, method="holt_winters").intervals
    )
    assert abs(hw - actual) < abs(avg - actual)


def test_holidays_are_left_out_of_training_and_forecast_from_their_profile() -> None:
    rows = history(9, noise=False)  # to Sunday 8 March, with the holiday Monday 23 February
    # A future Monday holiday: the past one ran at 30 % of a normal Monday.
    holiday = date(2026, 3, 16)
    fc = forecast_calls(rows, holiday, 1, holidays=HOLIDAYS | {holiday})
    assert all(item.holiday for item in fc.intervals)
    assert fc.unprofiled_holidays == ()
    total = sum(item.calls for item in fc.intervals)
    normal = sum(expected_calls(holiday, s) for s in range(48))
    assert total == pytest.approx(0.3 * normal, rel=1e-9)
    # The Monday after a holiday is forecast from normal Mondays only.
    after = forecast_calls(rows, date(2026, 3, 16), 1, holidays=HOLIDAYS)
    assert sum(i.calls for i in after.intervals) == pytest.approx(normal, rel=1e-9)


def test_a_holiday_without_history_is_flagged() -> None:
    rows = history(3, noise=False)
    fc = forecast_calls(rows, date(2026, 1, 26), 2, holidays={date(2026, 1, 27)})
    assert fc.unprofiled_holidays == (date(2026, 1, 27),)
    assert [i.holiday for i in fc.intervals[::48]] == [False, True]


def test_backtest_reports_small_errors_on_poisson_like_noise() -> None:
    rows = history(10, noise=True)
    for method in ("seasonal_average", "holt_winters"):
        result = backtest(rows, holidays=HOLIDAYS, holdout_weeks=3, method=method)
        assert len(result.weeks) == 3
        assert 0.0 < result.wape < 0.12
        assert result.mape > result.wape  # quiet night intervals weigh heavily in MAPE
        assert result.intervals == (3 * 7 - 2) * 48  # the two holidays in those weeks are not scored


def test_perfect_history_backtests_with_zero_error() -> None:
    result = backtest(history(6, noise=False), holdout_weeks=2)
    assert result.wape == pytest.approx(0.0, abs=1e-12)
    assert result.mape == pytest.approx(0.0, abs=1e-12)


def test_arrivals_become_zero_filled_counts() -> None:
    start = datetime(2026, 1, 5, 9, 0)
    arrivals = [start, start + timedelta(minutes=5), start + timedelta(days=1, minutes=20)]
    counts = counts_from_arrivals(arrivals, 900)
    assert len(counts) == 2 * 96
    assert dict(counts)[start] == 2
    assert dict(counts)[start + timedelta(days=1, minutes=15)] == 1
    assert sum(c for _, c in counts) == 3
    assert infer_history_interval_s(t for t, _ in counts) == 900


def test_invalid_input() -> None:
    with pytest.raises(ValueError):
        forecast_calls([], date(2026, 1, 1), 1, interval_s=1800)
    with pytest.raises(ValueError):
        counts_from_arrivals([], 7)
    with pytest.raises(ValueError):
        forecast_calls(history(2, noise=False), date(2026, 3, 1), 1, method="magic")
