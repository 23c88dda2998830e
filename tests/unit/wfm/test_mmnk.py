"""M/M/N/K against the R queueing package example, the chain, and its Erlang B / C limits."""

from __future__ import annotations

import math

import pytest

from frontoffice.wfm import capacity_for_blocking, erlang_b, erlang_c_metrics, mmnk_metrics
from tests.unit.wfm.chains import answered_within, stationary


def test_r_queueing_documentation_example() -> None:
    # λ = 8, μ = 4 (AHT 0.25), N = 5, K = 12.
    m = mmnk_metrics(8 * 0.25, 5, 12, 0.25)
    assert m.p_empty == pytest.approx(0.134334, abs=5e-7)
    assert m.p_block == pytest.approx(5.869e-5, abs=5e-9)
    assert m.mean_in_system == pytest.approx(2.03935, abs=5e-6)


@pytest.mark.parametrize(
    ("traffic", "agents", "capacity", "t"), [(4.0, 3, 9, 0.3), (2.0, 5, 12, 0.1), (9.0, 6, 6, 0.2)]
)
def test_matches_the_chain(traffic: float, agents: int, capacity: int, t: float) -> None:
    pi = stationary(lambda i: traffic, lambda i: float(min(i, agents)), capacity + 1)
    m = mmnk_metrics(traffic, agents, capacity, 1.0, t)
    accepted = 1.0 - pi[capacity]
    assert m.p_block == pytest.approx(pi[capacity], rel=1e-11)
    assert m.p_wait == pytest.approx(math.fsum(pi[agents:capacity]) / accepted, rel=1e-11)
    assert m.mean_in_system == pytest.approx(math.fsum(i * p for i, p in enumerate(pi)), rel=1e-11)
    late = math.fsum(
        pi[agents + k] * (1.0 - answered_within(agents, 0.0, k, t)) for k in range(capacity - agents)
    )
    assert m.service_level == pytest.approx(1.0 - late / accepted, abs=1e-12)


def test_without_queue_it_is_erlang_b_and_with_a_long_one_erlang_c() -> None:
    assert mmnk_metrics(7.0, 9, 9, 180).p_block == pytest.approx(erlang_b(7.0, 9), rel=1e-12)
    long = mmnk_metrics(7.0, 9, 2000, 180, 20)
    c = erlang_c_metrics(7.0, 9, 180, 20)
    assert long.p_block < 1e-100
    assert long.p_wait == pytest.approx(c.p_wait, rel=1e-12)
    assert long.service_level == pytest.approx(c.service_level, rel=1e-12)
    assert long.asa_s == pytest.approx(c.asa_s, rel=1e-12)


def test_capacity_for_blocking_is_minimal() -> None:
    for traffic, agents, target in [(2.0, 5, 1e-4), (12.0, 10, 0.2), (300.0, 310, 0.01), (50.0, 40, 0.25)]:
        k = capacity_for_blocking(traffic, agents, target)
        assert k is not None
        assert mmnk_metrics(traffic, agents, k, 180).p_block <= target
        assert k == agents or mmnk_metrics(traffic, agents, k - 1, 180).p_block > target


def test_too_few_agents_cannot_reach_a_blocking_below_the_excess() -> None:
    # 12 erlangs on 10 agents: at least 1 - 10/12 = 16.7 % must be turned away.
    assert capacity_for_blocking(12.0, 10, 0.1) is None
    assert capacity_for_blocking(12.0, 10, 0.2) is not None


def test_huge_capacities_do_not_overflow() -> None:
    m = mmnk_metrics(1000.0, 500, 5000, 180)
    assert m.p_block == pytest.approx(0.5, rel=1e-9)
    assert 0.0 <= m.p_wait <= 1.0
