"""Erlang C against the CRAN ErlangC / pyworkforce examples and the M/M/N chain."""

from __future__ import annotations

import math

import pytest

from frontoffice.wfm import (
    average_speed_of_answer,
    erlang_c,
    erlang_c_metrics,
    occupancy,
    service_level,
)
from tests.unit.wfm.chains import answered_within, stationary

# 100 calls per 30 minutes, 180 s handling: 10 erlangs, 20 s answer target.
TRAFFIC = 100 / 1800 * 180


def test_cran_erlangc_readme_example() -> None:
    assert pytest.approx(10.0) == TRAFFIC
    eleven = erlang_c_metrics(TRAFFIC, 11, 180, 20)
    assert eleven.p_wait == pytest.approx(0.6821182, abs=5e-8)
    assert eleven.service_level == pytest.approx(0.3896138, abs=5e-8)
    assert erlang_c_metrics(TRAFFIC, 13, 180, 20).service_level == pytest.approx(0.79559, abs=5e-6)
    fourteen = erlang_c_metrics(TRAFFIC, 14, 180, 20)
    assert fourteen.p_wait == pytest.approx(0.1741319, abs=5e-8)
    assert fourteen.service_level == pytest.approx(0.88835, abs=5e-6)
    assert fourteen.asa_s == pytest.approx(7.8359, abs=5e-5)
    assert fourteen.occupancy == pytest.approx(0.7142857, abs=5e-8)


def test_published_single_values() -> None:
    assert erlang_c(10, 12) == pytest.approx(0.449388, abs=5e-7)
    assert service_level(10, 12, 300, 30) == pytest.approx(0.632072, abs=5e-7)


def test_functions_agree_with_metrics() -> None:
    m = erlang_c_metrics(42.5, 47, 240, 15)
    assert m.p_wait == erlang_c(42.5, 47)
    assert m.service_level == pytest.approx(service_level(42.5, 47, 240, 15), rel=1e-15)
    assert m.asa_s == pytest.approx(average_speed_of_answer(42.5, 47, 240), rel=1e-15)
    assert m.occupancy == occupancy(42.5, 47)


@pytest.mark.parametrize(("traffic", "agents", "t"), [(3.0, 4, 0.2), (7.2, 9, 0.1), (4.0, 10, 0.5)])
def test_matches_the_mm_n_chain_solved_by_linear_algebra(traffic: float, agents: int, t: float) -> None:
    states = 300  # the geometric tail beyond this is below 1e-20 for these loads
    pi = stationary(lambda i: traffic, lambda i: float(min(i, agents)), states)
    p_wait = math.fsum(pi[agents:])
    queue = math.fsum((i - agents) * p for i, p in enumerate(pi) if i > agents)
    sl = math.fsum(pi[:agents]) + math.fsum(
        pi[agents + k] * answered_within(agents, 0.0, k, t) for k in range(states - agents)
    )
    m = erlang_c_metrics(traffic, agents, 1.0, t)
    assert m.p_wait == pytest.approx(p_wait, rel=1e-11)
    assert m.asa_s == pytest.approx(queue / traffic, rel=1e-10)  # Little's law, AHT = 1
    assert m.service_level == pytest.approx(sl, abs=1e-12)


def test_unstable_queue() -> None:
    m = erlang_c_metrics(10.0, 10, 180, 20)
    assert (m.p_wait, m.service_level, m.asa_s, m.occupancy) == (1.0, 0.0, math.inf, 1.0)
    assert erlang_c(10.0, 9) == 1.0
    assert average_speed_of_answer(10.0, 3, 180) == math.inf


def test_no_traffic() -> None:
    m = erlang_c_metrics(0.0, 2, 180, 20)
    assert (m.p_wait, m.service_level, m.asa_s, m.occupancy) == (0.0, 1.0, 0.0, 0.0)
