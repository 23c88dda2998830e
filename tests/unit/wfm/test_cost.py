"""Own center versus outsourcer: costs, break-even volume and operators."""

from __future__ import annotations

import dataclasses

import pytest

from frontoffice.wfm import CostInputs, StaffingTarget, break_even, erlang_c_staffing, own_cost
from frontoffice.wfm.cost import MAX_BREAK_EVEN_POSITIONS


def test_operator_capacity_and_costs_follow_the_inputs() -> None:
    inputs = CostInputs(monthly_wage=500, payroll_tax_rate=0.3, seat_cost=100, licence_cost=20)
    assert inputs.minutes_per_operator == pytest.approx(164 * 60 * 0.7 * 0.85 * 0.85)
    assert inputs.operator_cost == pytest.approx(500 * 1.3 + 120)
    c = own_cost(inputs, 3.5 * inputs.minutes_per_operator)
    # 17,420 minutes: 1.41 Erl over 242 open hours need 3 positions for 80/20; 3 × 242 / 114.8 h.
    assert (c.positions, c.operators, c.supervisors) == (3, 7, 1)
    assert c.total == pytest.approx(7 * inputs.operator_cost + inputs.supervisor_cost + c.telephony + c.fixed)
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


def test_a_small_center_is_sized_with_erlang_c_for_its_volume_and_target() -> None:
    # The case: 20,000 talk minutes a month, 150 s talk, 85 % talk share, 242 open hours,
    # 80/20. 1.62 erlangs need 4 positions (Erlang C), open 242 h: 968 position-hours, from
    # operators on the phones 164 h × 70 % = 114.8 h each: 9 operators, not 5.
    inputs = CostInputs()
    c = own_cost(inputs, 20_000)
    traffic = 20_000 * 60 / 0.85 / (242 * 3600)
    assert (
        c.positions
        == erlang_c_staffing(traffic, 150 / 0.85, StaffingTarget(0.8, 20, max_occupancy=0.85)).agents
    )
    assert c.positions == 4
    assert c.operators == 9
    assert c.occupancy == pytest.approx(traffic / 4)


def test_a_large_center_runs_at_the_occupancy_ceiling() -> None:
    inputs = CostInputs()
    volume = 400 * inputs.minutes_per_operator
    c = own_cost(inputs, volume)
    assert c.occupancy == pytest.approx(0.85, abs=0.005)
    assert 400 <= c.operators <= 403


def test_a_stricter_service_target_needs_more_operators_at_small_volume() -> None:
    loose = own_cost(CostInputs(service_level=0.5, answer_time_s=60), 20_000)
    strict = own_cost(CostInputs(service_level=0.9, answer_time_s=10), 20_000)
    assert strict.operators > loose.operators


def test_break_even_agrees_with_a_scan_of_the_erlang_sized_cost() -> None:
    for price in (0.17, 0.25):
        inputs = CostInputs(outsourcer_price_per_minute=price)
        be = break_even(inputs)
        assert be is not None
        step = 50.0
        dearer = [
            v
            for v in (k * step for k in range(1, 8000))
            if own_cost(inputs, v).total > own_cost(inputs, v).outsourced
        ]
        assert dearer and max(dearer) <= be.talk_minutes < max(dearer) + step + 1e-6


def test_break_even_ends_with_no_occupancy_ceiling() -> None:
    inputs = CostInputs(max_occupancy=1.0)
    be = break_even(inputs)
    assert be is not None
    beyond = own_cost(inputs, be.talk_minutes * 1.5)
    assert beyond.total <= beyond.outsourced


def test_a_break_even_beyond_any_center_is_refused_instead_of_scanned_for_ever() -> None:
    # Found by the OpenAPI contract run: a fixed cost of 10^16 a month and a talk of 10^-308 s made
    # the scan run for ever in the request's thread.
    absurd = CostInputs(fixed_monthly=5.7e16, talk_time_s=1.1e-308, seat_cost=2.5e-279)
    with pytest.raises(ValueError, match=f"beyond {MAX_BREAK_EVEN_POSITIONS} positions"):
        break_even(absurd)
    assert break_even(CostInputs()) is not None  # the defaults still break even
