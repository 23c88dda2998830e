"""Own center versus outsourcer: costs, break-even volume and operators."""

from __future__ import annotations

import dataclasses

import pytest

from frontoffice.wfm import CostInputs, break_even, own_cost


def test_operator_capacity_and_costs_follow_the_inputs() -> None:
    inputs = CostInputs(monthly_wage=500, payroll_tax_rate=0.3, seat_cost=100, licence_cost=20)
    assert inputs.minutes_per_operator == pytest.approx(164 * 60 * 0.7 * 0.85 * 0.85)
    assert inputs.operator_cost == pytest.approx(500 * 1.3 + 120)
    c = own_cost(inputs, 3.5 * inputs.minutes_per_operator)
    assert (c.operators, c.supervisors) == (4, 1)
    assert c.total == pytest.approx(4 * inputs.operator_cost + inputs.supervisor_cost + c.telephony + c.fixed)
    assert c.outsourced == pytest.approx(0.17 * c.talk_minutes)


def test_break_even_is_where_the_own_center_stops_being_dearer() -> None:
    inputs = CostInputs()
    be = break_even(inputs)
    assert be is not None
    assert own_cost(inputs, be.talk_minutes).total <= own_cost(inputs, be.talk_minutes).outsourced + 1e-6
    # Never dearer beyond it, somewhere dearer just before it (scan on a fine grid).
    step = inputs.minutes_per_operator / 7
    volume = be.talk_minutes
    for _ in range(2000):
        c = own_cost(inputs, volume)
        assert c.total <= c.outsourced + 1e-6
        volume += step
    before = own_cost(inputs, be.talk_minutes - 1.0)
    assert before.total > before.outsourced
    assert own_cost(inputs, be.talk_minutes).operators == be.operators


def test_higher_outsourcer_prices_break_even_sooner_and_low_ones_never() -> None:
    volumes = []
    for price in (0.16, 0.17, 0.18, 0.20):
        be = break_even(dataclasses.replace(CostInputs(), outsourcer_price_per_minute=price))
        assert be is not None
        volumes.append(be.talk_minutes)
    assert volumes == sorted(volumes, reverse=True)
    assert break_even(dataclasses.replace(CostInputs(), outsourcer_price_per_minute=0.15)) is None


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError):
        CostInputs(shrinkage=1.0)
    with pytest.raises(ValueError):
        CostInputs(monthly_wage=-1)
    with pytest.raises(ValueError):
        own_cost(CostInputs(), -5)
