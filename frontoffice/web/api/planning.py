"""Workforce planning over HTTP: staffing, lines, day plans, costs and the simulation.

Thin wrappers around :mod:`frontoffice.wfm` for supervisors and administrators (``stats.read``).
Every figure that can be infinite (the ASA of an unstable Erlang C queue) is ``null`` in JSON. The
simulation is bounded (replications × expected contacts, agents, hours) so that one request cannot
hold a worker thread for minutes; it runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from frontoffice.services.context import Actor
from frontoffice.wfm import (
    CostInputs,
    IntervalError,
    StaffingTarget,
    break_even,
    erlang_a_metrics,
    erlang_b,
    erlang_c_metrics,
    extended_erlang_b,
    extended_lines_for_blocking,
    lines_for_blocking,
    own_cost,
    plan_day,
    required_agents,
    size_trunks,
)
from frontoffice.wfm.simulation import (
    Scenario,
    SimulationTooLarge,
    scenario_from_dict,
    single_queue_scenario,
)
from frontoffice.wfm.simulation import simulate as run_simulation

from ..errors import ApiError
from ..security import requires

__all__ = ["MAX_SIMULATED_CONTACTS", "router"]

router = APIRouter(prefix="/planning", tags=["planning"])
Planner = Annotated[Actor, Depends(requires("stats.read"))]

# A simulated contact costs the routing engine about 20–40 µs on a small server, so half a million
# contacts is 10–20 s of one thread: the most one request may ask for.
MAX_SIMULATED_CONTACTS = 500_000
MAX_SIMULATED_AGENTS = 2_000
MAX_SIMULATED_HOURS = 24.0
# A contact makes two to four events (arrival, answer, end, patience, engine timers); far more means
# contacts bouncing between queues, and the run stops there.
EVENTS_PER_CONTACT_LIMIT = 50
# Points on the charts' curves.
_MAX_CURVE_POINTS = 60

Share = Annotated[float, Field(gt=0, lt=1)]
Seconds = Annotated[float, Field(ge=0, le=86_400)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Load(_In):
    calls_per_hour: Annotated[float | None, Field(ge=0, le=10_000_000)] = None
    traffic_erlangs: Annotated[float | None, Field(ge=0, le=1_000_000)] = None
    aht_s: Annotated[float, Field(gt=0, le=86_400)] = 180.0

    @model_validator(mode="after")
    def _one_load(self) -> _Load:
        if (self.calls_per_hour is None) == (self.traffic_erlangs is None):
            raise ValueError("give exactly one of calls_per_hour and traffic_erlangs")
        return self

    @property
    def traffic(self) -> float:
        """Offered erlangs."""
        if self.traffic_erlangs is not None:
            return self.traffic_erlangs
        return (self.calls_per_hour or 0.0) * self.aht_s / 3600.0


class _Targets(BaseModel):
    service_level: Share | None = 0.8
    answer_time_s: Seconds = 20.0
    asa_s: Annotated[float | None, Field(gt=0, le=86_400)] = None
    abandon_rate: Share | None = None
    max_occupancy: Annotated[float | None, Field(gt=0, le=1)] = None
    shrinkage: Annotated[float, Field(ge=0, lt=1)] = 0.0
    patience_s: Annotated[float | None, Field(gt=0, le=86_400)] = None

    def target(self) -> StaffingTarget:
        """The staffing target (``ValueError`` when none is set)."""
        return StaffingTarget(
            self.service_level,
            self.answer_time_s,
            self.asa_s,
            self.abandon_rate,
            self.max_occupancy,
            self.shrinkage,
        )


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _bad_input(exc: ValueError) -> ApiError:
    return ApiError(400, "invalid-planning-input", str(exc))


# --- staff -----------------------------------------------------------------------------------------


class StaffIn(_Load, _Targets):
    """Minimum agents for the targets: Erlang C, or Erlang A when ``patience_s`` is given."""


class AgentsPoint(BaseModel):
    """The figures one staffing level gives (a point of the service-level-versus-agents chart)."""

    agents: int
    service_level: float
    asa_s: float | None
    p_abandon: float
    occupancy: float


class StaffOut(BaseModel):
    """The minimum staffing and the curve around it."""

    model: str
    traffic: float
    agents: int
    scheduled: int
    service_level: float
    answer_time_s: float
    asa_s: float | None
    mean_wait_s: float | None
    p_wait: float
    p_abandon: float
    occupancy: float
    limiting: list[str]
    curve: list[AgentsPoint]


def _agents_point(
    traffic: float, n: int, aht_s: float, answer_s: float, patience_s: float | None
) -> AgentsPoint:
    if patience_s is not None:
        a = erlang_a_metrics(traffic, n, aht_s, patience_s, answer_s)
        return AgentsPoint(
            agents=n,
            service_level=a.service_level,
            asa_s=_num(a.asa_s),
            p_abandon=a.p_abandon,
            occupancy=a.occupancy,
        )
    c = erlang_c_metrics(traffic, n, aht_s, answer_s)
    return AgentsPoint(
        agents=n, service_level=c.service_level, asa_s=_num(c.asa_s), p_abandon=0.0, occupancy=c.occupancy
    )


@router.post("/staff", response_model=StaffOut)
async def staff(body: StaffIn, actor: Planner) -> StaffOut:
    """Minimum agents for a service level / ASA / abandonment / occupancy target, with shrinkage.

    ``curve`` gives service level, ASA, abandonment and occupancy for staffing levels around the
    answer (the service-level-versus-agents chart).
    """
    # Erlang A at a large traffic takes a while per point: off the event loop.
    return await asyncio.to_thread(_staff, body)


def _staff(body: StaffIn) -> StaffOut:
    traffic = body.traffic
    try:
        target = body.target()
        s = required_agents(traffic, body.aht_s, target, body.patience_s)
        low = max(1, min(s.agents - 1, math.floor(0.8 * s.agents)))
        high = max(s.agents + 2, math.ceil(1.2 * s.agents))
        stride = max(1, math.ceil((high - low + 1) / _MAX_CURVE_POINTS))
        levels = sorted({*range(low, high + 1, stride), s.agents})
        if body.patience_s is None:
            levels = [n for n in levels if n > traffic]
        curve = [_agents_point(traffic, n, body.aht_s, body.answer_time_s, body.patience_s) for n in levels]
    except ValueError as exc:
        raise _bad_input(exc) from None
    return StaffOut(
        model=s.model,
        traffic=s.traffic,
        agents=s.agents,
        scheduled=s.scheduled,
        service_level=s.service_level,
        answer_time_s=s.answer_time_s,
        asa_s=_num(s.asa_s),
        mean_wait_s=_num(s.mean_wait_s),
        p_wait=s.p_wait,
        p_abandon=s.p_abandon,
        occupancy=s.occupancy,
        limiting=list(s.limiting),
        curve=curve,
    )


# --- lines -----------------------------------------------------------------------------------------


class LinesIn(_Load):
    """Lines for a blocking target: Erlang B on the offered traffic, or, with ``agents``, trunk sizing
    behind the agents (IVR + queue wait + talk hold the line). ``retry``: share of blocked callers who
    try again (extended Erlang B)."""

    blocking: Share = 0.01
    agents: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    ivr_s: Seconds = 0.0
    wrap_s: Seconds = 0.0
    queue_wait_s: Seconds | None = None
    patience_s: Annotated[float | None, Field(gt=0, le=86_400)] = None
    retry: Annotated[float | None, Field(ge=0, lt=1)] = None


class LinesPoint(BaseModel):
    """Blocking with ``lines`` lines (a point of the lines-versus-blocking chart)."""

    lines: int
    blocking: float


class TrunkOut(BaseModel):
    """Trunk sizing behind agents."""

    queue_wait_s: float
    line_hold_s: float
    line_traffic: float
    mmnk_positions: int | None
    ivr_ports: int
    mmnk_lines: int | None
    lines_per_agent: float


class LinesOut(BaseModel):
    """Lines needed, the blocking they give, and the blocking curve around them."""

    traffic: float
    line_traffic: float
    lines: int
    blocking: float
    retry_lines: int | None
    retry_blocking: float | None
    trunk: TrunkOut | None
    curve: list[LinesPoint]


@router.post("/lines", response_model=LinesOut)
async def lines(body: LinesIn, actor: Planner) -> LinesOut:
    """Phone lines for a blocking target, and blocking for line counts around the answer."""
    return await asyncio.to_thread(_lines, body)


def _lines(body: LinesIn) -> LinesOut:
    traffic = body.traffic
    try:
        trunk = None
        if body.agents is not None:
            t = size_trunks(
                traffic,
                body.aht_s,
                body.agents,
                body.blocking,
                body.ivr_s,
                body.wrap_s,
                body.queue_wait_s,
                body.patience_s,
            )
            carried, n = t.line_traffic, t.lines
            trunk = TrunkOut(**{f: getattr(t, f) for f in TrunkOut.model_fields})
        else:
            carried, n = traffic, lines_for_blocking(traffic, body.blocking)
        retry_lines = retry_blocking = None
        if body.retry is not None:
            retry_lines = extended_lines_for_blocking(carried, body.blocking, body.retry)
            retry_blocking = extended_erlang_b(carried, retry_lines, body.retry) if carried > 0 else 0.0
    except ValueError as exc:
        raise _bad_input(exc) from None
    low = max(1, math.floor(0.6 * n))
    high = max(n + 3, math.ceil(1.3 * n))
    stride = max(1, math.ceil((high - low + 1) / _MAX_CURVE_POINTS))
    counts = sorted({*range(low, high + 1, stride), n})
    curve = [LinesPoint(lines=k, blocking=erlang_b(carried, k) if carried > 0 else 0.0) for k in counts]
    return LinesOut(
        traffic=traffic,
        line_traffic=carried,
        lines=n,
        blocking=erlang_b(carried, n) if carried > 0 and n > 0 else 0.0,
        retry_lines=retry_lines,
        retry_blocking=retry_blocking,
        trunk=trunk,
        curve=curve,
    )


# --- day -------------------------------------------------------------------------------------------


class IntervalIn(_In):
    """One interval of the forecast."""

    start: datetime
    calls: Annotated[float, Field(ge=0, le=10_000_000)]


class DayIn(_In, _Targets):
    """A forecast of calls per interval (15, 30 or 60 minutes; up to a week of quarter-hours)."""

    intervals: Annotated[list[IntervalIn], Field(min_length=1, max_length=7 * 96)]
    aht_s: Annotated[float, Field(gt=0, le=86_400)] = 180.0
    interval_s: Annotated[int | None, Field(ge=60, le=86_400)] = None
    blocking: Share = 0.01
    ivr_s: Seconds = 0.0
    wrap_s: Seconds = 0.0


class IntervalOut(BaseModel):
    """One interval of the plan."""

    start: datetime
    calls: float
    traffic: float
    agents: int
    scheduled: int
    service_level: float
    asa_s: float | None
    p_abandon: float
    occupancy: float
    lines: int


class DayOut(BaseModel):
    """The staffing curve and its totals."""

    interval_s: int
    total_calls: float
    agent_hours: float
    scheduled_hours: float
    peak_agents: int
    peak_scheduled: int
    lines: int
    service_level: float
    asa_s: float | None
    p_abandon: float
    intervals: list[IntervalOut]
    missing: list[datetime] = Field(
        default_factory=list, description="Starts of intervals between the first and last with no row."
    )


@router.post("/day", response_model=DayOut)
async def day(body: DayIn, actor: Planner) -> DayOut:
    """Agents, scheduled agents and lines per interval of a forecast (the staffing curve)."""
    starts = [i.start for i in body.intervals]
    if any(s.tzinfo is None for s in starts) and any(s.tzinfo is not None for s in starts):
        raise ApiError(400, "mixed-time-zones", "Give every interval start with a time zone, or none")
    if len(set(starts)) != len(starts):
        raise ApiError(400, "duplicate-interval", "Two intervals have the same start")
    forecast = [(i.start, i.calls) for i in body.intervals]
    try:
        target = body.target()
        plan = await asyncio.to_thread(
            plan_day,
            forecast,
            body.aht_s,
            target,
            interval_s=body.interval_s,
            patience_s=body.patience_s,
            blocking=body.blocking,
            ivr_s=body.ivr_s,
            wrap_s=body.wrap_s,
        )
    except IntervalError as exc:
        raise ApiError(400, "invalid-interval", f"intervals[{exc.row}]: {exc}", interval=exc.row) from None
    except ValueError as exc:
        raise _bad_input(exc) from None
    return DayOut(
        interval_s=plan.interval_s,
        total_calls=plan.total_calls,
        agent_hours=plan.agent_hours,
        scheduled_hours=plan.scheduled_hours,
        peak_agents=plan.peak_agents,
        peak_scheduled=plan.peak_scheduled,
        lines=plan.lines,
        service_level=plan.service_level,
        asa_s=_num(plan.asa_s),
        p_abandon=plan.p_abandon,
        intervals=[IntervalOut(**{**r._asdict(), "asa_s": _num(r.asa_s)}) for r in plan.intervals],
        missing=list(plan.missing),
    )


# --- cost ------------------------------------------------------------------------------------------

_COST_DEFAULTS = CostInputs()


class CostIn(_In):
    """Own center versus an outsourcer; every input of the cost model can be changed (defaults:
    docs/planning.md). ``talk_minutes``: monthly operator talk minutes to price."""

    talk_minutes: Annotated[float | None, Field(ge=0, le=1e9)] = None
    currency: Annotated[str, Field(min_length=1, max_length=8)] = _COST_DEFAULTS.currency
    monthly_wage: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.monthly_wage
    payroll_tax_rate: Annotated[float, Field(ge=0, lt=1)] = _COST_DEFAULTS.payroll_tax_rate
    paid_hours_per_month: Annotated[float, Field(gt=0, le=744)] = _COST_DEFAULTS.paid_hours_per_month
    shrinkage: Annotated[float, Field(ge=0, lt=1)] = _COST_DEFAULTS.shrinkage
    open_hours_per_month: Annotated[float, Field(gt=0, le=744)] = _COST_DEFAULTS.open_hours_per_month
    max_occupancy: Annotated[float, Field(gt=0, le=1)] = _COST_DEFAULTS.max_occupancy
    talk_share: Annotated[float, Field(gt=0, le=1)] = _COST_DEFAULTS.talk_share
    talk_time_s: Annotated[float, Field(gt=0, le=86_400)] = _COST_DEFAULTS.talk_time_s
    service_level: Annotated[float, Field(gt=0, le=1)] = _COST_DEFAULTS.service_level
    answer_time_s: Seconds = _COST_DEFAULTS.answer_time_s
    seat_cost: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.seat_cost
    licence_cost: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.licence_cost
    telephony_per_minute: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.telephony_per_minute
    supervisor_ratio: Annotated[float, Field(gt=0)] = _COST_DEFAULTS.supervisor_ratio
    supervisor_monthly_wage: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.supervisor_monthly_wage
    fixed_monthly: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.fixed_monthly
    outsourcer_price_per_minute: Annotated[float, Field(ge=0)] = _COST_DEFAULTS.outsourcer_price_per_minute


class CostAtVolume(BaseModel):
    """Monthly cost of the own center at one volume, and the outsourcer's bill."""

    talk_minutes: float
    operators: int
    supervisors: int
    operators_cost: float
    supervisors_cost: float
    telephony: float
    fixed: float
    total: float
    per_talk_minute: float | None
    outsourced: float
    positions: int
    occupancy: float
    cheaper: Literal["own", "outsourcer", "equal"]


class BreakEvenOut(BaseModel):
    """Smallest monthly talk volume from which the own center is never dearer."""

    talk_minutes: float
    operators: int
    supervisors: int
    own_cost: float


class CostOut(BaseModel):
    """The comparison; ``minutes_per_operator`` at the occupancy ceiling (a large center)."""

    currency: str
    minutes_per_operator: float
    operator_cost: float
    supervisor_cost: float
    break_even: BreakEvenOut | None
    at_volume: CostAtVolume | None


def _at_volume(inputs: CostInputs, minutes: float) -> CostAtVolume:
    c = own_cost(inputs, minutes)
    cheaper: Literal["own", "outsourcer", "equal"] = (
        "own" if c.total < c.outsourced else ("equal" if c.total == c.outsourced else "outsourcer")
    )
    return CostAtVolume(**{**c._asdict(), "per_talk_minute": _num(c.per_talk_minute)}, cheaper=cheaper)


@router.post("/cost", response_model=CostOut)
async def cost(body: CostIn, actor: Planner) -> CostOut:
    """Own center's monthly cost versus the outsourcer's price per talk minute, and the break-even.

    Sizing the own center scans Erlang C staffing levels (up to a second for extreme targets), so it
    runs in a worker thread, off the event loop."""
    return await asyncio.to_thread(_cost, body)


def _cost(body: CostIn) -> CostOut:
    fields = {f.name: getattr(body, f.name) for f in dataclasses.fields(CostInputs)}
    try:
        inputs = CostInputs(**fields)
        be = break_even(inputs)
        at = _at_volume(inputs, body.talk_minutes) if body.talk_minutes is not None else None
    except ValueError as exc:
        raise _bad_input(exc) from None
    return CostOut(
        currency=inputs.currency,
        minutes_per_operator=inputs.minutes_per_operator,
        operator_cost=inputs.operator_cost,
        supervisor_cost=inputs.supervisor_cost,
        break_even=None if be is None else BreakEvenOut(**be._asdict()),
        at_volume=at,
    )


# --- simulate --------------------------------------------------------------------------------------


class SimulateIn(_In):
    """Either one queue (``calls_per_hour``, ``aht_s``, ``agents``, ``patience_s``...) or a full
    ``scenario`` (the TOML/JSON scenario format of docs/planning.md: queues, agent groups, arrivals).

    Bounded: replications × expected contacts ≤ 500,000, agents ≤ 2,000, hours ≤ 24.
    """

    calls_per_hour: Annotated[float | None, Field(gt=0, le=1_000_000)] = None
    aht_s: Annotated[float, Field(gt=0, le=86_400)] = 180.0
    agents: Annotated[int | None, Field(ge=1, le=MAX_SIMULATED_AGENTS)] = None
    patience_s: Annotated[float | None, Field(gt=0, le=86_400)] = None
    hours: Annotated[float, Field(gt=0, le=MAX_SIMULATED_HOURS)] = 8.0
    warmup_s: Annotated[float | None, Field(ge=0, le=86_400)] = None
    answer_time_s: Seconds = 20.0
    handling: Literal["exponential", "lognormal", "fixed"] = "exponential"
    handling_cv: Annotated[float, Field(gt=0, le=10)] = 1.0
    wrap_up_s: Seconds = 0.0
    scenario: dict[str, Any] | None = None
    replications: Annotated[int, Field(ge=2, le=200)] = 20
    seed: Annotated[int, Field(ge=0, le=2**31)] = 0

    @model_validator(mode="after")
    def _one_form(self) -> SimulateIn:
        simple = self.calls_per_hour is not None or self.agents is not None
        if (self.scenario is None) == (not simple):
            raise ValueError("give either calls_per_hour and agents, or a scenario")
        if self.scenario is None and (self.calls_per_hour is None or self.agents is None):
            raise ValueError("give both calls_per_hour and agents")
        return self


class SimulateOut(BaseModel):
    """Means across replications with their 95 % intervals (``low``/``high``); see
    :meth:`frontoffice.wfm.simulation.SimulationResult.as_dict`. ``formula``: Erlang C or A for the
    same single queue, when they apply. ``warnings``: ``queue-never-empties`` when a single queue
    has no more agents than erlangs and callers never hang up (the figures then grow with the hours);
    ``waiting_at_horizon`` and ``waiting_at_end`` count contacts still waiting when arrivals stopped
    and when the run ended."""

    model_config = ConfigDict(extra="allow")

    replications: int
    seed: int
    agents: int
    expected_contacts: float
    formula: dict[str, float | str | None] | None = None


def _scenario(body: SimulateIn) -> Scenario:
    if body.scenario is not None:
        return scenario_from_dict(body.scenario)
    if body.calls_per_hour is None or body.agents is None:  # the model's validator rules this out
        raise ValueError("give calls_per_hour and agents")
    return single_queue_scenario(
        body.calls_per_hour / 3600.0,
        body.aht_s,
        body.agents,
        hours=body.hours,
        warmup_s=body.warmup_s,
        patience_s=body.patience_s,
        answer_time_s=body.answer_time_s,
        handling=body.handling,
        handling_cv=body.handling_cv,
        wrap_up_s=body.wrap_up_s,
    )


def _formula(body: SimulateIn) -> dict[str, float | str | None] | None:
    if body.scenario is not None or body.handling != "exponential" or body.wrap_up_s:
        return None
    if body.calls_per_hour is None or body.agents is None:
        return None
    traffic = body.calls_per_hour * body.aht_s / 3600.0
    if body.patience_s is not None:
        a = erlang_a_metrics(traffic, body.agents, body.aht_s, body.patience_s, body.answer_time_s)
        return {
            "model": "erlang_a",
            "service_level": a.service_level,
            "service_level_answered": a.service_level_answered,
            "asa_s": _num(a.asa_s),
            "abandon_rate": a.p_abandon,
            "occupancy": a.occupancy,
        }
    if body.agents <= traffic:
        return None
    c = erlang_c_metrics(traffic, body.agents, body.aht_s, body.answer_time_s)
    return {
        "model": "erlang_c",
        "service_level": c.service_level,
        "service_level_answered": c.service_level,
        "asa_s": _num(c.asa_s),
        "abandon_rate": 0.0,
        "occupancy": c.occupancy,
    }


@router.post("/simulate", response_model=SimulateOut)
async def simulate(body: SimulateIn, actor: Planner) -> dict[str, Any]:
    """Run the discrete-event simulation through the real routing engine (in a worker thread).

    Too large a request (replications × expected contacts over 500,000, more than 2,000 agents or
    24 hours) is refused with ``simulation-too-large``.
    """
    try:
        scenario = _scenario(body)
    except ValueError as exc:
        raise ApiError(400, "invalid-scenario", str(exc)) from None
    expected = scenario.expected_arrivals()
    work = expected * body.replications
    if work > MAX_SIMULATED_CONTACTS:
        raise ApiError(
            400,
            "simulation-too-large",
            "The simulation is too large: lower the replications, hours or call rate",
            contacts=round(work),
            limit=MAX_SIMULATED_CONTACTS,
        )
    if scenario.agent_count > MAX_SIMULATED_AGENTS or scenario.horizon_s > MAX_SIMULATED_HOURS * 3600:
        raise ApiError(
            400,
            "simulation-too-large",
            "The simulation is too large: at most 2,000 agents and 24 hours",
            agents=scenario.agent_count,
            hours=scenario.horizon_s / 3600,
        )
    max_events = EVENTS_PER_CONTACT_LIMIT * math.ceil(expected) + 10_000
    try:
        result = await asyncio.to_thread(
            run_simulation, scenario, body.replications, body.seed, None, max_events
        )
    except SimulationTooLarge as exc:
        raise ApiError(400, "simulation-too-large", "The simulation does not end", reason=str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, "invalid-scenario", str(exc)) from None
    warnings: list[str] = []
    if body.scenario is None and body.patience_s is None and (body.agents or 0) <= _sim_traffic(body):
        warnings.append("queue-never-empties")  # as the CLI warns: the figures grow with the hours
    return result.as_dict() | {
        "expected_contacts": expected,
        "formula": _formula(body),
        "warnings": warnings,
    }


def _sim_traffic(body: SimulateIn) -> float:
    return (body.calls_per_hour or 0.0) * body.aht_s / 3600.0
