"""Cost model: running your own center versus paying an outsourcer per operator talk minute.

Volume is measured as the outsourcer bills it: operator talk minutes per month. An own operator
delivers ``paid hours × 60 × (1 - shrinkage) × occupancy × talk share`` talk minutes a month
(occupancy: busy share of the time on the phones, as the Erlang models give it; talk share: talk
time / handling time, since wrap-up is handled time the outsourcer does not bill). Operators and
supervisors are whole people. Every input has a default and can be changed.

Own cost per month = operators × (wage × (1 + payroll tax) + seat + licence)
                   + supervisors × (supervisor wage × (1 + payroll tax) + seat + licence)
                   + telephony per talk minute × volume + fixed overhead.

Own cost is a staircase (a new operator every ``capacity`` minutes) under the outsourcer's straight
line, so the break-even volume is the smallest volume from which the own center is never dearer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["BreakEven", "CostBreakdown", "CostInputs", "break_even", "own_cost"]


@dataclass(frozen=True, slots=True)
class CostInputs:
    """Everything the comparison depends on, per month, in one currency.

    The defaults describe a modest regional center, in USD; replace them with your own figures.
    """

    monthly_wage: float = 450.0
    """Gross monthly wage of an operator."""
    payroll_tax_rate: float = 0.302
    """Employer's payroll taxes and contributions, as a share of wages (30.2 % in Russia)."""
    paid_hours_per_month: float = 164.0
    """Paid hours of a full-time operator per month."""
    shrinkage: float = 0.30
    """Share of paid time off the phones: breaks, training, meetings, absence."""
    occupancy: float = 0.85
    """Share of the time on the phones spent handling calls (from the staffing model)."""
    talk_share: float = 0.85
    """Talk time as a share of handling time (the rest is wrap-up, which is not billed)."""
    seat_cost: float = 80.0
    """Workplace per person: rent, furniture, computer, headset, amortised per month."""
    licence_cost: float = 15.0
    """Software licences per person per month (CRM, recording, office)."""
    telephony_per_minute: float = 0.005
    """Carrier charge per talk minute."""
    supervisor_ratio: float = 15.0
    """Operators per supervisor."""
    supervisor_monthly_wage: float = 750.0
    """Gross monthly wage of a supervisor."""
    fixed_monthly: float = 1500.0
    """Overhead independent of size: management, IT, HR, accounting."""
    outsourcer_price_per_minute: float = 0.17
    """Outsourcer's price per operator talk minute (the lecture quotes 0.15–0.20)."""

    def __post_init__(self) -> None:
        for name in ("shrinkage", "payroll_tax_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("occupancy", "talk_share"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if self.paid_hours_per_month <= 0.0 or self.supervisor_ratio <= 0.0:
            raise ValueError("paid_hours_per_month and supervisor_ratio must be > 0")
        costs = (
            self.monthly_wage,
            self.seat_cost,
            self.licence_cost,
            self.telephony_per_minute,
            self.supervisor_monthly_wage,
            self.fixed_monthly,
            self.outsourcer_price_per_minute,
        )
        if any(c < 0.0 or not math.isfinite(c) for c in costs):
            raise ValueError("costs and prices must be finite and >= 0")

    @property
    def minutes_per_operator(self) -> float:
        """Talk minutes one operator delivers per month."""
        return self.paid_hours_per_month * 60.0 * (1.0 - self.shrinkage) * self.occupancy * self.talk_share

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


class CostBreakdown(NamedTuple):
    """Monthly cost of the own center at one volume, and the outsourcer's bill for it."""

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


class BreakEven(NamedTuple):
    """Smallest monthly talk volume from which the own center is never dearer than the outsourcer."""

    talk_minutes: float
    operators: int
    supervisors: int
    own_cost: float


def _staff_cost(inputs: CostInputs, operators: int) -> tuple[int, float]:
    supervisors = math.ceil(operators / inputs.supervisor_ratio - 1e-9) if operators else 0
    return supervisors, operators * inputs.operator_cost + supervisors * inputs.supervisor_cost


def own_cost(inputs: CostInputs, talk_minutes: float) -> CostBreakdown:
    """Own center's monthly cost for ``talk_minutes`` operator talk minutes per month."""
    if not (talk_minutes >= 0.0 and math.isfinite(talk_minutes)):
        raise ValueError(f"talk_minutes must be >= 0, got {talk_minutes!r}")
    operators = math.ceil(talk_minutes / inputs.minutes_per_operator - 1e-9) if talk_minutes > 0.0 else 0
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
    )


def break_even(inputs: CostInputs) -> BreakEven | None:
    """The break-even volume, or ``None`` when the outsourcer stays cheaper at every volume.

    With n operators (volumes in ``(cap·(n-1), cap·n]``) the own cost is ``K(n) + t·V`` and the
    outsourcer's ``p·V``, so the own center is no dearer from ``v_n = K(n)/(p - t)`` on. Each
    operator saves ``(p - t)·cap`` against costing about ``operator + supervisor/ratio``; if that
    does not pay, there is no break-even. Otherwise every block past ``n_safe`` is cheaper from
    its first minute, and the blocks below are scanned down from there.
    """
    cap = inputs.minutes_per_operator
    margin = inputs.outsourcer_price_per_minute - inputs.telephony_per_minute
    if margin <= 0.0:
        return None
    slope = inputs.operator_cost + inputs.supervisor_cost / inputs.supervisor_ratio - margin * cap
    if slope >= 0.0:
        return None
    # K(n) - margin·cap·(n-1) <= n·slope + supervisor_cost + fixed + margin·cap <= 0 beyond n_safe.
    n_safe = max(1, math.ceil((inputs.supervisor_cost + inputs.fixed_monthly + margin * cap) / -slope))
    for n in range(n_safe, 0, -1):
        supervisors, staff = _staff_cost(inputs, n)
        fixed_part = staff + inputs.fixed_monthly
        v = fixed_part / margin
        if v <= cap * (n - 1):
            continue  # the whole block is cheaper in-house; the break-even lies lower
        if v <= cap * n:
            return BreakEven(v, n, supervisors, fixed_part + inputs.telephony_per_minute * v)
        # Block n is dearer throughout; block n + 1 is cheaper from its first minute.
        supervisors, staff = _staff_cost(inputs, n + 1)
        start = cap * n
        return BreakEven(
            start, n + 1, supervisors, staff + inputs.fixed_monthly + inputs.telephony_per_minute * start
        )
    return BreakEven(0.0, 0, 0, 0.0)  # nothing costs anything in-house: no dearer at any volume
