"""Workforce planning: Erlang B, C and A, M/M/N/K, staffing, trunks, day plans, forecasts, costs,
and a discrete-event simulation that drives the real routing engine (``simulation``), and the
outbound dialler's pacer with it (``outbound``).

Pure Python with the standard library only (the simulations also import
``frontoffice.domain.routing`` and ``frontoffice.domain.dialer``); ``frontoffice.wfm.cli`` is the one
module that does I/O. Traffic
is in erlangs and times in seconds throughout. See ``docs/planning.md``.
"""

from frontoffice.wfm.cost import BreakEven, CostBreakdown, CostInputs, break_even, own_cost
from frontoffice.wfm.dayplan import DayPlan, IntervalError, IntervalPlan, infer_interval_s, plan_day
from frontoffice.wfm.erlang_a import ErlangAMetrics, erlang_a_metrics
from frontoffice.wfm.erlang_b import (
    erlang_b,
    extended_erlang_b,
    extended_lines_for_blocking,
    lines_for_blocking,
    traffic_for_blocking,
)
from frontoffice.wfm.erlang_c import (
    ErlangCMetrics,
    average_speed_of_answer,
    erlang_c,
    erlang_c_metrics,
    occupancy,
    service_level,
)
from frontoffice.wfm.forecast import (
    Backtest,
    Forecast,
    IntervalForecast,
    WeekError,
    backtest,
    counts_from_arrivals,
    forecast_calls,
    infer_history_interval_s,
)
from frontoffice.wfm.mmnk import MMNKMetrics, capacity_for_blocking, mmnk_metrics
from frontoffice.wfm.simulation import (
    AgentGroup,
    ArrivalStream,
    Duration,
    QueueEstimates,
    Scenario,
    SimulationResult,
    arrivals_from_forecast,
    scenario_from_dict,
    simulate,
    single_queue_scenario,
)
from frontoffice.wfm.staffing import (
    Staffing,
    StaffingTarget,
    erlang_a_staffing,
    erlang_c_staffing,
    required_agents,
    scheduled_agents,
)
from frontoffice.wfm.stats import Estimate, t_quantile
from frontoffice.wfm.trunks import TrunkPlan, line_traffic, size_trunks

__all__ = [
    "AgentGroup",
    "ArrivalStream",
    "Backtest",
    "BreakEven",
    "CostBreakdown",
    "CostInputs",
    "DayPlan",
    "Duration",
    "ErlangAMetrics",
    "ErlangCMetrics",
    "Estimate",
    "Forecast",
    "IntervalError",
    "IntervalForecast",
    "IntervalPlan",
    "MMNKMetrics",
    "QueueEstimates",
    "Scenario",
    "SimulationResult",
    "Staffing",
    "StaffingTarget",
    "TrunkPlan",
    "WeekError",
    "arrivals_from_forecast",
    "average_speed_of_answer",
    "backtest",
    "break_even",
    "capacity_for_blocking",
    "counts_from_arrivals",
    "erlang_a_metrics",
    "erlang_a_staffing",
    "erlang_b",
    "erlang_c",
    "erlang_c_metrics",
    "erlang_c_staffing",
    "extended_erlang_b",
    "extended_lines_for_blocking",
    "forecast_calls",
    "infer_history_interval_s",
    "infer_interval_s",
    "line_traffic",
    "lines_for_blocking",
    "mmnk_metrics",
    "occupancy",
    "own_cost",
    "plan_day",
    "required_agents",
    "scenario_from_dict",
    "scheduled_agents",
    "service_level",
    "simulate",
    "single_queue_scenario",
    "size_trunks",
    "t_quantile",
    "traffic_for_blocking",
]
