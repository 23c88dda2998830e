"""A day plan: forecast calls per interval → agents per interval → staffing curve and lines.

Each interval is sized on its own, as if it were in steady state (the usual practice; it
under-staffs the first minutes after a steep rise). Traffic per interval is
``calls × AHT / interval length``. Agents come from the minimum-staffing search (Erlang C, or
Erlang A when a patience is given) with the target's occupancy cap and shrinkage; lines from
Erlang B on the line-holding traffic of that interval (IVR + queue wait + talk). The day needs
the most lines any interval needs: a trunk cannot be resized between intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

from frontoffice.wfm.erlang_b import _lines_for_blocking
from frontoffice.wfm.staffing import Staffing, StaffingTarget, required_agents

__all__ = ["DayPlan", "IntervalError", "IntervalPlan", "infer_interval_s", "plan_day"]


class IntervalError(ValueError):
    """A forecast row that cannot be planned. ``row`` is its index in the forecast as given, so a
    caller can name it (a file's line, a request's ``intervals[i]``)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


class IntervalPlan(NamedTuple):
    """One interval of the plan: forecast, positions on the phones, scheduled agents, lines."""

    start: datetime
    calls: float
    traffic: float
    agents: int
    scheduled: int
    service_level: float
    asa_s: float
    p_abandon: float
    occupancy: float
    lines: int


class DayPlan(NamedTuple):
    """The per-interval plan and its totals.

    ``agent_hours`` and ``scheduled_hours`` sum positions and scheduled agents over the intervals.
    ``service_level``, ``asa_s`` and ``p_abandon`` are call-weighted over the day. ``lines`` is
    the largest per-interval requirement. ``missing`` lists the starts of intervals between the
    first and the last that the forecast has no row for: they are not planned (no agents, no calls).
    """

    intervals: tuple[IntervalPlan, ...]
    interval_s: int
    total_calls: float
    agent_hours: float
    scheduled_hours: float
    peak_agents: int
    peak_scheduled: int
    lines: int
    service_level: float
    asa_s: float
    p_abandon: float
    missing: tuple[datetime, ...] = ()


def infer_interval_s(starts: Sequence[datetime]) -> int:
    """The interval length in seconds: the smallest gap between consecutive distinct starts."""
    ordered = sorted(set(starts))
    if len(ordered) < 2:
        raise ValueError("need at least two interval starts to infer the interval length")
    gap = min((b - a).total_seconds() for a, b in pairwise(ordered))
    return round(gap)


def plan_day(
    forecast: Sequence[tuple[datetime, float]],
    aht_s: float,
    target: StaffingTarget,
    *,
    interval_s: int | None = None,
    patience_s: float | None = None,
    blocking: float = 0.01,
    ivr_s: float = 0.0,
    wrap_s: float = 0.0,
) -> DayPlan:
    """Plan agents and lines for every ``(interval start, forecast calls)`` in ``forecast``.

    ``interval_s`` defaults to the smallest spacing of the starts (15, 30 or 60 minutes are usual).
    A start given twice, or starts not a whole number of intervals apart (an uneven or overlapping
    forecast), raise :class:`IntervalError` naming the row; so does a single row without
    ``interval_s``. Intervals missing between rows are listed in ``DayPlan.missing``.
    """
    if not forecast:
        raise ValueError("the forecast has no intervals")
    order = sorted(range(len(forecast)), key=lambda i: forecast[i][0])
    for a, b in pairwise(order):
        if forecast[a][0] == forecast[b][0]:
            first, second = sorted((a, b))
            raise IntervalError(
                second, f"{forecast[b][0].isoformat()} appears twice (rows {first + 1} and {second + 1})"
            )
    if interval_s is None:
        if len(forecast) == 1:
            raise IntervalError(0, "one interval alone does not say how long it is: give the interval length")
        interval_s = infer_interval_s([start for start, _ in forecast])
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
    if not 0.0 < blocking < 1.0:
        raise ValueError(f"blocking must be strictly between 0 and 1, got {blocking!r}")
    if not (0.0 <= wrap_s < aht_s and ivr_s >= 0.0):
        raise ValueError("need 0 <= wrap_s < aht_s and ivr_s >= 0")
    missing: list[datetime] = []
    step = timedelta(seconds=interval_s)
    for a, b in pairwise(order):
        earlier, later = forecast[a][0], forecast[b][0]
        intervals, rest = divmod(later - earlier, step)
        if rest:
            raise IntervalError(
                b,
                f"{later.isoformat()} is {(later - earlier).total_seconds() / 60:g} minutes after "
                f"{earlier.isoformat()}: not a whole number of {interval_s / 60:g}-minute intervals",
            )
        missing.extend(earlier + k * step for k in range(1, intervals))
    talk_s = aht_s - wrap_s
    rows: list[IntervalPlan] = []
    # Equal forecasts (flat nights, rounded counts) get equal answers: size each value once.
    sized: dict[float, tuple[Staffing, int]] = {}
    for start, calls in sorted(forecast, key=lambda row: row[0]):
        known = sized.get(calls)
        if known is None:
            if not (calls >= 0.0 and math.isfinite(calls)):
                raise ValueError(f"calls must be >= 0 at {start.isoformat()}, got {calls!r}")
            traffic = calls * aht_s / interval_s
            staffing = required_agents(traffic, aht_s, target, patience_s)
            if traffic > 0.0:
                # Line-holding traffic: IVR + queue wait + talk of answered callers (trunks.line_traffic).
                hold_s = ivr_s + staffing.mean_wait_s + (1.0 - staffing.p_abandon) * talk_s
                lines = _lines_for_blocking(calls / interval_s * hold_s, blocking)
            else:
                lines = 0
            known = sized[calls] = (staffing, lines)
        staffing, lines = known
        rows.append(
            IntervalPlan(
                start,
                calls,
                staffing.traffic,
                staffing.agents,
                staffing.scheduled,
                staffing.service_level,
                staffing.asa_s,
                staffing.p_abandon,
                staffing.occupancy,
                lines,
            )
        )
    total_calls = math.fsum(r.calls for r in rows)
    hours = interval_s / 3600.0

    def weighted(values: Sequence[float]) -> float:
        if total_calls == 0.0:
            return 0.0
        return math.fsum(r.calls * v for r, v in zip(rows, values, strict=True)) / total_calls

    return DayPlan(
        intervals=tuple(rows),
        interval_s=interval_s,
        total_calls=total_calls,
        agent_hours=sum(r.agents for r in rows) * hours,
        scheduled_hours=sum(r.scheduled for r in rows) * hours,
        peak_agents=max(r.agents for r in rows),
        peak_scheduled=max(r.scheduled for r in rows),
        lines=max(r.lines for r in rows),
        service_level=weighted([r.service_level for r in rows]),
        asa_s=weighted([r.asa_s for r in rows]),
        p_abandon=weighted([r.p_abandon for r in rows]),
        missing=tuple(missing),
    )
