"""Cost model: running your own center versus paying an outsourcer per operator talk minute.

Volume is measured as the outsourcer bills it: operator talk minutes per month. The own center is
sized the way a planner sizes it: the month's handled time over the open hours is the offered
traffic (``talk minutes / talk share`` of handling over ``open hours``; talk share: talk time /
handling time, since wrap-up is handled time the outsourcer does not bill), Erlang C gives the
positions on the phones that meet the service target with occupancy at most the ceiling, and
operators are the people who keep those positions staffed through the open hours:
``ceil(positions × open hours / (paid hours × (1 - shrinkage)))``. A small center needs spare
capacity to answer in time (4 positions for 1.6 erlangs at 80/20), a large one runs at the ceiling:
a fixed occupancy at every volume flatters a small own center. Operators and supervisors are whole
people. Every input has a default and can be changed.

Own cost per month = operators × (wage × (1 + payroll tax) + seat + licence)
                   + supervisors × (supervisor wage × (1 + payroll tax) + seat + licence)
                   + telephony per talk minute × volume + fixed overhead.

Own cost is a staircase (a new position whenever the traffic outgrows the last) under the
outsourcer's straight line, so the break-even volume is the smallest volume from which the own
center is never dearer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from frontoffice.wfm.staffing import StaffingTarget, erlang_c_staffing

__all__ = ["MAX_BREAK_EVEN_POSITIONS", "BreakEven", "CostBreakdown", "CostInputs", "break_even", "own_cost"]

# The most traffic a number of positions carries is found to 1e-12 of itself (a fraction of a talk
# minute a month at any size), in at most 60 halvings.
_BISECTION_STEPS = 60
_BISECTION_TOLERANCE = 1e-12
# Slack for whole-people rounding: 14 / 0.7 is 20 operators, not 21 from floating-point noise.
_ROUNDING_SLACK = 1e-9
# The largest own center the break-even search sizes: far beyond any contact center (the largest run
# tens of thousands of positions). Inputs whose break-even lies further (a fixed cost of 10^16 a
# month, a margin of 10^-300 a minute) are refused rather than scanned for ever.
MAX_BREAK_EVEN_POSITIONS = 100_000


@dataclass(frozen=True, slots=True)
class CostInputs:
    """Everything the comparison depends on, per month, in one currency.

    The defaults describe a modest regional center, in USD; replace them with your own figures.
    Each field's ``metadata["help"]`` describes it (the command line shows it).
    """

    currency: str = field(default="USD", metadata={"help": "Currency of every amount, for the printout."})
    monthly_wage: float = field(default=450.0, metadata={"help": "Gross monthly wage of an operator."})
    payroll_tax_rate: float = field(
        default=0.302,
        metadata={"help": "Employer's payroll taxes and contributions, share of wages (30.2% in Russia)."},
    )
    paid_hours_per_month: float = field(
        default=164.0, metadata={"help": "Paid hours of a full-time operator per month."}
    )
    open_hours_per_month: float = field(
        default=242.0,
        metadata={"help": "Hours a month the center answers (22 days × 11 h); the load is spread over them."},
    )
    shrinkage: float = field(
        default=0.30,
        metadata={"help": "Share of paid time off the phones: breaks, training, meetings, absence."},
    )
    max_occupancy: float = field(
        default=0.85,
        metadata={"help": "Occupancy ceiling: the busiest share of time on the phones people sustain."},
    )
    talk_share: float = field(
        default=0.85,
        metadata={"help": "Talk time as a share of handling time (wrap-up is not billed)."},
    )
    talk_time_s: float = field(default=150.0, metadata={"help": "Mean talk time per call, s."})
    service_level: float = field(
        default=0.8, metadata={"help": "Service target: share of calls answered within answer-time-s."}
    )
    answer_time_s: float = field(default=20.0, metadata={"help": "Service target: answer time, s."})
    seat_cost: float = field(
        default=80.0,
        metadata={"help": "Workplace per person: rent, furniture, computer, headset, per month."},
    )
    licence_cost: float = field(
        default=15.0, metadata={"help": "Software licences per person per month (CRM, recording, office)."}
    )
    telephony_per_minute: float = field(default=0.005, metadata={"help": "Carrier charge per talk minute."})
    supervisor_ratio: float = field(default=15.0, metadata={"help": "Operators per supervisor."})
    supervisor_monthly_wage: float = field(
        default=750.0, metadata={"help": "Gross monthly wage of a supervisor."}
    )
    fixed_monthly: float = field(
        default=1500.0, metadata={"help": "Overhead independent of size: management, IT, HR, accounting."}
    )
    outsourcer_price_per_minute: float = field(
        default=0.17,
        metadata={"help": "Outsourcer's price per operator talk minute (the lecture quotes 0.15–0.20)."},
    )

    def __post_init__(self) -> None:
        for name in ("shrinkage", "payroll_tax_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("max_occupancy", "talk_share", "service_level"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("paid_hours_per_month", "open_hours_per_month", "supervisor_ratio", "talk_time_s"):
            value = getattr(self, name)
            if not (value > 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (self.answer_time_s >= 0.0 and math.isfinite(self.answer_time_s)):
            raise ValueError(f"answer_time_s must be a finite number >= 0, got {self.answer_time_s!r}")
        costs = (
            self.monthly_wage,
            self.seat_cost,
            self.licence_cost,
            self.telephony_per_minute,
            self.supervisor_monthly_wage,
            self.fixed_monthly,
            self.outsourcer_price_per_minute,
        )
        if any(not (c >= 0.0 and math.isfinite(c)) for c in costs):
            raise ValueError("costs and prices must be finite and >= 0")

    @property
    def handling_time_s(self) -> float:
        """Mean handling time per call: talk time over the talk share."""
        return self.talk_time_s / self.talk_share

    @property
    def operators_per_position(self) -> float:
        """People who keep one position on the phones staffed through the open hours."""
        return self.open_hours_per_month / (self.paid_hours_per_month * (1.0 - self.shrinkage))

    @property
    def minutes_per_operator(self) -> float:
        """Talk minutes one operator delivers per month at the occupancy ceiling (a large center)."""
        return (
            self.paid_hours_per_month * 60.0 * (1.0 - self.shrinkage) * self.max_occupancy * self.talk_share
        )

    @property
    def operator_cost(self) -> float:
        """Monthly cost of one operator: loaded wage, seat and licence."""
        return self.monthly_wage * (1.0 + self.payroll_tax_rate) + self.seat_cost + self.licence_cost

    @property
    def supervisor_cost(self) -> float:
        """Monthly cost of one supervisor: loaded wage, seat and licence."""
        return (
            self.supervisor_monthly_wage * (1.0 + self.payroll_tax_rate) + self.seat_cost + self.licence_cost
        )

    def traffic(self, talk_minutes: float) -> float:
        """Offered erlangs during the open hours for ``talk_minutes`` a month."""
        return talk_minutes * 60.0 / self.talk_share / (self.open_hours_per_month * 3600.0)

    def talk_minutes(self, traffic: float) -> float:
        """Monthly talk minutes of ``traffic`` erlangs over the open hours (inverse of :meth:`traffic`)."""
        return traffic * self.open_hours_per_month * 3600.0 * self.talk_share / 60.0

    def target(self) -> StaffingTarget:
        """The service target and occupancy ceiling the own center is sized for."""
        return StaffingTarget(self.service_level, self.answer_time_s, max_occupancy=self.max_occupancy)


class CostBreakdown(NamedTuple):
    """Monthly cost of the own center at one volume, and the outsourcer's bill for it.

    ``positions``: agents on the phones during the open hours (Erlang C for the target);
    ``occupancy``: the share of their time spent handling calls.
    """

    talk_minutes: float
    operators: int
    supervisors: int
    operators_cost: float
    supervisors_cost: float
    telephony: float
    fixed: float
    total: float
    per_talk_minute: float
    outsourced: float
    positions: int
    occupancy: float


class BreakEven(NamedTuple):
    """Smallest monthly talk volume from which the own center is never dearer than the outsourcer."""

    talk_minutes: float
    operators: int
    supervisors: int
    own_cost: float


def _operators(inputs: CostInputs, positions: int) -> int:
    return math.ceil(positions * inputs.operators_per_position - _ROUNDING_SLACK) if positions else 0


def _staff_cost(inputs: CostInputs, operators: int) -> tuple[int, float]:
    supervisors = math.ceil(operators / inputs.supervisor_ratio - _ROUNDING_SLACK) if operators else 0
    return supervisors, operators * inputs.operator_cost + supervisors * inputs.supervisor_cost


def _positions(inputs: CostInputs, traffic: float) -> int:
    return erlang_c_staffing(traffic, inputs.handling_time_s, inputs.target()).agents


def own_cost(inputs: CostInputs, talk_minutes: float) -> CostBreakdown:
    """Own center's monthly cost for ``talk_minutes`` operator talk minutes per month."""
    if not (talk_minutes >= 0.0 and math.isfinite(talk_minutes)):
        raise ValueError(f"talk_minutes must be a finite number >= 0, got {talk_minutes!r}")
    traffic = inputs.traffic(talk_minutes)
    positions = _positions(inputs, traffic) if talk_minutes > 0.0 else 0
    operators = _operators(inputs, positions)
    supervisors, staff = _staff_cost(inputs, operators)
    telephony = inputs.telephony_per_minute * talk_minutes
    total = staff + telephony + inputs.fixed_monthly
    return CostBreakdown(
        talk_minutes=talk_minutes,
        operators=operators,
        supervisors=supervisors,
        operators_cost=operators * inputs.operator_cost,
        supervisors_cost=supervisors * inputs.supervisor_cost,
        telephony=telephony,
        fixed=inputs.fixed_monthly,
        total=total,
        per_talk_minute=total / talk_minutes if talk_minutes > 0.0 else math.inf,
        outsourced=inputs.outsourcer_price_per_minute * talk_minutes,
        positions=positions,
        occupancy=traffic / positions if positions else 0.0,
    )


def _most_traffic(inputs: CostInputs, positions: int) -> float:
    """The most erlangs ``positions`` agents carry within the target (bisection on the staffing)."""
    low, high = 0.0, positions * inputs.max_occupancy
    if _positions(inputs, high) <= positions:
        return high
    for _ in range(_BISECTION_STEPS):
        if high - low <= _BISECTION_TOLERANCE * high:
            break
        middle = (low + high) / 2.0
        if _positions(inputs, middle) <= positions:
            low = middle
        else:
            high = middle
    return low


def break_even(inputs: CostInputs) -> BreakEven | None:
    """The break-even volume, or ``None`` when the outsourcer stays cheaper at every volume.

    With N positions (volumes ``(V(N-1), V(N)]``, ``V(N)`` the most N positions carry within the
    target) the own cost is ``K(N) + t·V`` and the outsourcer's ``p·V``, so the own center is no
    dearer in that block from ``K(N)/(p - t)`` on. The occupancy ``ρ(N) = A(N)/N`` a block reaches
    grows with N (Erlang C's economy of scale) up to the ceiling, so from block N on a position
    carries at least ``ρ(N)·c`` talk minutes (c: those of one erlang) and saves ``(p - t)·ρ(N)·c``
    against costing at most ``r·(operator + supervisor/ratio)`` (r people per position). If even at
    the ceiling that does not pay, there is no break-even; otherwise, once it pays at ``ρ(N)``, no
    block past a bound is dearer anywhere, and the blocks up to it are scanned. Raises
    ``ValueError`` when that bound lies beyond :data:`MAX_BREAK_EVEN_POSITIONS` positions.
    """
    margin = inputs.outsourcer_price_per_minute - inputs.telephony_per_minute
    if margin <= 0.0:
        return None
    erlang_minutes = inputs.talk_minutes(1.0)  # c
    r = inputs.operators_per_position
    person = inputs.operator_cost + inputs.supervisor_cost / inputs.supervisor_ratio
    if r * person - margin * erlang_minutes * inputs.max_occupancy >= 0.0:
        return None
    found: BreakEven | None = None
    previous_end = 0.0  # V(N - 1)
    capped = False  # the ceiling binds: A(N) = N × ceiling from here on
    n = 0
    while True:
        n += 1
        if n > MAX_BREAK_EVEN_POSITIONS:
            raise ValueError(
                f"the break-even lies beyond {MAX_BREAK_EVEN_POSITIONS} positions: "
                "check the fixed cost, the prices and the talk time"
            )
        ceiling_traffic = n * inputs.max_occupancy
        most = ceiling_traffic if capped else _most_traffic(inputs, n)
        capped = most >= ceiling_traffic * (1.0 - _ROUNDING_SLACK)
        end = inputs.talk_minutes(most)
        operators = _operators(inputs, n)
        supervisors, staff = _staff_cost(inputs, operators)
        fixed_part = staff + inputs.fixed_monthly
        v = fixed_part / margin
        if v > previous_end:  # dearer somewhere in this block
            if v <= end:
                found = BreakEven(v, operators, supervisors, fixed_part + inputs.telephony_per_minute * v)
            else:  # dearer throughout: the break-even is at least the start of the next block
                next_operators = _operators(inputs, n + 1)
                next_supervisors, next_staff = _staff_cost(inputs, next_operators)
                found = BreakEven(
                    end,
                    next_operators,
                    next_supervisors,
                    next_staff + inputs.fixed_monthly + inputs.telephony_per_minute * end,
                )
        previous_end = end
        # Block M is dearer somewhere only if K(M) > margin·V(M-1) >= margin·ρ(n)·c·(M-1), with
        # K(M) <= (M·r + 1)·person + supervisor + fixed: impossible for every M > n from `bound` on.
        saving = margin * erlang_minutes * most / n
        slope = r * person - saving
        if slope < 0.0:
            bound = (person + inputs.supervisor_cost + inputs.fixed_monthly + saving) / -slope
            if n >= bound:
                break
    return found if found is not None else BreakEven(0.0, 0, 0, 0.0)
