"""Forecasting calls per interval from the center's own history.

Pure functions over a sequence of ``(interval start, calls)`` and a set of holiday dates; no I/O,
no clock. History is laid on a grid of days × intervals: a day that appears in the history (any
interval) is an observed day and its missing intervals count as zero calls; a day that does not
appear at all is missing, not zero. ``counts_from_arrivals`` turns raw arrival timestamps into
counts, zero-filling every day between the first and the last arrival.

Two methods, both weekday × interval-of-day profiles:

* ``seasonal_average``: each (weekday, interval) is the mean of the last ``weeks`` non-holiday
  days with that weekday.
* ``holt_winters``: daily totals are smoothed with Holt–Winters (level, damped additive trend,
  multiplicative weekday seasonality; Hyndman & Athanasopoulos, *Forecasting: Principles and
  Practice*, §8.3), and each day is spread over its intervals by that weekday's average intraday
  shape over the last ``weeks`` weeks. Missing days and holidays are stepped over without updating
  the state.

Holidays are left out of training. A holiday in the forecast horizon gets the holiday profile
learned from past holidays in the history (per interval, the share of a normal day's volume that
arrived on the holiday) when there are any; otherwise it gets the normal weekday forecast and is
listed in ``Forecast.unprofiled_holidays`` so the planner can adjust it by hand.

``backtest`` measures a method on held-out weeks at the end of the history (rolling origin: each
week is forecast from the data before it) and reports MAPE and WAPE.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

__all__ = [
    "Backtest",
    "Forecast",
    "IntervalForecast",
    "WeekError",
    "backtest",
    "counts_from_arrivals",
    "forecast_calls",
    "infer_history_interval_s",
]

SECONDS_PER_DAY = 86_400
METHODS = ("seasonal_average", "holt_winters")


class IntervalForecast(NamedTuple):
    """Forecast calls for one interval; ``holiday`` marks a date in the holiday set."""

    start: datetime
    calls: float
    holiday: bool


class Forecast(NamedTuple):
    """Forecast intervals in time order, and holidays forecast without a learned holiday profile."""

    intervals: tuple[IntervalForecast, ...]
    interval_s: int
    method: str
    unprofiled_holidays: tuple[date, ...]


class WeekError(NamedTuple):
    """Forecast error over one held-out week."""

    week_start: date
    mape: float
    wape: float


class Backtest(NamedTuple):
    """Error of a method on held-out weeks. ``mape`` is over intervals with calls (a share, not %)."""

    method: str
    weeks: tuple[WeekError, ...]
    mape: float
    wape: float
    intervals: int


def _second_of_day(moment: datetime) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def infer_history_interval_s(starts: Iterable[datetime]) -> int:
    """The interval length: the greatest common divisor of the starts' seconds-of-day and one day."""
    g = SECONDS_PER_DAY
    for moment in starts:
        g = math.gcd(g, _second_of_day(moment))
    return g


def counts_from_arrivals(arrivals: Iterable[datetime], interval_s: int) -> list[tuple[datetime, int]]:
    """Calls per interval from arrival times, every interval of every day from the first to the last."""
    _check_interval(interval_s)
    counts: dict[tuple[date, int], int] = {}
    for moment in arrivals:
        key = (moment.date(), _second_of_day(moment) // interval_s)
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return []
    first = min(day for day, _ in counts)
    last = max(day for day, _ in counts)
    out: list[tuple[datetime, int]] = []
    day = first
    while day <= last:
        midnight = datetime.combine(day, time())
        for slot in range(SECONDS_PER_DAY // interval_s):
            out.append((midnight + timedelta(seconds=slot * interval_s), counts.get((day, slot), 0)))
        day += timedelta(days=1)
    return out


def _check_interval(interval_s: int) -> None:
    if interval_s <= 0 or SECONDS_PER_DAY % interval_s:
        raise ValueError(f"interval_s must divide a day evenly, got {interval_s!r}")


def _grid(history: Iterable[tuple[datetime, float]], interval_s: int) -> dict[date, list[float]]:
    slots = SECONDS_PER_DAY // interval_s
    days: dict[date, list[float]] = {}
    for moment, calls in history:
        if not (calls >= 0.0 and math.isfinite(calls)):
            raise ValueError(f"calls must be >= 0 at {moment.isoformat()}, got {calls!r}")
        row = days.get(moment.date())
        if row is None:
            row = days[moment.date()] = [0.0] * slots
        row[_second_of_day(moment) // interval_s] += calls
    return days


def _recent_same_weekday(days: dict[date, list[float]], weekday: int, before: date, weeks: int) -> list[date]:
    """Up to ``weeks`` training days with ``weekday`` before ``before``, latest first."""
    found = sorted((d for d in days if d.weekday() == weekday and d < before), reverse=True)
    return found[:weeks]


def _mean_rows(rows: Sequence[list[float]], slots: int) -> list[float]:
    if not rows:
        return [0.0] * slots
    return [math.fsum(row[i] for row in rows) / len(rows) for i in range(slots)]


def _seasonal_average_days(
    train: dict[date, list[float]], horizon: Sequence[date], weeks: int
) -> list[list[float]]:
    slots = len(next(iter(train.values())))
    end = max(train) + timedelta(days=1)
    by_weekday = [
        _mean_rows([train[d] for d in _recent_same_weekday(train, wd, end, weeks)], slots) for wd in range(7)
    ]
    return [by_weekday[d.weekday()][:] for d in horizon]


class _HoltWinters(NamedTuple):
    alpha: float
    beta: float
    gamma: float
    phi: float


def _holt_winters_days(
    train: dict[date, list[float]], horizon: Sequence[date], weeks: int, params: _HoltWinters
) -> list[list[float]]:
    """Daily totals by Holt–Winters (multiplicative weekday season), spread by weekday shapes."""
    slots = len(next(iter(train.values())))
    first, last = min(train), max(train)
    totals = {d: math.fsum(row) for d, row in train.items()}
    # Initial state from the first (up to) two weeks of observed days.
    first_week = [totals[d] for d in totals if d < first + timedelta(days=7)]
    second_week = [totals[d] for d in totals if first + timedelta(days=7) <= d < first + timedelta(days=14)]
    level = math.fsum(first_week) / len(first_week)
    trend = 0.0
    if second_week and level > 0.0:
        trend = (math.fsum(second_week) / len(second_week) - level) / 7.0
    season = [1.0] * 7
    for wd in range(7):
        seen = [totals[d] for d in totals if d.weekday() == wd and d < first + timedelta(days=14)]
        if seen and level > 0.0:
            season[wd] = math.fsum(seen) / len(seen) / level
    a, b, g, phi = params
    day = first
    while day <= last:
        wd = day.weekday()
        expected_level = level + phi * trend
        y = totals.get(day)
        if y is not None and season[wd] > 0.0:
            new_level = a * y / season[wd] + (1.0 - a) * expected_level
            trend = b * (new_level - level) + (1.0 - b) * phi * trend
            if new_level > 0.0:
                season[wd] = g * y / new_level + (1.0 - g) * season[wd]
            level = new_level
        else:
            # A missing day or holiday, or a weekday whose season is 0 (closed): nothing to learn
            # about the level, so the state moves on as forecast.
            level = expected_level
            trend *= phi
        day += timedelta(days=1)
    shapes: list[list[float]] = []
    for wd in range(7):
        rows = [train[d] for d in _recent_same_weekday(train, wd, last + timedelta(days=1), weeks)]
        mean = _mean_rows(rows, slots)
        total = math.fsum(mean)
        shapes.append([v / total for v in mean] if total > 0.0 else [0.0] * slots)
    out: list[list[float]] = []
    for d in horizon:
        steps = (d - last).days
        damped = math.fsum(phi**k for k in range(1, steps + 1))
        daily = max(0.0, (level + damped * trend) * season[d.weekday()])
        out.append([daily * s for s in shapes[d.weekday()]])
    return out


def _normal_days(
    train: dict[date, list[float]], horizon: Sequence[date], method: str, weeks: int, params: _HoltWinters
) -> list[list[float]]:
    if method == "seasonal_average":
        return _seasonal_average_days(train, horizon, weeks)
    if method == "holt_winters":
        return _holt_winters_days(train, horizon, weeks, params)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _holiday_profile(
    days: dict[date, list[float]], holidays: Collection[date], weeks: int
) -> list[float] | None:
    """Per interval, the mean share of a normal same-weekday day's volume seen on past holidays."""
    train = {d: row for d, row in days.items() if d not in holidays}
    shares: list[list[float]] = []
    for h in sorted(d for d in days if d in holidays):
        near = _recent_same_weekday(train, h.weekday(), h, weeks)
        if not near:
            near = sorted(d for d in train if d.weekday() == h.weekday() and d > h)[:weeks]
        normal = math.fsum(math.fsum(train[d]) for d in near) / len(near) if near else 0.0
        if normal > 0.0:
            shares.append([v / normal for v in days[h]])
    if not shares:
        return None
    return _mean_rows(shares, len(shares[0]))


def forecast_calls(
    history: Sequence[tuple[datetime, float]],
    start: date,
    days: int,
    *,
    holidays: Collection[date] = frozenset(),
    interval_s: int | None = None,
    method: str = "seasonal_average",
    weeks: int = 4,
    alpha: float = 0.3,
    beta: float = 0.05,
    gamma: float = 0.3,
    phi: float = 0.9,
) -> Forecast:
    """Forecast calls per interval for ``days`` days from ``start``.

    ``history`` holds ``(interval start, calls)``; ``holidays`` are dates excluded from training
    and forecast from the holiday profile. ``weeks`` is how many recent same-weekday days form a
    profile. ``alpha``, ``beta``, ``gamma`` and ``phi`` are the Holt–Winters level, trend, season
    and trend-damping parameters.
    """
    if days < 0 or weeks < 1:
        raise ValueError("days must be >= 0 and weeks >= 1")
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma), ("phi", phi)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if interval_s is None:
        interval_s = infer_history_interval_s(moment for moment, _ in history)
    _check_interval(interval_s)
    grid = _grid((row for row in history if row[0].date() < start), interval_s)
    train = {d: row for d, row in grid.items() if d not in holidays}
    if not train:
        raise ValueError("no non-holiday history before the forecast start")
    horizon = [start + timedelta(days=i) for i in range(days)]
    normal = _normal_days(train, horizon, method, weeks, _HoltWinters(alpha, beta, gamma, phi))
    profile = _holiday_profile(grid, holidays, weeks)
    unprofiled: list[date] = []
    out: list[IntervalForecast] = []
    for d, row in zip(horizon, normal, strict=True):
        is_holiday = d in holidays
        if is_holiday:
            if profile is None:
                unprofiled.append(d)
            else:
                total = math.fsum(row)
                row = [total * share for share in profile]
        midnight = datetime.combine(d, time())
        for slot, calls in enumerate(row):
            out.append(IntervalForecast(midnight + timedelta(seconds=slot * interval_s), calls, is_holiday))
    return Forecast(tuple(out), interval_s, method, tuple(unprofiled))


def backtest(
    history: Sequence[tuple[datetime, float]],
    *,
    holidays: Collection[date] = frozenset(),
    holdout_weeks: int = 2,
    interval_s: int | None = None,
    method: str = "seasonal_average",
    weeks: int = 4,
    alpha: float = 0.3,
    beta: float = 0.05,
    gamma: float = 0.3,
    phi: float = 0.9,
) -> Backtest:
    """Forecast each of the last ``holdout_weeks`` weeks from the history before it and score it.

    WAPE = Σ|actual - forecast| / Σ actual; MAPE = mean of |actual - forecast| / actual over
    intervals with calls. Holidays and days missing from the history are not scored.
    """
    if holdout_weeks < 1:
        raise ValueError("holdout_weeks must be >= 1")
    if interval_s is None:
        interval_s = infer_history_interval_s(moment for moment, _ in history)
    grid = _grid(history, interval_s)
    if not grid:
        raise ValueError("empty history")
    last = max(grid)
    scored: list[WeekError] = []
    abs_total = actual_total = ape_total = 0.0
    ape_count = count = 0
    for k in range(holdout_weeks, 0, -1):
        week_start = last - timedelta(days=7 * k - 1)
        fc = forecast_calls(
            history,
            week_start,
            7,
            holidays=holidays,
            interval_s=interval_s,
            method=method,
            weeks=weeks,
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            phi=phi,
        )
        w_abs = w_act = w_ape = 0.0
        w_ape_n = 0
        for item in fc.intervals:
            day = item.start.date()
            if item.holiday or day not in grid:
                continue
            actual = grid[day][_second_of_day(item.start) // interval_s]
            err = abs(actual - item.calls)
            w_abs += err
            w_act += actual
            count += 1
            if actual > 0.0:
                w_ape += err / actual
                w_ape_n += 1
        scored.append(
            WeekError(
                week_start, w_ape / w_ape_n if w_ape_n else math.nan, w_abs / w_act if w_act else math.nan
            )
        )
        abs_total += w_abs
        actual_total += w_act
        ape_total += w_ape
        ape_count += w_ape_n
    return Backtest(
        method=method,
        weeks=tuple(scored),
        mape=ape_total / ape_count if ape_count else math.nan,
        wape=abs_total / actual_total if actual_total else math.nan,
        intervals=count,
    )
