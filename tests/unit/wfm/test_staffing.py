"""Minimum staffing: published cases, and the answer is the smallest N that meets the target."""

from __future__ import annotations

import pytest

from frontoffice.wfm import (
    StaffingTarget,
    erlang_a_metrics,
    erlang_a_staffing,
    erlang_c_metrics,
    erlang_c_staffing,
    required_agents,
    scheduled_agents,
)


def test_cran_case_needs_fourteen_agents() -> None:
    s = erlang_c_staffing(10.0, 180, StaffingTarget(0.8, 20))
    assert s.agents == 14
    assert s.service_level == pytest.approx(0.88835, abs=5e-6)
    assert s.limiting == ("service_level",)


def test_pyworkforce_case_with_shrinkage_and_occupancy_cap_needs_twenty_scheduled() -> None:
    s = erlang_c_staffing(10.0, 180, StaffingTarget(0.8, 20, max_occupancy=0.85, shrinkage=0.3))
    assert (s.agents, s.scheduled) == (14, 20)


def test_erlang_a_finds_the_answer_below_the_traffic() -> None:
    # pyworkforce's Erlang A search starts at the traffic and answers 300; 276 is enough.
    s = erlang_a_staffing(300.0, 180, 120, StaffingTarget(0.8, 20))
    assert s.agents == 276
    assert erlang_a_metrics(300.0, 275, 180, 120, 20).service_level < 0.8
    assert s.model == "erlang_a"


def brute_force_erlang_c(traffic: float, aht: float, target: StaffingTarget) -> int:
    n = 1
    while True:
        m = erlang_c_metrics(traffic, n, aht, target.answer_time_s)
        ok = n > traffic
        if target.service_level is not None:
            ok = ok and m.service_level >= target.service_level
        if target.asa_s is not None:
            ok = ok and m.asa_s <= target.asa_s
        if target.max_occupancy is not None:
            ok = ok and traffic / n <= target.max_occupancy
        if ok:
            return n
        n += 1


@pytest.mark.parametrize("traffic", [0.01, 0.9, 1.0, 2.5, 10.0, 47.3, 150.0, 300.0, 999.5])
@pytest.mark.parametrize(
    "target",
    [
        StaffingTarget(0.8, 20),
        StaffingTarget(0.95, 10),
        StaffingTarget(None, asa_s=15),
        StaffingTarget(0.8, 20, asa_s=5),
        StaffingTarget(None, max_occupancy=0.9),
        StaffingTarget(0.7, 60, max_occupancy=0.8),
    ],
)
def test_erlang_c_search_equals_a_scan_from_one_agent(traffic: float, target: StaffingTarget) -> None:
    assert erlang_c_staffing(traffic, 180, target).agents == brute_force_erlang_c(traffic, 180, target)


def test_erlang_a_abandonment_and_asa_targets() -> None:
    target = StaffingTarget(None, asa_s=30, abandon_rate=0.03)
    s = erlang_a_staffing(120.0, 240, 90, target)
    m = erlang_a_metrics(120.0, s.agents, 240, 90)
    before = erlang_a_metrics(120.0, s.agents - 1, 240, 90)
    assert m.p_abandon <= 0.03 and m.asa_s <= 30
    assert before.p_abandon > 0.03 or before.asa_s > 30
    assert set(s.limiting) <= {"abandon_rate", "asa"} and s.limiting


def test_required_agents_picks_the_model() -> None:
    target = StaffingTarget(0.8, 20)
    assert required_agents(50.0, 180, target).model == "erlang_c"
    assert required_agents(50.0, 180, target, patience_s=60).model == "erlang_a"
    assert required_agents(50.0, 180, target, patience_s=float("inf")).model == "erlang_c"


def test_occupancy_cap_alone_and_the_limiting_target() -> None:
    s = erlang_c_staffing(90.0, 180, StaffingTarget(None, max_occupancy=0.9))
    assert s.agents == 100 and s.limiting == ("max_occupancy",)
    tiny = erlang_c_staffing(0.01, 180, StaffingTarget(0.8, 20))
    assert tiny.agents == 1 and tiny.limiting == ("stability",)


def test_no_traffic_needs_no_agents() -> None:
    assert erlang_c_staffing(0.0, 180, StaffingTarget()).agents == 0
    assert erlang_a_staffing(0.0, 180, 60, StaffingTarget()).agents == 0


def test_scheduled_agents_ignores_float_noise() -> None:
    assert scheduled_agents(14, 0.3) == 20  # 14 / 0.7 = 20.000000000000004 in floats
    assert scheduled_agents(15, 0.3) == 22
    assert scheduled_agents(7, 0.0) == 7


def test_invalid_targets_are_refused() -> None:
    with pytest.raises(ValueError):
        StaffingTarget(1.0)
    with pytest.raises(ValueError):
        StaffingTarget(None)
    with pytest.raises(ValueError):
        StaffingTarget(0.8, shrinkage=1.0)
    with pytest.raises(ValueError):
        erlang_c_staffing(10.0, 180, StaffingTarget(0.8, abandon_rate=0.05))
    with pytest.raises(ValueError):
        erlang_a_staffing(10.0, 180, 60, StaffingTarget(None, max_occupancy=0.8))


def test_large_traffic_is_sized_quickly_and_exactly() -> None:
    target = StaffingTarget(0.8, 20)
    c = erlang_c_staffing(8333.0, 180, target)
    assert erlang_c_metrics(8333.0, c.agents, 180, 20).service_level >= 0.8
    assert erlang_c_metrics(8333.0, c.agents - 1, 180, 20).service_level < 0.8
    big = erlang_c_staffing(1e6, 180, target)
    assert erlang_c_metrics(1e6, big.agents - 1, 180, 20).service_level < 0.8 <= big.service_level
