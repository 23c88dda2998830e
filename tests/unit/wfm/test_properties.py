"""Property tests: ranges, monotonicity, limits and minimality across 0.01 to 1,000,000 erlangs."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.wfm import (
    StaffingTarget,
    erlang_a_metrics,
    erlang_a_staffing,
    erlang_b,
    erlang_c_metrics,
    erlang_c_staffing,
    lines_for_blocking,
)

# Log-uniform traffic over the whole supported range.
traffic_range = st.floats(min_value=-2.0, max_value=6.0).map(lambda e: 10.0**e)
moderate_traffic = st.floats(min_value=-2.0, max_value=3.0).map(lambda e: 10.0**e)
spread = st.floats(min_value=-4.0, max_value=4.0)  # agents around the traffic, in sqrt(traffic) units
share = st.floats(min_value=0.05, max_value=0.99)


def agents_near(traffic: float, z: float) -> int:
    return max(1, round(traffic + z * math.sqrt(traffic) + z))


def is_probability(p: float) -> bool:
    return 0.0 <= p <= 1.0  # also false for NaN


@settings(max_examples=200, deadline=None)
@given(traffic_range, spread)
def test_erlang_b_is_a_probability_and_monotone(traffic: float, z: float) -> None:
    n = agents_near(traffic, z)
    b = erlang_b(traffic, n)
    assert is_probability(b)
    assert erlang_b(traffic, n + 1) <= b
    assert erlang_b(traffic * 1.01, n) >= b * (1 - 1e-12)


@settings(max_examples=200, deadline=None)
@given(traffic_range, spread)
def test_erlang_c_is_a_probability_and_monotone(traffic: float, z: float) -> None:
    n = agents_near(traffic, z)
    m = erlang_c_metrics(traffic, n, 180, 20)
    more = erlang_c_metrics(traffic, n + 1, 180, 20)
    heavier = erlang_c_metrics(traffic * 1.01, n, 180, 20)
    for p in (m.p_wait, m.service_level, m.occupancy):
        assert is_probability(p)
    assert not math.isnan(m.asa_s) and m.asa_s >= 0.0
    assert more.p_wait <= m.p_wait and more.service_level >= m.service_level and more.asa_s <= m.asa_s
    assert heavier.p_wait >= m.p_wait * (1 - 1e-12) and heavier.service_level <= m.service_level + 1e-12


@settings(max_examples=60, deadline=None)
@given(
    traffic_range, spread, st.floats(min_value=0.1, max_value=10.0), st.floats(min_value=0.0, max_value=2.0)
)
def test_erlang_a_gives_probabilities_without_nan(
    traffic: float, z: float, patience: float, t: float
) -> None:
    # Patience between a tenth and ten handling times, answer time up to two.
    m = erlang_a_metrics(traffic, agents_near(traffic, z), 180, patience * 180, t * 180)
    for p in (m.p_wait, m.p_abandon, m.service_level, m.service_level_answered, m.occupancy):
        assert is_probability(p)
    assert m.asa_s >= 0.0 and m.mean_wait_s >= 0.0
    assert not math.isnan(m.asa_s) and not math.isnan(m.mean_wait_s)
    assert m.service_level <= 1.0 - m.p_abandon + 1e-12  # only answered calls count as in time


@settings(max_examples=100, deadline=None)
@given(moderate_traffic, spread, st.floats(min_value=0.05, max_value=20.0))
def test_erlang_a_improves_with_agents_and_worsens_with_traffic(
    traffic: float, z: float, patience: float
) -> None:
    n = agents_near(traffic, z)
    m = erlang_a_metrics(traffic, n, 180, patience * 180, 20)
    more = erlang_a_metrics(traffic, n + 1, 180, patience * 180, 20)
    heavier = erlang_a_metrics(traffic * 1.01, n, 180, patience * 180, 20)
    tol = 1e-12
    assert more.service_level >= m.service_level - tol
    assert more.service_level_answered >= m.service_level_answered - tol
    assert more.p_abandon <= m.p_abandon + tol and more.asa_s <= m.asa_s * (1 + tol)
    assert more.occupancy <= m.occupancy + tol
    assert heavier.service_level <= m.service_level + tol and heavier.p_abandon >= m.p_abandon - tol


@settings(max_examples=100, deadline=None)
@given(moderate_traffic, st.floats(min_value=0.2, max_value=4.0))
def test_erlang_a_tends_to_erlang_c_as_patience_grows(traffic: float, z: float) -> None:
    n = math.floor(traffic) + 1 + math.ceil(z * math.sqrt(traffic))
    c = erlang_c_metrics(traffic, n, 180, 20)
    a = erlang_a_metrics(traffic, n, 180, 1e14, 20)
    assert math.isclose(a.p_wait, c.p_wait, rel_tol=1e-6, abs_tol=1e-12)
    assert math.isclose(a.service_level, c.service_level, rel_tol=1e-6, abs_tol=1e-12)
    assert math.isclose(a.asa_s, c.asa_s, rel_tol=1e-6, abs_tol=1e-9)
    assert a.p_abandon < 1e-6


@settings(max_examples=300, deadline=None)
@given(
    traffic_range,
    share,
    st.floats(min_value=0.0, max_value=120.0),
    st.one_of(st.none(), st.floats(min_value=0.5, max_value=0.99)),
    st.one_of(st.none(), st.floats(min_value=0.5, max_value=120.0)),
)
def test_erlang_c_staffing_is_the_true_minimum(
    traffic: float, level: float, t: float, cap: float | None, asa: float | None
) -> None:
    target = StaffingTarget(level, t, asa_s=asa, max_occupancy=cap)
    s = erlang_c_staffing(traffic, 180, target)
    n = s.agents

    def meets(k: int) -> bool:
        m = erlang_c_metrics(traffic, k, 180, t)
        return (
            k > traffic
            and m.service_level >= level
            and (asa is None or m.asa_s <= asa)
            and (cap is None or traffic / k <= cap)
        )

    assert meets(n)
    assert not meets(n - 1)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=-2.0, max_value=3.3).map(lambda e: 10.0**e),
    share,
    st.floats(min_value=0.2, max_value=20.0),
    st.one_of(st.none(), st.floats(min_value=0.005, max_value=0.5)),
)
def test_erlang_a_staffing_is_the_true_minimum(
    traffic: float, level: float, patience: float, abandon: float | None
) -> None:
    target = StaffingTarget(level, 20, abandon_rate=abandon)
    s = erlang_a_staffing(traffic, 180, patience * 180, target)

    def meets(k: int) -> bool:
        if k < 1:
            return False
        m = erlang_a_metrics(traffic, k, 180, patience * 180, 20)
        return m.service_level >= level and (abandon is None or m.p_abandon <= abandon)

    assert meets(s.agents)
    assert not meets(s.agents - 1)


@settings(max_examples=200, deadline=None)
@given(traffic_range, st.floats(min_value=0.001, max_value=0.5))
def test_lines_for_blocking_is_the_true_minimum(traffic: float, target: float) -> None:
    n = lines_for_blocking(traffic, target)
    assert erlang_b(traffic, n) <= target
    assert n == 0 or erlang_b(traffic, n - 1) > target
